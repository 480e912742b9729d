"""Shared fixtures. Integration tests run every case on SQLite and on PostgreSQL.

PostgreSQL: each test gets its own database, created on the server named by
``CONSORTIA_TEST_POSTGRES_URL`` (default: the local server) under a unique name and dropped
afterwards. When the server is unreachable the PostgreSQL cases are skipped — unless
``CONSORTIA_REQUIRE_POSTGRES=1``, when they fail.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
RUN_ID = uuid.uuid4().hex[:8]
_counter = itertools.count(1)


def _admin_url() -> str:
    return os.environ.get("CONSORTIA_TEST_POSTGRES_URL") or DEFAULT_PG


def _require_postgres() -> bool:
    return os.environ.get("CONSORTIA_REQUIRE_POSTGRES", "") in ("1", "true", "yes")


_pg_reason: list[str | None] = []


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (checked once per run)."""
    if not _pg_reason:
        try:
            import psycopg

            with psycopg.connect(_admin_url(), connect_timeout=3, autocommit=True) as conn:
                conn.execute("SELECT 1")
            _pg_reason.append(None)
        except Exception as e:  # any failure to reach the server
            _pg_reason.append(f"PostgreSQL unreachable at {_admin_url()}: {e}")
    return _pg_reason[0]


def _with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped after the test."""
    yield from fresh_postgres_database()


def fresh_postgres_database() -> Iterator[str]:
    """The URL of a fresh, uniquely named PostgreSQL database, dropped when the generator ends
    (for fixtures of any scope); skips, or fails under CONSORTIA_REQUIRE_POSTGRES=1, without a
    server."""
    reason = postgres_unavailable()
    if reason:
        if _require_postgres():
            pytest.fail(f"CONSORTIA_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    import psycopg

    name = f"consortia_test_{RUN_ID}_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(_admin_url(), name)
    finally:
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))
