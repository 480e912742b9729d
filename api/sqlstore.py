"""The API's own small tables (API keys, idempotency keys) live in the registry's database.

``open_sql(db)`` gives the same tiny interface on both backends: SQLite through ``sqlite3`` on the
file of ``audit.store.Database`` (a short-lived connection per call, the file is shared with the
ledger) and PostgreSQL through a small ``psycopg_pool.ConnectionPool``. SQL is written once with
``?`` placeholders. Every statement runs in autocommit; a driver's operational failure becomes
``StoreUnavailable`` (HTTP 503), never a stack trace.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from audit.store import Database


class StoreUnavailable(Exception):
    """The API's own tables (keys, idempotency) cannot be reached: HTTP 503."""


class SqlStore(Protocol):
    backend: str
    timestamp_type: str
    blob_type: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def to_db_time(self, moment: datetime) -> Any: ...

    def from_db_time(self, value: Any) -> datetime | None: ...

    def close(self) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class SqliteStore:
    backend = "sqlite"
    timestamp_type = "TEXT"
    blob_type = "BLOB"

    def __init__(self, db: Database) -> None:
        self.path = db.path
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # One connection per thread, kept: opening one (and parsing the schema) costs more than
        # the key lookup a request makes.
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
            except sqlite3.OperationalError as e:
                raise StoreUnavailable(str(e)) from e
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        try:
            yield conn
        except sqlite3.OperationalError as e:
            self._forget(conn)  # a file that went away or became read-only: reopen next time
            raise StoreUnavailable(str(e)) from e

    def _forget(self, conn: sqlite3.Connection) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._opened:
                self._opened.remove(conn)
        conn.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._connection() as conn:
            return conn.execute(sql, tuple(params)).rowcount

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._connection() as conn:
            row = conn.execute(sql, tuple(params)).fetchone()
            return None if row is None else tuple(row)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return [tuple(r) for r in conn.execute(sql, tuple(params)).fetchall()]

    def to_db_time(self, moment: datetime) -> Any:
        return moment.astimezone(UTC).isoformat()

    def from_db_time(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()


class PostgresStore:
    backend = "postgresql"
    timestamp_type = "timestamptz"
    blob_type = "bytea"

    def __init__(self, db: Database, *, max_size: int = 4) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        self._errors: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout)
        self.pool = ConnectionPool(
            db.conninfo(), min_size=1, max_size=max_size, open=False, timeout=10,
            kwargs={"autocommit": True}, check=ConnectionPool.check_connection,
            name="consortia-api")
        # Opened without waiting: a server that is down now makes requests answer 503, not the
        # process fail to start.
        self.pool.open(wait=False)

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        try:
            with self.pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except self._errors as e:
            raise StoreUnavailable(str(e)) from e

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return int(cur.rowcount)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), tuple(params))
            row = cur.fetchone()
            return None if row is None else tuple(row)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return [tuple(r) for r in cur.fetchall()]

    def to_db_time(self, moment: datetime) -> Any:
        return moment

    def from_db_time(self, value: Any) -> datetime | None:
        return value

    def close(self) -> None:
        self.pool.close()


def open_sql(db: Database) -> SqlStore:
    """The API tables' access for the registry's database."""
    if db.backend == "sqlite":
        return SqliteStore(db)
    return PostgresStore(db)
