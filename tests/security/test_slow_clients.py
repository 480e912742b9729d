"""A client that sends its request body too slowly (or stops half-way) gets a 408 problem+json
from the running service, on SQLite and on PostgreSQL: nothing is recorded, its Idempotency-Key
is not taken, and the service goes on serving others."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api import payloads as p
from tests.reliability.ledger_checks import ledger_events
from tests.reliability.service import PREFIX, Service, make_keys
from tests.reliability.workload import CALLERS

BODY_SECONDS = 1.0


@pytest.fixture
def running(database_url: str, tmp_path: Path) -> Iterator[Service]:
    service = Service(database_url, log=tmp_path / "service.log",
                      keys=make_keys(database_url, CALLERS),
                      env={"CONSORTIA_BODY_TIMEOUT": str(BODY_SECONDS)})
    try:
        yield service.start()
    finally:
        service.stop()


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:  # the service closed the connection after its answer
            return data
        data += chunk


def test_a_body_that_stops_half_way_is_a_408_and_records_nothing(running: Service,
                                                                 database_url: str) -> None:
    body = json.dumps(p.start()).encode()
    key = running.keys["nanjing"]
    before = len(ledger_events(database_url))
    request = (f"POST {PREFIX}/consortia HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
               f"Idempotency-Key: slow-1\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
        sock.sendall(request + body[:len(body) // 2])  # and then nothing more
        started = time.monotonic()
        raw = _read_response(sock)
        waited = time.monotonic() - started
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), raw[:200]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(payload)["type"].endswith("/request-timeout")
    assert BODY_SECONDS * 0.8 < waited < BODY_SECONDS + 10
    assert len(ledger_events(database_url)) == before

    # Others were served meanwhile, and the same key with the whole body is a new request.
    with running.client() as client:
        assert client.get("/consortia").status_code == 200
        r = client.post("/consortia", json=p.start(), headers={
            "Authorization": f"Bearer {key}", "Idempotency-Key": "slow-1"})
        assert r.status_code == 201, r.text
        assert "Idempotent-Replayed" not in r.headers
    assert len(ledger_events(database_url)) == before + 1
