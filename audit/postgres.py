"""The hash-chained PostgreSQL application recorder (see ``audit.recorders`` for the design)."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresSubscription,
)
from psycopg.sql import SQL, Identifier

from audit.chain import GENESIS, chain
from audit.recorders import APPEND_ONLY_MESSAGE, links_table_for, records_at
from audit.subscriptions import PollingPull, WakesSubscribers


class ListenAndPollSubscription(PollingPull, PostgresSubscription):
    """LISTEN/NOTIFY for promptness plus a periodic poll, so that a lost notification (a dropped
    LISTEN connection, a restart) never stalls a subscriber."""


#: Attempts of one insert when the connection is lost (as eventsourcing's own recorder makes).
INSERT_ATTEMPTS = 10


class ChainedPostgresApplicationRecorder(WakesSubscribers, PostgresApplicationRecorder):
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
        # The statements of every write are rendered once, not composed again at each execute.
        self.select_head_statement = SQL(
            "SELECT hash FROM {schema}.{links} ORDER BY position DESC LIMIT 1"
        ).format(schema=schema, links=links).as_string()
        self.select_stored_event_statement = SQL(
            "SELECT notification_id, topic, state FROM {schema}.{events} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(schema=schema, events=Identifier(self.events_table_name))
        # One event per write is the common case: a prepared VALUES insert costs the client and
        # the server less than the array one (~60 µs of client CPU and ~100 µs of a write's time).
        self.insert_link_statement = SQL(
            "INSERT INTO {schema}.{links} (position, prev_hash, hash) VALUES (%s, %s, %s)"
        ).format(schema=schema, links=links).as_string()
        self.insert_links_statement = SQL(
            "INSERT INTO {schema}.{links} (position, prev_hash, hash) "
            "SELECT * FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[])"
        ).format(schema=schema, links=links)

    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        """Insert and chain the events, retrying on a lost connection. A retry may find its own
        events already committed (the COMMIT reached the server, its answer did not): they are
        recognised byte for byte and their positions returned, not reported as a conflict."""
        interrupted = False
        for attempt in range(1, INSERT_ATTEMPTS + 1):
            try:
                return self._insert_events_once(stored_events, **kwargs)
            except (InterfaceError, OperationalError):
                if attempt == INSERT_ATTEMPTS:
                    raise
                interrupted = True
                time.sleep(0.2 * (1 + 0.1 * (random.random() - 0.5)))
            except IntegrityError:
                stored = self._already_stored(stored_events) if interrupted else None
                if stored is None:
                    raise
                return stored
        raise AssertionError("unreachable")

    def _already_stored(self, stored_events: Sequence[StoredEvent]) -> list[int] | None:
        """The positions of exactly these events (same topic and state) when all are stored."""
        positions = []
        try:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                for e in stored_events:
                    curs.execute(self.select_stored_event_statement,
                                 (e.originator_id, e.originator_version))
                    row = curs.fetchone()
                    if row is None or row["topic"] != e.topic or bytes(row["state"]) != e.state:
                        return None
                    positions.append(int(row["notification_id"]))
        except (InterfaceError, OperationalError):
            return None
        return positions

    def _insert_events_once(self, stored_events: Sequence[StoredEvent],
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
                            links = list(chain(records_at(stored_events, positions), previous))
                            if len(links) == 1:
                                (lk,) = links
                                curs.execute(self.insert_link_statement,
                                             (lk.position, lk.previous_hash, lk.hash),
                                             prepare=True)
                            else:
                                curs.execute(self.insert_links_statement, (
                                    [lk.position for lk in links],
                                    [lk.previous_hash for lk in links],
                                    [lk.hash for lk in links],
                                ))
            if exc:
                raise exc
        return positions

    def wake_key(self) -> str:
        kwargs: Any = self.datastore.pool.kwargs
        return (f"postgresql:{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('dbname')}/"
                f"{self.datastore.schema}.{self.events_table_name}")

    def subscribe(self, gt: int | None = None,
                  topics: Sequence[str] = ()) -> ListenAndPollSubscription:  # type: ignore[override]
        return self._register(ListenAndPollSubscription(self, gt=gt, topics=topics))
