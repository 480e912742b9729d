"""The web UI on an app per test (``tests.api.conftest.make_api``: a fresh database, a fixed
clock, one API key per kind of caller), driven through Starlette's TestClient as a browser would:
cookies, CSRF tokens in forms, redirects."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, make_api
from tests.api.payloads import Journey

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
_VERSION = re.compile(r'name="version" value="(\d+)"')


@pytest.fixture
def web(sqlite_url: str) -> Iterator[Api]:
    """For checks that do not depend on the backend."""
    yield from make_api(sqlite_url)


@pytest.fixture
def web_db(database_url: str) -> Iterator[Api]:
    """For checks of what the web UI stores (sessions, idempotency): SQLite and PostgreSQL."""
    yield from make_api(database_url)


def login(api: Api, who: str, client: Any = None) -> httpx.Response:
    client = client or api.client
    page = client.get("/web/login")
    token = csrf_of(page)
    return client.post("/web/login", data={"csrf_token": token, "api_key": api.keys[who],
                                            "next": "/web/registry"}, follow_redirects=False)


def csrf_of(page: httpx.Response) -> str:
    m = _TOKEN.search(page.text)
    assert m, page.text
    return m.group(1)


def form_fields(page: httpx.Response) -> dict[str, str]:
    """The hidden inputs of a command form (token, idempotency key, version)."""
    out = {"csrf_token": csrf_of(page)}
    if (m := _KEY.search(page.text)) is not None:
        out["idempotency_key"] = m.group(1)
    if (m := _VERSION.search(page.text)) is not None:
        out["version"] = m.group(1)
    return out


def journey(api: Api, to: str = "forming") -> Journey:
    """A consortium driven through the API (forming, submitted or listed), the view caught up."""
    j = Journey(api)
    if to == "forming":
        j.start()
    elif to == "submitted":
        j.to_submitted()
    else:
        j.to_listed()
    caught_up(api)
    return j


def caught_up(api: Api) -> None:
    assert api.app.state.view.wait_for(api.registry.name, api.head(), 10)


def new_key() -> str:
    return str(uuid.uuid4())
