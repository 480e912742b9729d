"""One setting chooses the database: ``CONSORTIA_DATABASE_URL`` (``sqlite:///path``, the default,
or ``postgresql://user:password@host:port/dbname``). This module turns it into a configured
Registry and into direct connections for the verifier."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

from domain.registry import Registry, today_in_china

DEFAULT_DATABASE_URL = "sqlite:///var/consortia.db"
#: The tables eventsourcing names after the application (PostgreSQL) or its default (SQLite).
SQLITE_EVENTS_TABLE = "stored_events"
POSTGRES_EVENTS_TABLE = f"{Registry.name.lower()}_events"


class DatabaseURLError(ValueError):
    """The database URL is not one the registry understands."""


@dataclass(frozen=True)
class Database:
    url: str
    backend: str  # "sqlite" | "postgresql"
    path: str = ""  # SQLite file
    dbname: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""

    @property
    def events_table(self) -> str:
        return SQLITE_EVENTS_TABLE if self.backend == "sqlite" else POSTGRES_EVENTS_TABLE

    @property
    def links_table(self) -> str:
        return f"{self.events_table}_links"

    @property
    def identity(self) -> str:
        """One string per database: the SQLite file, or the PostgreSQL connection string."""
        return self.path if self.backend == "sqlite" else self.conninfo()

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(dbname=self.dbname, host=self.host, port=self.port,
                             user=self.user, password=self.password or None)

    def display(self) -> str:
        """The URL without its password, for messages."""
        if self.backend == "sqlite":
            return self.url
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("CONSORTIA_DATABASE_URL") or DEFAULT_DATABASE_URL


def parse_database_url(url: str | None = None) -> Database:
    url = database_url(url)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise DatabaseURLError(f"no SQLite file in {url!r}")
        return Database(url=url, backend="sqlite", path=path)
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise DatabaseURLError(f"no database name in {url!r}")
        return Database(url=url, backend="postgresql", dbname=dbname,
                        host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                        user=unquote(parts.username or "postgres"),
                        password=unquote(parts.password or ""))
    raise DatabaseURLError(
        f"unsupported database URL {url!r}: use sqlite:///path or postgresql://…")


def registry_env(url: str | None = None, *, chained: bool = True) -> dict[str, str]:
    """eventsourcing settings for the URL. ``chained=False`` gives the stock recorders (used only
    as the benchmark's baseline)."""
    db = parse_database_url(url)
    if db.backend == "sqlite":
        Path(db.path).parent.mkdir(parents=True, exist_ok=True)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": db.path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
        if chained:
            env["APPLICATION_RECORDER_TOPIC"] = (
                "audit.recorders:ChainedSQLiteApplicationRecorder")
        return env
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": db.dbname,
        "POSTGRES_HOST": db.host,
        "POSTGRES_PORT": str(db.port),
        "POSTGRES_USER": db.user,
        "POSTGRES_PASSWORD": db.password,
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_LOCK_TIMEOUT": "30",
        # How long a command waits for a connection when the server is away (then 503), as
        # long as the API's own tables wait: a client hears of an outage within seconds.
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
    }
    if chained:
        env["APPLICATION_RECORDER_TOPIC"] = (
            "audit.postgres:ChainedPostgresApplicationRecorder")
    return env


def open_registry(url: str | None = None, *, clock: Callable[[], date] = today_in_china,
                  chained: bool = True) -> Registry:
    """A Registry on the database named by the URL (or ``CONSORTIA_DATABASE_URL``)."""
    return Registry(env=registry_env(url, chained=chained), clock=clock)


def sqlite_connect(db: Database, *, readonly: bool = True) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"file:{db.path}?mode=ro", uri=True)
    return sqlite3.connect(db.path)
