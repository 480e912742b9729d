"""Every write operation the API publishes (enumerated from its OpenAPI schema, so a new one is
covered the day it appears) refuses a caller without a valid credential (401), a role it does not
serve and a city bureau of another city (403) — problem+json, and nothing stored anywhere in the
database. API keys appear nowhere in the database in the clear."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import httpx

from api.sqlstore import SqlStore
from domain.records import Role
from domain.rules import PERMITTED_ROLES
from tests.api import payloads as p
from tests.api.conftest import PREFIX, Api, assert_problem

WRITE_METHODS = ("post", "put", "patch", "delete")
#: The lifecycle operation whose domain command has another name.
COMMAND_OF = {"start_formation": "select_lead"}
ROLE_OF = {"nanjing": Role.CITY_BUREAU, "province": Role.PROVINCE, "agency": Role.EVALUATION_AGENCY,
           "auditor": Role.AUDITOR, "credit_consumer": Role.CREDIT_CONSUMER}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    params: dict[str, str]  # path parameter → its schema type
    body: Any

    @property
    def command(self) -> str | None:
        """The domain command behind a lifecycle operation (None for other writes)."""
        name = COMMAND_OF.get(self.operation_id, self.operation_id)
        return name if name in PERMITTED_ROLES else None


def write_operations(schema: dict[str, Any]) -> list[Operation]:
    components = schema["components"]["schemas"]
    ops = []
    for path, item in schema["paths"].items():
        for method in WRITE_METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = {prm["name"]: prm.get("schema", {}).get("type", "string")
                      for prm in op.get("parameters", []) if prm["in"] == "path"}
            body: Any = None
            content = op.get("requestBody", {}).get("content", {})
            if content:
                media = next(iter(content.values()))
                ref = media.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                examples = media.get("examples") or components.get(ref, {}).get("examples") or [{}]
                body = examples[0] if isinstance(examples, list) else next(
                    iter(examples.values())).get("value", {})
            ops.append(Operation(method, path, op["operationId"], params, body))
    return ops


def _url(op: Operation, j: p.Journey) -> str:
    values = {"consortium_id": j.id, "uscc": j.members[0], "record_id": "CR-1"}
    url = op.path
    for name, kind in op.params.items():
        value = values.get(name, "1" if kind == "integer" else "00000000-0000-4000-8000-000000000000")
        url = url.replace("{" + name + "}", value)
    return url


def _send(api: Api, op: Operation, j: p.Journey, headers: dict[str, str]) -> httpx.Response:
    body = op.body
    if op.operation_id == "start_formation":
        body = {**body, "city": "nanjing"}
    return api.client.request(op.method.upper(), _url(op, j), json=body,
                              headers={"If-Match": f'"{j.version}"', **headers})


def database_state(sql: SqlStore) -> dict[str, list[str]]:
    """Every row of every non-empty table, as text (the database is small here)."""
    if sql.backend == "sqlite":
        tables = [r[0] for r in sql.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    else:
        tables = [r[0] for r in sql.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
    state = {t: sorted(repr(r) for r in sql.fetchall(f'SELECT * FROM "{t}"')) for t in tables}
    return {t: rows for t, rows in state.items() if rows}  # a table made empty stores nothing


def _forming(api: Api) -> p.Journey:
    j = p.Journey(api)
    j.start("nanjing")
    j.admit("university")
    # The read models have caught up: what changes from here on is the test's doing.
    assert api.app.state.view.wait_for(api.registry.name, api.head(), timeout=30)
    return j


def test_every_write_operation_refuses_a_missing_forged_or_revoked_credential(api: Api) -> None:
    ops = write_operations(api.client.get(PREFIX + "/openapi.json").json())
    assert len([op for op in ops if op.command]) == len(PERMITTED_ROLES)
    j = _forming(api)
    revoked, revoked_key = api.app.state.keys.create("province", name="left.office")
    assert api.app.state.keys.revoke(revoked.key_id)
    forged = "cr_0123456789abcdef_" + "A" * 43
    credentials: dict[str, dict[str, str]] = {
        "none": {},
        "forged": {"Authorization": f"Bearer {forged}"},
        "revoked": {"Authorization": f"Bearer {revoked_key}"},
        "wrong secret": {"Authorization": "Bearer " + api.keys["province"][:-2] + "xx"},
        "not bearer": {"Authorization": f"Basic {api.keys['province']}"},
    }
    before = database_state(api.app.state.sql)
    for op in ops:
        for what, headers in credentials.items():
            key = f"{op.operation_id}-{what.replace(' ', '-')}"
            for idempotent in ({}, {"Idempotency-Key": key}):
                r = _send(api, op, j, {**headers, **idempotent})
                assert r.status_code == 401, (op.method, op.path, what, r.status_code, r.text)
                assert_problem(r, 401, "unauthenticated")
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert database_state(api.app.state.sql) == before, "a refused request stored something"


def test_every_write_operation_refuses_roles_it_does_not_serve(api: Api) -> None:
    ops = write_operations(api.client.get(PREFIX + "/openapi.json").json())
    j = _forming(api)
    sql = api.app.state.sql
    for op in ops:
        refused = set()
        for who, role in ROLE_OF.items():
            if op.command and role in PERMITTED_ROLES[op.command]:
                continue  # permitted: covered by the lifecycle tests
            before = database_state(sql)
            r = _send(api, op, j, api.headers(who))
            if r.status_code == 403:
                refused.add(role)
                problem = assert_problem(r, 403)
                assert problem["code"] in ("read-only-role", "role-not-permitted", "forbidden")
                assert database_state(sql) == before, (op.path, who, "stored something")
            else:
                assert op.command is None, (op.path, who, r.status_code, r.text)
                assert r.status_code not in (401, 500), (op.path, who, r.text)
        if op.command:
            assert refused == set(Role) - PERMITTED_ROLES[op.command], op.path
        else:  # no write is open to every role
            assert refused, f"{op.method} {op.path} accepts every role"


def test_a_city_bureau_of_another_city_is_refused_every_city_write(api: Api) -> None:
    ops = write_operations(api.client.get(PREFIX + "/openapi.json").json())
    city_ops = [op for op in ops if op.command
                and Role.CITY_BUREAU in PERMITTED_ROLES[op.command]]
    assert city_ops
    j = _forming(api)
    before = database_state(api.app.state.sql)
    for op in city_ops:
        r = _send(api, op, j, api.headers("suzhou"))
        assert_problem(r, 403, "outside-jurisdiction")
    assert database_state(api.app.state.sql) == before


def test_no_api_key_is_stored_or_echoed_in_the_clear(api: Api) -> None:
    j = _forming(api)
    api.post(f"/consortia/{j.id}/members", p.admit(), "nanjing", j.version,
             **{"Idempotency-Key": "clear-text-check"})
    api.post("/consortia", p.start(), "province")  # refused, and kept for replay
    state = repr(database_state(api.app.state.sql))
    for who, plain in api.keys.items():
        secret = re.sub(r"^cr_[0-9a-f]{16}_", "", plain)
        assert plain not in state and secret not in state, who
        assert hashlib.sha256(plain.encode()).hexdigest() in state  # the hash is what is kept
