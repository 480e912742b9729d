"""The HTTP layer's deadlines, driven directly at the ASGI level: a body that does not arrive in
time is a 408, a read not answered in time a 503, both problem+json; writes get no answer
deadline."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from api.limits import RequestTimeoutMiddleware
from api.settings import positive_number

Message = dict[str, Any]


def scope(method: str, path: str = "/api/v1/consortia") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": []}


class Exchange:
    """Runs one request through the middleware, recording what reaches the client and when."""

    def __init__(self, chunks: list[bytes], stall_after: bool) -> None:
        self.chunks = list(chunks)
        self.stall_after = stall_after
        self.sent: list[tuple[float, Message]] = []
        self.started = 0.0

    async def receive(self) -> Message:
        if self.chunks:
            chunk = self.chunks.pop(0)
            return {"type": "http.request", "body": chunk,
                    "more_body": bool(self.chunks) or self.stall_after}
        if self.stall_after:  # a client that stops sending its body
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)  # after the body: no disconnect in these tests
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        self.sent.append((time.monotonic() - self.started, message))

    def run(self, app: Any, method: str) -> None:
        async def go() -> None:
            self.started = time.monotonic()
            await app(scope(method), self.receive, self.send)
        # A loop of its own on a thread of its own: the test runner's thread may have one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, go()).result()

    @property
    def status(self) -> int:
        return int(next(m["status"] for _, m in self.sent if m["type"] == "http.response.start"))

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for _, m in self.sent if m["type"] == "http.response.start")
        return {k.decode(): v.decode() for k, v in start["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for _, m in self.sent
                        if m["type"] == "http.response.body")


def reading_app(work_seconds: float, *, blocking: bool = True) -> Any:
    """An app that reads the whole body, works (in a thread, as sync routes do), answers 200."""
    calls: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        calls.append(body)
        if blocking:
            await asyncio.to_thread(time.sleep, work_seconds)
        else:
            await asyncio.sleep(work_seconds)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    app.calls = calls  # type: ignore[attr-defined]
    return app


def problem(exchange: Exchange) -> dict[str, Any]:
    assert exchange.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(exchange.body)
    assert body["status"] == exchange.status
    return body


def test_a_body_that_stops_arriving_is_a_408_and_reaches_no_route() -> None:
    inner = reading_app(0)
    app = RequestTimeoutMiddleware(inner, body_seconds=0.2)
    exchange = Exchange([b'{"name": "'], stall_after=True)
    exchange.run(app, "POST")
    assert exchange.status == 408
    assert problem(exchange)["type"].endswith("/request-timeout")
    assert exchange.headers["connection"] == "close"
    assert inner.calls == []  # the route never ran
    assert 0.15 < exchange.sent[0][0] < 2.0


def test_a_body_sent_in_time_in_several_chunks_is_served() -> None:
    inner = reading_app(0)
    exchange = Exchange([b'{"a":', b'1}'], stall_after=False)
    exchange.run(RequestTimeoutMiddleware(inner, body_seconds=5), "POST")
    assert exchange.status == 200 and inner.calls == [b'{"a":1}']


@pytest.mark.parametrize("blocking", [True, False], ids=["in-a-thread", "awaiting"])
def test_a_read_not_answered_in_time_is_a_503_sent_at_its_deadline(blocking: bool) -> None:
    inner = reading_app(1.0, blocking=blocking)
    exchange = Exchange([b""], stall_after=False)
    exchange.run(RequestTimeoutMiddleware(inner, read_seconds=0.2), "GET")
    assert exchange.status == 503
    body = problem(exchange)
    assert body["type"].endswith("/response-timeout")
    assert exchange.headers["retry-after"] == "5"
    # Sent at the deadline, while the work was still running — not when it finished.
    assert exchange.sent[0][0] < 0.9
    # The late answer of the work was dropped: one response, ours.
    assert [m["type"] for _, m in exchange.sent] == ["http.response.start", "http.response.body"]


def test_a_read_answered_in_time_and_a_slow_write_are_served_as_they_are() -> None:
    for method, work in (("GET", 0.05), ("POST", 0.5)):
        exchange = Exchange([b""], stall_after=False)
        exchange.run(RequestTimeoutMiddleware(reading_app(work), read_seconds=0.2), method)
        assert (method, exchange.status, exchange.body) == (method, 200, b'{"ok":true}')


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "nan", "inf"])
def test_a_setting_that_is_not_a_positive_number_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="CONSORTIA_READ_TIMEOUT must be a positive number"):
        positive_number({"CONSORTIA_READ_TIMEOUT": raw}, "CONSORTIA_READ_TIMEOUT", 60, "seconds")


def test_a_setting_left_out_takes_its_default() -> None:
    assert positive_number({}, "CONSORTIA_READ_TIMEOUT", 60, "seconds") == 60
    assert positive_number({"X": "1.5"}, "X", 60, "hours") == 1.5
