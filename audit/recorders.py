"""Hash-chained application recorders: the SQLite one here, the PostgreSQL one in
``audit.postgres`` (so that the embedded default never imports psycopg).

Each subclass of eventsourcing's recorder writes, in the same transaction as the events, one link
per event: (position, previous hash, hash) — see ``audit.chain``. Writers are serialised (SQLite's
database lock; PostgreSQL's EXCLUSIVE table lock taken by the stock insert path), so the chain can
never fork or be reordered. Triggers make the event and link tables append-only in the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from audit.chain import GENESIS, Record, chain
from audit.subscriptions import PollingSubscription, WakesSubscribers

APPEND_ONLY_MESSAGE = "ledger is append-only"


def links_table_for(events_table_name: str) -> str:
    return f"{events_table_name}_links"


def records_at(stored_events: Sequence[StoredEvent], positions: Sequence[int]) -> list[Record]:
    return [
        Record(p, e.originator_id, e.originator_version, e.topic, e.state)
        for p, e in zip(positions, stored_events, strict=True)
    ]


class SchemaWriteLockFirst:
    """SQLite recorders whose tables are created under the write lock taken first (``BEGIN
    IMMEDIATE``). The stock deferred ``BEGIN`` reads the schema, then upgrades to a write when a
    statement writes; if another connection committed meanwhile, SQLite refuses the upgrade at
    once ("database is locked") instead of waiting its busy timeout. Several runners start beside
    each other in one service, so their table creation must wait for each other, not fail."""

    def _create_table(self, c: SQLiteCursor) -> None:
        c.execute("ROLLBACK")  # the deferred transaction just begun, empty
        c.execute("BEGIN IMMEDIATE")
        super()._create_table(c)  # type: ignore[misc]


class ChainedSQLiteApplicationRecorder(SchemaWriteLockFirst, WakesSubscribers,
                                       SQLiteApplicationRecorder):
    """SQLite recorder that chains every event and refuses UPDATE and DELETE by trigger. Its
    subscriptions poll (SQLite has no NOTIFY) and are woken at once by this process's writes."""

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
             for lk in chain(records_at(stored_events, positions), previous)],
        )
        return positions

    def wake_key(self) -> str:
        return f"sqlite:{self.datastore.pool.db_name}:{self.events_table_name}"

    def subscribe(self, gt: int | None = None,
                  topics: Sequence[str] = ()) -> PollingSubscription:  # type: ignore[override]
        return self._register(PollingSubscription(self, gt=gt, topics=topics))
