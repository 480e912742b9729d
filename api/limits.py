"""Limits of the HTTP layer: the request body's size (413), checked from ``Content-Length`` and
again while the body streams in (a chunked request has no length, and a client may lie about it);
and the time a body may take to arrive (408) and a read to be answered (503)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import send_problem

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # 1 MiB

#: A request refused midway leaves the connection in an unknown state: it is not kept alive.
_CLOSE = [("connection", "close")]


class BodyTooLarge(Exception):
    """Raised inside ``receive`` once the body passes the limit."""


class BodySizeLimitMiddleware:
    """Answers 413 problem+json for a body larger than ``max_bytes``. Whatever the application
    tried to answer after the limit was passed is dropped."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._refuse(scope, send)
                    return
        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:  # the app's own answer to the broken read (often a 400) is dropped
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:  # e.g. the framework wrapping BodyTooLarge in its own error
            if not exceeded:
                raise
        if exceeded and not response_started:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await send_problem(scope, send, "payload-too-large",
                           f"请求体不得超过{self.max_bytes}字节 / the request body may not exceed "
                           f"{self.max_bytes} bytes", headers=_CLOSE, max_bytes=self.max_bytes)


#: How long a client may take to send a request's body, from the start of the request (seconds).
DEFAULT_BODY_SECONDS = 30.0
#: How long a read (GET, HEAD) may take before it is answered 503 (seconds): longer than the
#: longest wait a read may ask for (the credit feed's long-poll, 30 s).
DEFAULT_READ_SECONDS = 60.0


class BodyTimedOut(Exception):
    """Raised inside ``receive`` once the body has not arrived in time."""


class RequestTimeoutMiddleware:
    """Two deadlines, each answered with problem+json and ``Connection: close``:

    * the body of a request must have arrived within ``body_seconds`` of the request's start,
      else 408 ``request-timeout``: a client trickling its body holds neither a worker nor an
      idempotency key for long;
    * a read (GET, HEAD) must be answered within ``read_seconds``, else 503 ``response-timeout``
      with ``Retry-After``. The work still running finishes in its thread and its answer is
      dropped.

    Writes get no answer deadline: a write answered "timed out" could still commit afterwards.
    Their waits are bounded instead — the database lock (30 s) and, on PostgreSQL, a connection
    (10 s) — and what fails there is a 503 ``database-unavailable``."""

    def __init__(self, app: ASGIApp, *, body_seconds: float = DEFAULT_BODY_SECONDS,
                 read_seconds: float = DEFAULT_READ_SECONDS) -> None:
        self.app = app
        self.body_seconds = body_seconds
        self.read_seconds = read_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        body_deadline = loop.time() + self.body_seconds
        body_done = False
        body_late = False
        response_started = False
        answered: asyncio.Task[None] | None = None  # our own 503, once the read's time is up

        async def timed_receive() -> Message:
            nonlocal body_done, body_late
            if body_done:  # after the body only a disconnect can come: no deadline on that
                return await receive()
            try:
                async with asyncio.timeout_at(body_deadline):
                    message = await receive()
            except TimeoutError:
                body_late = True
                raise BodyTimedOut from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if body_late or answered is not None:  # we answer (or have answered) instead
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        def read_timed_out() -> None:
            nonlocal answered
            if not response_started and answered is None:
                answered = loop.create_task(send_problem(
                    scope, send, "response-timeout",
                    f"查询未在{self.read_seconds:g}秒内完成 / the read did not finish within "
                    f"{self.read_seconds:g} s", headers=[*_CLOSE, ("retry-after", "5")]))

        timer = (loop.call_later(self.read_seconds, read_timed_out)
                 if scope["method"] in ("GET", "HEAD") else None)
        try:
            await self.app(scope, timed_receive, guarded_send)
        except BodyTimedOut:
            pass
        except Exception:  # e.g. the framework wrapping BodyTimedOut in its own error
            if not body_late and answered is None:
                raise
        finally:
            if timer is not None:
                timer.cancel()
        if answered is not None:
            await answered
        elif body_late and not response_started:
            await send_problem(scope, send, "request-timeout",
                               f"请求体须在{self.body_seconds:g}秒内送达 / the request body must "
                               f"arrive within {self.body_seconds:g} s", headers=_CLOSE)
