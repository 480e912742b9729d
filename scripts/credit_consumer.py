#!/usr/bin/env python3
"""An example consumer of the registry's credit feed, as a credit-management system would run it.

Standalone on purpose (Python 3.11 standard library; ``cryptography`` only for Ed25519 webhooks):
copy it and adapt ``Consumer.apply``. It keeps its state in one SQLite file — the cursor, the ids
of the events it has applied, and the dishonesty records currently in publicity — and applies each
page in one transaction with its cursor, so a crash between two pages repeats nothing.

    # pull: first load from the snapshot, then follow the feed with long polls
    python scripts/credit_consumer.py pull --api http://127.0.0.1:8000/api/v1 --key cr_… \\
        --state var/credit-consumer.db

    # push: receive Standard Webhooks deliveries, verify them, deduplicate by webhook-id
    python scripts/credit_consumer.py receive --port 8090 --secret whsec_… \\
        --state var/credit-consumer.db

Events (docs/credit-feed.md): ``violation-recorded`` adds a record, or removes it when it comes
withdrawn; ``violation-repaired``, ``violation-revoked`` and ``publicity-ended`` remove it;
``consortium-delisted`` is kept as a fact about the consortium.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sqlite3
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "cn.jiangsu.consortium.credit."
TOLERANCE = 300  # seconds a webhook-timestamp may differ from this clock

Fetch = Callable[[str, Mapping[str, Any]], dict[str, Any]]


class BadSignature(ValueError):
    pass


def verify_signature(keys: Iterable[str], body: bytes, headers: Mapping[str, str], *,
                     now: float | None = None, tolerance: int = TOLERANCE) -> str:
    """Standard Webhooks 1.0: returns the webhook-id when one signature matches one key
    (``whsec_…`` for HMAC-SHA256 ``v1``, ``whpk_…`` for Ed25519 ``v1a``)."""
    h = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, ts, signatures = h["webhook-id"], int(h["webhook-timestamp"]), \
            h["webhook-signature"]
    except (KeyError, ValueError):
        raise BadSignature("missing or malformed webhook headers") from None
    if abs((time.time() if now is None else now) - ts) > tolerance:
        raise BadSignature("webhook-timestamp outside the tolerance")
    content = f"{msg_id}.{ts}.".encode() + body
    for item in signatures.split():
        version, _, encoded = item.partition(",")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        for key in keys:
            if version == "v1" and key.startswith("whsec_"):
                secret = base64.b64decode(key.removeprefix("whsec_"))
                if hmac.compare_digest(hmac.new(secret, content, hashlib.sha256).digest(),
                                       signature):
                    return msg_id
            elif version == "v1a" and key.startswith("whpk_"):
                from cryptography.exceptions import InvalidSignature
                from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

                public = Ed25519PublicKey.from_public_bytes(
                    base64.b64decode(key.removeprefix("whpk_")))
                try:
                    public.verify(signature, content)
                    return msg_id
                except InvalidSignature:
                    continue
    raise BadSignature("no signature matches a trusted key")


class Consumer:
    """The consumer's state and how it applies events (idempotent: an event id applies once)."""

    def __init__(self, state: str, fetch: Fetch | None = None) -> None:
        self.db = sqlite3.connect(state, isolation_level=None, check_same_thread=False)
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY);"
            "CREATE TABLE IF NOT EXISTS records (consortium TEXT, record_id TEXT, uscc TEXT, "
            " data TEXT, PRIMARY KEY (consortium, record_id));"
            "CREATE TABLE IF NOT EXISTS delistings (consortium TEXT PRIMARY KEY, data TEXT);")
        self.fetch = fetch
        self.applied = 0  # events applied by this process (duplicates are not counted)

    @property
    def cursor(self) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = 'cursor'").fetchone()
        return None if row is None else str(row[0])

    def apply_all(self, events: Iterable[Mapping[str, Any]], cursor: str | None = None) -> None:
        """Apply events (skipping any already applied) and store the cursor, atomically."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                if self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)",
                                   (event["id"],)).rowcount:
                    self.apply(event)
                    self.applied += 1
            if cursor is not None:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (cursor,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def apply(self, event: Mapping[str, Any]) -> None:
        """Adapt here: what the credit system does with each kind of event."""
        kind = str(event["type"]).removeprefix(PREFIX).rsplit(".", 1)[0]
        data = event["data"]
        if kind == "consortium-delisted":
            self.db.execute("INSERT OR REPLACE INTO delistings VALUES (?, ?)",
                            (data["consortium"]["id"], json.dumps(data, ensure_ascii=False)))
            return
        key = (data["consortium"]["id"], data["record_id"])
        if kind == "violation-recorded" and not data.get("withdrawn"):
            self.db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                            (*key, event["subject"], json.dumps(data, ensure_ascii=False)))
        else:  # withdrawn, repaired, revoked or publicity ended: the content must go
            self.db.execute("DELETE FROM records WHERE consortium = ? AND record_id = ?", key)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in
                self.db.execute("SELECT data FROM records ORDER BY consortium, record_id")]

    # ---------------------------------------------------------------------------------- pull
    def sync(self, *, wait: float = 0, limit: int = 100) -> bool:
        """One step: the snapshot on first load, else one page of the feed. True when the page
        was full (more to read at once)."""
        assert self.fetch is not None
        if self.cursor is None:
            snapshot = self.fetch("/feeds/credit/snapshot", {})
            self.apply_all(snapshot["events"], snapshot["cursor"])
            return True
        page = self.fetch("/feeds/credit", {"after": self.cursor, "limit": limit, "wait": wait})
        self.apply_all(page["events"], page["cursor"])
        return bool(page["more"])

    def follow(self, *, wait: float = 25) -> None:
        while True:
            try:
                self.sync(wait=wait)  # returns at once with events, or after ``wait`` without
            except OSError as e:  # the registry is away: try again shortly
                print(f"credit feed unavailable: {e}", file=sys.stderr)
                time.sleep(5)


def http_fetch(api: str, key: str) -> Fetch:
    def fetch(path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        url = api.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            result: dict[str, Any] = json.load(response)
            return result

    return fetch


def receiver(consumer: Consumer, keys: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                verify_signature(keys, body, dict(self.headers.items()))
                event = json.loads(body)
            except (BadSignature, ValueError):
                self.send_response(401)
                self.end_headers()
                return
            consumer.apply_all([event])  # a redelivered id is acknowledged, not applied twice
            self.send_response(204)
            self.end_headers()

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="credit-feed consumer example")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("pull", help="follow the pull feed")
    p.add_argument("--api", required=True, help="e.g. http://127.0.0.1:8000/api/v1")
    p.add_argument("--key", required=True, help="a credit_consumer API key")
    p.add_argument("--state", required=True, help="SQLite file for cursor and records")
    p.add_argument("--once", action="store_true", help="catch up and exit")
    r = sub.add_parser("receive", help="receive webhook deliveries")
    r.add_argument("--port", type=int, default=8090)
    r.add_argument("--secret", action="append", default=[],
                   help="whsec_… or whpk_… (repeat while a key rotates)")
    r.add_argument("--state", required=True)
    args = parser.parse_args(argv)
    if args.mode == "pull":
        consumer = Consumer(args.state, http_fetch(args.api, args.key))
        if args.once:
            while consumer.sync():
                pass
            print(f"{consumer.applied} events applied; {len(consumer.records())} records in "
                  "publicity")
            return 0
        consumer.follow()
        return 0
    consumer = Consumer(args.state)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), receiver(consumer, args.secret))
    print(f"receiving on http://127.0.0.1:{args.port}/", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
