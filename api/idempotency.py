"""``Idempotency-Key`` on POST: a retry gets the first answer and writes nothing.

Keys are kept per client (the API key id) in the table ``idempotency_keys`` of the registry's
database, with a fingerprint of the request (method, path, ``If-Match`` and the canonical JSON
body) and, once answered, the status, the headers that matter (``Content-Type``, ``ETag``,
``Location``) and the body.

Concurrent retries are serialised by the primary key: the first request inserts a *pending* row
and runs; another one with the same key finds the row and waits (bounded) for the answer, then
replays it. A pending row older than the lease (a process died mid-request) may be taken over.
Answers with a status below 500 are kept; a 5xx releases the key so that a retry runs again.
The same key with another request → 422 ``idempotency-key-reused``.

Known limit: the row and the ledger's events are not written in one transaction; a process dying
between the two leaves a pending row that is taken over after the lease. A retry then runs again:
on an existing consortium its ``If-Match`` makes it a 412, but a retried ``POST /consortia`` could
start a second consortium.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyStore
from api.problems import problem_bytes
from api.sqlstore import SqlStore, StoreUnavailable, utcnow

HEADER = "idempotency-key"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
#: Response headers kept with the answer and replayed.
KEPT_HEADERS = ("content-type", "etag", "location")


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    outcome: str  # "new" | "replay" | "mismatch" | "in_progress"
    token: str = ""
    response: StoredResponse | None = None


def fingerprint(method: str, path: str, if_match: str | None, body: bytes) -> str:
    """The request's identity for idempotency: a semantically equal JSON body (other spacing or
    key order) has the same fingerprint."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False,
                               separators=(",", ":")).encode("utf-8") if body else b""
    except ValueError:
        canonical = body
    h = hashlib.sha256()
    for part in (method.upper().encode(), path.encode("utf-8"), (if_match or "").encode("utf-8")):
        h.update(len(part).to_bytes(8, "big") + part)
    h.update(canonical)
    return h.hexdigest()


class IdempotencyStore:
    """The ``idempotency_keys`` table."""

    def __init__(self, sql: SqlStore, *, lease: timedelta = timedelta(seconds=120)) -> None:
        self.sql = sql
        self.lease = lease

    def create_table(self) -> None:
        ts, blob = self.sql.timestamp_type, self.sql.blob_type
        self.sql.execute(
            "CREATE TABLE IF NOT EXISTS idempotency_keys ("
            "client_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, "
            "request_hash TEXT NOT NULL, state TEXT NOT NULL, claim_token TEXT NOT NULL, "
            f"status_code INTEGER, response_headers TEXT, response_body {blob}, "
            f"created_at {ts} NOT NULL, completed_at {ts}, "
            "PRIMARY KEY (client_id, idempotency_key))")

    def claim(self, client_id: str, key: str, request_hash: str) -> Claim:
        token = secrets.token_hex(16)
        now = utcnow()
        inserted = self.sql.execute(
            "INSERT INTO idempotency_keys (client_id, idempotency_key, request_hash, state, "
            "claim_token, created_at) VALUES (?, ?, ?, 'pending', ?, ?) "
            "ON CONFLICT (client_id, idempotency_key) DO NOTHING",
            (client_id, key, request_hash, token, self.sql.to_db_time(now)))
        if inserted == 1:
            return Claim("new", token)
        row = self.sql.fetchone(
            "SELECT request_hash, state, claim_token, status_code, response_headers, "
            "response_body, created_at FROM idempotency_keys "
            "WHERE client_id = ? AND idempotency_key = ?", (client_id, key))
        if row is None:  # released between our insert and our read: try once more
            return self.claim(client_id, key, request_hash)
        stored_hash, state, old_token, status, headers, body, created_at = row
        if stored_hash != request_hash:
            return Claim("mismatch")
        if state == "done":
            return Claim("replay", response=StoredResponse(
                int(status), [(str(k), str(v)) for k, v in json.loads(headers)], bytes(body)))
        created = self.sql.from_db_time(created_at)
        if created is not None and now - created > self.lease:
            taken = self.sql.execute(
                "UPDATE idempotency_keys SET claim_token = ?, created_at = ? "
                "WHERE client_id = ? AND idempotency_key = ? AND state = 'pending' "
                "AND claim_token = ?",
                (token, self.sql.to_db_time(now), client_id, key, old_token))
            if taken == 1:
                return Claim("new", token)
        return Claim("in_progress")

    def complete(self, client_id: str, key: str, token: str, response: StoredResponse) -> None:
        self.sql.execute(
            "UPDATE idempotency_keys SET state = 'done', status_code = ?, response_headers = ?, "
            "response_body = ?, completed_at = ? WHERE client_id = ? AND idempotency_key = ? "
            "AND claim_token = ?",
            (response.status, json.dumps(response.headers), response.body,
             self.sql.to_db_time(utcnow()), client_id, key, token))

    def release(self, client_id: str, key: str, token: str) -> None:
        self.sql.execute(
            "DELETE FROM idempotency_keys WHERE client_id = ? AND idempotency_key = ? "
            "AND state = 'pending' AND claim_token = ?", (client_id, key, token))


