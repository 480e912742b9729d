"""Hash-chained application recorders for SQLite and PostgreSQL.

Each subclass of eventsourcing's recorder writes, in the same transaction as the events, one link
per event: (position, previous hash, hash) — see ``audit.chain``. Writers are serialised (SQLite's
database lock; PostgreSQL's EXCLUSIVE table lock taken by the stock insert path), so the chain can
never fork or be reordered. Triggers make the event and link tables append-only in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from audit.chain import GENESIS, Record, chain

APPEND_ONLY_MESSAGE = "ledger is append-only"


def links_table_for(events_table_name: str) -> str:
    return f"{events_table_name}_links"


def _records(stored_events: Sequence[StoredEvent], positions: Sequence[int]) -> list[Record]:
    return [
        Record(p, e.originator_id, e.originator_version, e.topic, e.state)
        for p, e in zip(positions, stored_events, strict=True)
    ]


class ChainedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """SQLite recorder that chains every event and refuses UPDATE and DELETE by trigger."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.links_table_name = links_table_for(events_table_name)
        super().__init__(datastore, events_table_name)
        self.select_head_statement = (
            f"SELECT hash FROM {self.links_table_name} ORDER BY position DESC LIMIT 1"
        )
        self.insert_link_statement = f"INSERT INTO {self.links_table_name} VALUES (?,?,?)"

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.links_table_name} ("
            "position INTEGER PRIMARY KEY, prev_hash BLOB NOT NULL, hash BLOB NOT NULL)"
        )
        for table in (self.events_table_name, self.links_table_name):
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: {op} on {table} refused'); "
                    "END"
                )
        return statements

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        # The INSERT comes first: it takes SQLite's write lock, so the head read next is the
        # latest committed one and no other writer can append until this transaction ends.
        positions = super()._insert_events(c, stored_events, **kwargs)
        assert positions is not None
        c.execute(self.select_head_statement)
        row = c.fetchone()
        previous = bytes(row[0]) if row is not None else GENESIS
        c.executemany(
            self.insert_link_statement,
            [(lk.position, lk.previous_hash, lk.hash)
             for lk in chain(_records(stored_events, positions), previous)],
        )
        return positions


class ChainedPostgresApplicationRecorder(PostgresApplicationRecorder):
    """PostgreSQL recorder that chains every event on the stock locked insert path.

    The head link is read in the same pipelined round trip as the locked INSERT, and the new links
    are sent with the COMMIT: the chain adds no round trip to a write.
    """

    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events"):
        if datastore.enable_db_functions:
            # The stored-function insert path does not carry the chain's head; refuse it rather
            # than write events without links.
            msg = "the chained recorder needs POSTGRES_ENABLE_DB_FUNCTIONS off"
            raise ProgrammingError(msg)
        super().__init__(datastore, events_table_name=events_table_name)
        self.links_table_name = links_table_for(events_table_name)
        self.check_identifier_length(self.links_table_name)
        schema = Identifier(self.datastore.schema)
        links = Identifier(self.links_table_name)
        refuse = Identifier(f"{self.events_table_name}_append_only")
        self.sql_create_statements.extend([
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{links} ("
                "position bigint PRIMARY KEY, prev_hash bytea NOT NULL, hash bytea NOT NULL)"
            ).format(schema=schema, links=links),
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{refuse}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION '" + APPEND_ONLY_MESSAGE + ": % on % refused', "
                "TG_OP, TG_TABLE_NAME; END $$"
            ).format(schema=schema, refuse=refuse),
        ])
        for name in (self.events_table_name, self.links_table_name):
            table = Identifier(name)
            for suffix, when, level in (("append_only", "UPDATE OR DELETE", "ROW"),
                                        ("no_truncate", "TRUNCATE", "STATEMENT")):
                trigger = Identifier(f"{name}_{suffix}")
                self.sql_create_statements.append(
                    SQL(
                        "CREATE OR REPLACE TRIGGER {trigger} BEFORE " + when + " ON "
                        "{schema}.{table} FOR EACH " + level + " EXECUTE FUNCTION "
                        "{schema}.{refuse}()"
                    ).format(trigger=trigger, schema=schema, table=table, refuse=refuse)
                )
        self.select_head_statement = SQL(
            "SELECT hash FROM {schema}.{links} ORDER BY position DESC LIMIT 1"
        ).format(schema=schema, links=links)
        self.insert_links_statement = SQL(
            "INSERT INTO {schema}.{links} (position, prev_hash, hash) "
            "SELECT * FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[])"
        ).format(schema=schema, links=links)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        exc: Exception | None = None
        positions: Sequence[int] | None = None
        with self.datastore.get_connection() as conn:
            with conn.pipeline() as pipeline, conn.transaction():
                with conn.cursor() as curs:
                    self._insert_events(curs, stored_events, **kwargs)
                if stored_events:
                    with conn.cursor() as head, conn.cursor() as curs:
                        try:
                            self._lock_table(curs)
                            self._notify_channel(curs)
                            head.execute(self.select_head_statement, prepare=True)
                            super(PostgresApplicationRecorder, self)._insert_stored_events(
                                curs, stored_events, **kwargs)
                            # Sync now, so a conflict raises IntegrityError here, not at COMMIT.
                            pipeline.sync()
                            positions = self._fetch_ids_after_insert_events(
                                curs, stored_events, **kwargs)
                        except Exception as e:  # re-raised once the pipeline has exited
                            exc = e
                        else:
                            assert positions is not None
                            row = head.fetchone()
                            previous = bytes(row["hash"]) if row is not None else GENESIS
                            links = list(chain(_records(stored_events, positions), previous))
                            curs.execute(self.insert_links_statement, (
                                [lk.position for lk in links],
                                [lk.previous_hash for lk in links],
                                [lk.hash for lk in links],
                            ))
            if exc:
                raise exc
        return positions
