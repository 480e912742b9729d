"""``Idempotency-Key`` on POST: a retry gets the first answer and writes nothing.

Keys are kept per client (the API key id) in the table ``idempotency_keys`` of the registry's
database, with a fingerprint of the request (method, path, ``If-Match`` and the canonical JSON
body) and, once answered, the status, the headers that matter (``Content-Type``, ``ETag``,
``Location``) and the body.

Concurrent retries are serialised by the primary key: the first request inserts a *pending* row
and runs; another one with the same key finds the row and waits (bounded) for the answer, then
replays it. A pending row older than the lease (a process died mid-request) may be taken over.
Answers with a status below 500 are kept; a 5xx releases the key so that a retry runs again. An
answer is sent only once it is kept, so that a client that saw it gets the same one on a retry.
The same key with another request → 422 ``idempotency-key-reused``. A key is remembered for 24
hours from its first use (``CONSORTIA_IDEMPOTENCY_HOURS``), then removed.

Known limit: the row and the ledger's events are not written in one transaction; a process dying
between the two leaves a pending row that is taken over after the lease. A retry then runs again
and is refused rather than written twice: on an existing consortium its ``If-Match`` makes it a
412; a ``POST /consortia`` starts the consortium under an id derived from the client and the key
(``api.deps.formation_id_for``), so its retry finds the id taken and answers 409
``consortium-already-started`` with the consortium's ``Location``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyStore
from api.problems import send_bytes, send_problem, unavailable_problem
from api.sqlstore import SqlStore, StoreUnavailable, utcnow

log = logging.getLogger("consortia.api")

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
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: as sent
        canonical = body
    h = hashlib.sha256()
    for part in (method.upper().encode(), path.encode("utf-8"), (if_match or "").encode("utf-8")):
        h.update(len(part).to_bytes(8, "big") + part)
    h.update(canonical)
    return h.hexdigest()


#: How long a key is remembered from its first use (``CONSORTIA_IDEMPOTENCY_HOURS``).
DEFAULT_RETENTION = timedelta(hours=24)
#: How often a process removes the keys older than that (checked when a key is claimed).
PRUNE_EVERY_SECONDS = 600.0


class IdempotencyStore:
    """The ``idempotency_keys`` table.

    A key is remembered for ``retention`` from its first use (24 hours by default), then removed:
    a retry after that runs as a new request. It still cannot write twice — its ``If-Match`` is
    stale by then (412), and a repeated ``POST /consortia`` finds its consortium started (409)."""

    def __init__(self, sql: SqlStore, *, lease: timedelta = timedelta(seconds=120),
                 retention: timedelta = DEFAULT_RETENTION,
                 prune_every: float = PRUNE_EVERY_SECONDS) -> None:
        self.sql = sql
        self.lease = lease
        self.retention = max(retention, lease)
        self.prune_every = prune_every
        self._next_prune = 0.0  # monotonic time of the next pruning; at the first claim

    def prune(self, now: datetime | None = None) -> int:
        """Remove the keys first used longer than ``retention`` ago; returns how many."""
        cutoff = (now or utcnow()) - self.retention
        return self.sql.execute("DELETE FROM idempotency_keys WHERE created_at < ?",
                                (self.sql.to_db_time(cutoff),))

    def _prune_when_due(self, now: datetime) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self.prune_every
        try:
            removed = self.prune(now)
        except StoreUnavailable:
            self._next_prune = 0.0
            raise
        if removed:
            log.info("removed %d idempotency keys older than %s", removed, self.retention)

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
        self._prune_when_due(now)
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


def _collect(messages: list[Message]) -> Send:
    async def send(message: Message) -> None:
        messages.append(message)

    return send


class IdempotencyMiddleware:
    """Pure ASGI middleware: answers retried POSTs from the store, records first answers."""

    def __init__(self, app: ASGIApp, *, keys: KeyStore, store: IdempotencyStore,
                 wait_seconds: float = 10.0, poll_seconds: float = 0.05,
                 keep_seconds: float = 10.0) -> None:
        self.app = app
        self.keep_seconds = keep_seconds
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
            await send_problem(scope, send, "invalid-idempotency-key",
                               "幂等键应为1–255个可见ASCII字符 / an Idempotency-Key is 1–255 visible "
                               "ASCII characters")
            return
        try:
            await self._handle(scope, receive, send, headers, key)
        except StoreUnavailable as e:
            p = unavailable_problem("POST", scope.get("path", ""), e)
            await send_problem(scope, send, p.code, p.detail, headers=[("retry-after", "5")],
                               reason=p.extensions["reason"])

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
            await send_problem(scope, send, "idempotency-key-reused",
                               "该幂等键已用于另一个不同的请求 / this Idempotency-Key was used for a "
                               "different request (method, path, If-Match or body)")
            return
        if claim.outcome == "in_progress":
            await send_problem(scope, send, "idempotency-request-in-progress",
                               headers=[("retry-after", "1")])
            return
        if claim.outcome == "replay":
            assert claim.response is not None
            r = claim.response
            await send_bytes(send, r.status, [*r.headers, ("idempotent-replayed", "true")],
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

        # The answer is held back until it is kept: a client that has seen it can always have it
        # again with the same key (the answers of these routes are small JSON documents).
        messages: list[Message] = []
        try:
            await self.app(scope, replay_body, _collect(messages))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.store.release, client, key, token)
            raise
        status = next((int(m["status"]) for m in messages if m["type"] == "http.response.start"),
                      0)
        if 0 < status < 500:
            kept = [(k.decode("latin-1").lower(), v.decode("latin-1"))
                    for m in messages if m["type"] == "http.response.start"
                    for k, v in m.get("headers", [])
                    if k.decode("latin-1").lower() in KEPT_HEADERS]
            answer = StoredResponse(status, kept, b"".join(
                m.get("body", b"") for m in messages if m["type"] == "http.response.body"))
            await self._keep(client, key, token, answer)
        else:
            await run_in_threadpool(self.store.release, client, key, token)
        for message in messages:
            await send(message)

    async def _keep(self, client: str, key: str, token: str, answer: StoredResponse) -> None:
        """Record the answer, retrying for a while when the database is away: the command has
        been recorded, so the client gets its answer in any case. Should the database stay
        away, the key stays pending and a retry is refused once the lease has passed (412 for its
        now stale ``If-Match``; 409 ``consortium-already-started`` for a ``POST /consortia``)."""
        deadline = time.monotonic() + self.keep_seconds
        while True:
            try:
                await run_in_threadpool(self.store.complete, client, key, token, answer)
                return
            except StoreUnavailable as e:
                if time.monotonic() >= deadline:
                    log.warning("idempotency key %s of %s left pending: %r", key, client, e)
                    return
                await anyio.sleep(0.5)
