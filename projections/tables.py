"""Tracking recorders for read models with tables of their own, in the ledger's database.

A read model names its tables' DDL (``ddl``) and its own tracking table (``tracking_table``, so
that each read model resumes from its own position); these mixins put them on eventsourcing's
SQLite or PostgreSQL tracking recorder and give the read model's SQL its transactions (``_tx``)
and its tracking inserts (``_track``). A concrete recorder lists the mixin first, then the read
model's backend-neutral SQL class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, TypeVar

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from audit.recorders import SchemaWriteLockFirst


class SQLiteTables(SchemaWriteLockFirst, SQLiteTrackingRecorder):
    """A read model's tables and tracking table on SQLite."""

    tracking_table: ClassVar[str]
    ddl: ClassVar[Sequence[str]]

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.insert_tracking_statement = self.insert_tracking_statement.replace(
            "tracking", self.tracking_table)
        self.select_max_tracking_id_statement = self.select_max_tracking_id_statement.replace(
            "tracking", self.tracking_table)

    def construct_create_table_statements(self) -> list[str]:
        statements = [s.replace("EXISTS tracking", f"EXISTS {self.tracking_table}")
                      for s in super().construct_create_table_statements()]
        return [*statements, *self.ddl]

    def _tx(self, *, commit: bool) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=commit)

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)


class PostgresTables(PostgresTrackingRecorder):
    """A read model's tables and tracking table on PostgreSQL."""

    tracking_table: ClassVar[str]
    ddl: ClassVar[Sequence[str]]

    def __init__(self, datastore: PostgresDatastore, *, tracking_table_name: str = "",
                 **kwargs: Any) -> None:
        super().__init__(datastore, tracking_table_name=self.tracking_table, **kwargs)
        from psycopg.sql import SQL

        self.sql_create_statements.extend(
            SQL(s).format() for s in self.ddl)  # type: ignore[arg-type]

    def _tx(self, *, commit: bool) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=commit)

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)


T = TypeVar("T")


def for_backend(env: Mapping[str, str], sqlite: type[T], postgres: type[T], what: str) -> type[T]:
    """The class of a read model's recorder for the persistence module the settings name."""
    module = env.get("PERSISTENCE_MODULE", "")
    if module == "eventsourcing.sqlite":
        return sqlite
    if module == "eventsourcing.postgres":
        return postgres
    raise ValueError(f"no {what} for persistence module {module!r}")
