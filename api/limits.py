"""Request body size limit (413), checked from ``Content-Length`` and again while the body streams
in (a chunked request has no length, and a client may lie about it)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_MEDIA_TYPE, problem_bytes

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # 1 MiB


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
        status, body = problem_bytes(
            "payload-too-large", scope.get("path", ""),
            f"请求体不得超过{self.max_bytes}字节 / the request body may not exceed "
            f"{self.max_bytes} bytes", max_bytes=self.max_bytes)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]})
        await send({"type": "http.response.body", "body": body})