async def _send_bytes(send: Send, status: int, headers: list[tuple[str, str]],
                      body: bytes) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_problem(send: Send, scope: Scope, code: str, detail: str = "",
                        headers: list[tuple[str, str]] | None = None) -> None:
    status, body = problem_bytes(code, scope.get("path", ""), detail)
    await _send_bytes(send, status, [("content-type", "application/problem+json"),
                                     *(headers or [])], body)


class IdempotencyMiddleware:
    """Pure ASGI middleware: answers retried POSTs from the store, records first answers."""

    def __init__(self, app: ASGIApp, *, keys: KeyStore, store: IdempotencyStore,
                 wait_seconds: float = 10.0, poll_seconds: float = 0.05) -> None:
        self.app = app
        self.keys = keys
        self.store = store
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _KEY_RE.match(key):
            await _send_problem(send, scope, "invalid-idempotency-key",
                                "幂等键应为1–255个可见ASCII字符 / an Idempotency-Key is 1–255 visible "
                                "ASCII characters")
            return
        try:
            await self._handle(scope, receive, send, headers, key)
        except StoreUnavailable:
            await _send_problem(send, scope, "database-unavailable", headers=[("retry-after", "5")])

    async def _handle(self, scope: Scope, receive: Receive, send: Send, headers: Headers,
                      key: str) -> None:
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        principal = (await run_in_threadpool(self.keys.authenticate, token.strip())
                     if scheme.lower() == "bearer" and token.strip() else None)
        if principal is None:  # the route answers 401; nothing to remember
            await self.app(scope, receive, send)
            return
        # The route's auth dependency finds the principal here instead of looking it up again.
        scope.setdefault("state", {})["principal"] = (token.strip(), principal)

        body = b""
        while True:  # the size limit, outside this middleware, stops an oversized body
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break

        request_hash = fingerprint("POST", scope["path"], headers.get("if-match"), body)
        client = principal.key_id
        claim = await run_in_threadpool(self.store.claim, client, key, request_hash)
        deadline = time.monotonic() + self.wait_seconds
        while claim.outcome == "in_progress" and time.monotonic() < deadline:
            await anyio.sleep(self.poll_seconds)
            claim = await run_in_threadpool(self.store.claim, client, key, request_hash)

        if claim.outcome == "mismatch":
            await _send_problem(send, scope, "idempotency-key-reused",
                                "该幂等键已用于另一个不同的请求 / this Idempotency-Key was used for a "
                                "different request (method, path, If-Match or body)")
            return
        if claim.outcome == "in_progress":
            await _send_problem(send, scope, "idempotency-request-in-progress",
                                headers=[("retry-after", "1")])
            return
        if claim.outcome == "replay":
            assert claim.response is not None
            r = claim.response
            await _send_bytes(send, r.status, [*r.headers, ("idempotent-replayed", "true")],
                              r.body)
            return
        await self._run_and_keep(scope, receive, send, client, key, claim.token, body)

    async def _run_and_keep(self, scope: Scope, receive: Receive, send: Send, client: str,
                            key: str, token: str, body: bytes) -> None:
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # the body is consumed: only a disconnect can follow

        status = 0
        kept: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for k, v in message.get("headers", []):
                    name = k.decode("latin-1").lower()
                    if name in KEPT_HEADERS:
                        kept.append((name, v.decode("latin-1")))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.store.release, client, key, token)
            raise
        if 0 < status < 500:
            await run_in_threadpool(self.store.complete, client, key, token,
                                    StoredResponse(status, kept, b"".join(chunks)))
        else:
            await run_in_threadpool(self.store.release, client, key, token)
