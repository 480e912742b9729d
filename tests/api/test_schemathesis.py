"""Property-based tests of the whole HTTP API against its own OpenAPI schema (schemathesis).

Every operation of ``/api/v1/openapi.json`` gets schemathesis' examples, coverage (boundary and
negative values) and fuzzing cases, sent in-process over ASGI to an app on a database seeded with
the demo history — SQLite and PostgreSQL. The callers rotate: a province key, a Nanjing
city-bureau key, a read-only auditor key, no credential, and whatever credential schemathesis
generates itself. Path parameters are often pointed at the demo's real consortia (with their
current version in ``If-Match``, a real member, a real credit record), so that reads and writes
reach the domain's rules instead of stopping at 404.

Every response must: never be a server error (5xx); have a status code the operation declares; have
the declared content type; match the declared body schema and the declared headers.

Bounded and reproducible for CI: derandomised generation, no example database, no shrinking, a
modest number of fuzzing examples per operation.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.auth import KeyStore
from api.demo import record_demo
from api.sqlstore import open_sql
from audit.store import open_registry, parse_database_url
from domain.consortium import Consortium
from domain.registry import Registry
from tests.api.conftest import CALLERS, TODAY
from tests.conftest import fresh_postgres_database

#: Who calls, in turn: a key of these callers; "anonymous" sends no credential; "generated" keeps
#: the Authorization schemathesis generated from the security scheme (an unknown key).
WHO = ["province", "nanjing", "auditor", "anonymous", "generated"]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]

CONFIG = schemathesis.Config.from_dict({
    "seed": 20261125,
    "generation": {"max-examples": 15, "deterministic": True, "database": "none",
                   "no-shrink": True},
})


def _openapi_document() -> dict[str, Any]:
    """The app's own OpenAPI document (the same on every database), from a throwaway app."""
    with tempfile.TemporaryDirectory() as tmp:
        registry = open_registry(f"sqlite:///{tmp}/schema.db", clock=lambda: TODAY)
        try:
            app = create_app(registry=registry, embedded_projection=False)
            app.state.sql.close()
            return app.openapi()
        finally:
            registry.close()


# The schema is needed at collection time, so it is read from a throwaway app here and every case
# is sent to the test's own app (``call_and_validate(app=...)``): ``schemathesis.pytest.
# from_fixture`` would load it from a fixture instead, but fails on pytest 9.2 (it sets
# ``Function._nodeid``, which pytest 9.2 no longer has).
schema = schemathesis.openapi.from_dict(_openapi_document(), config=CONFIG)


@dataclass
class Seeded:
    """A database holding the demo history, its consortia, and a key per caller."""

    url: str
    registry: Registry
    consortia: list[str]
    keys: dict[str, str]

    def current(self, consortium_id: str) -> Consortium:
        return self.registry.get(consortium_id)


def _database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Generator[str, None, None]:
    if backend == "postgres":
        yield from fresh_postgres_database()  # dropped when this generator is closed
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'ledger.db'}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded database per backend for the whole module: what an operation's cases wrote
    stays for the next ones."""
    databases = _database(request.param, tmp_path_factory)
    url = next(databases)
    registry = open_registry(url, clock=lambda: TODAY)
    try:
        record_demo(registry)
        notifications = registry.recorder.select_notifications(start=None, limit=1_000)
        consortia = list(dict.fromkeys(str(n.originator_id) for n in notifications))
        assert len(consortia) == 4, consortia
        sql = open_sql(parse_database_url(url))
        try:
            keys = KeyStore(sql)
            keys.create_table()
            plain = {who: keys.create(role, city=city, name=name)[1]
                     for who, (role, city, name) in CALLERS.items()}
        finally:
            sql.close()
        yield Seeded(url=url, registry=registry, consortia=consortia, keys=plain)
    finally:
        registry.close()
        databases.close()


@dataclass
class Served:
    """An app on the seeded database, one per operation: schemathesis starts the app's lifespan
    (its projection runner) on the first case and ends it with the test, which also closes the
    app's own connections, so an app serves one operation's cases."""

    app: FastAPI
    seeded: Seeded
    calls: Iterator[int] = field(default_factory=itertools.count)


@pytest.fixture
def served(seeded: Seeded) -> Served:
    return Served(app=create_app(seeded.url, registry=seeded.registry), seeded=seeded)


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one app for all cases
def test_every_answer_conforms_to_the_schema(case: Any, served: Served) -> None:
    # Who calls and what is aimed at rotate with the case number (deterministic, as the cases are).
    n = next(served.calls)
    seeded, path = served.seeded, case.path_parameters
    if "consortium_id" in path and n % 6 < len(seeded.consortia):
        path["consortium_id"] = seeded.consortia[n % 6]
        consortium = seeded.current(path["consortium_id"])
        if case.method.upper() == "POST" and n % 3:
            case.headers["If-Match"] = f'"{consortium.version}"'
        if "uscc" in path and consortium.members and n % 2:
            path["uscc"] = next(iter(consortium.members))
        if "record_id" in path and n % 2:
            path["record_id"] = "CR-1"
    who = WHO[n % len(WHO)]
    headers = {}
    if who in seeded.keys:
        headers["Authorization"] = f"Bearer {seeded.keys[who]}"
    elif who == "anonymous":
        case.headers.pop("Authorization", None)
    case.call_and_validate(app=served.app, headers=headers, checks=CHECKS)
