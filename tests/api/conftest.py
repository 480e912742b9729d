"""An app per test on a fresh database (SQLite and PostgreSQL through ``database_url``), with a
fixed clock and one API key per kind of caller."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI

with warnings.catch_warnings():
    # Starlette's TestClient now prefers the httpx2 package and warns when it finds httpx.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

import httpx

from api.app import create_app
from audit.store import open_registry
from domain.registry import Registry

TODAY = date(2026, 11, 25)
PREFIX = "/api/v1"

#: who → (role, city, name)
CALLERS: dict[str, tuple[str, str | None, str]] = {
    "nanjing": ("city_bureau", "nanjing", "chen.hao"),
    "nanjing2": ("city_bureau", "nanjing", "liu.yang"),
    "suzhou": ("city_bureau", "suzhou", "li.na"),
    "province": ("province", None, "wang.li"),
    "province2": ("province", None, "zhang.wei"),
    "agency": ("agency", None, "zhao.min"),
    "auditor": ("auditor", None, "audit.1"),
    "credit_consumer": ("credit_consumer", None, "credit.feed"),
}


@dataclass
class Api:
    """A running app, its Registry, and a key per caller."""

    url: str
    app: FastAPI
    client: TestClient
    registry: Registry
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)

    def head(self) -> int:
        """The ledger's head position (0 when empty)."""
        return self.registry.recorder.max_notification_id() or 0

    def events(self) -> int:
        """How many events the ledger holds (PostgreSQL positions may have gaps: a rolled-back
        insert consumes its sequence number)."""
        return len(self.registry.recorder.select_notifications(start=None, limit=1_000_000))

    def headers(self, who: str | None = None, version: int | str | None = None,
                **extra: str) -> dict[str, str]:
        h = dict(extra)
        if who is not None:
            h["Authorization"] = f"Bearer {self.keys[who]}"
        if version is not None:
            h["If-Match"] = f'"{version}"' if isinstance(version, int) else version
        return h

    def post(self, path: str, body: Any = None, who: str | None = None,
             version: int | str | None = None, **extra: str) -> httpx.Response:
        return self.client.post(PREFIX + path, json=body, headers=self.headers(who, version,
                                                                               **extra))


def make_api(url: str, client_kwargs: dict[str, Any] | None = None) -> Iterator[Api]:
    registry = open_registry(url, clock=lambda: TODAY)
    app = create_app(url, registry=registry)
    api = Api(url=url, app=app, client=None, registry=registry)  # type: ignore[arg-type]
    for who, (role, city, name) in CALLERS.items():
        record, plain = app.state.keys.create(role, city=city, name=name)
        api.keys[who] = plain
        api.key_ids[who] = record.key_id
    try:
        with TestClient(app, **(client_kwargs or {})) as client:
            api.client = client
            yield api
    finally:
        registry.close()


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    yield from make_api(database_url)


@pytest.fixture
def sqlite_api(sqlite_url: str) -> Iterator[Api]:
    """For checks that do not depend on the backend."""
    yield from make_api(sqlite_url)


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and code)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://consortia.jiangsu.example/problems/")
    assert body["type"].endswith("/" + body["code"])
    assert body["title"] and body["detail"] and body["instance"]
    if code is not None:
        assert body["code"] == code, body
    return body
