"""The registry split into processes: the service writes and reads with no projection of its own,
and ``consortia project`` keeps the views from another process, against the same database —
the shape docs/scale-out.md describes for PostgreSQL. Stopping the projection process stops the
views, not the writes; starting it again catches up. ``consortia deliver`` pushes the credit feed
from a process of its own in the same way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.api.payloads import start

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(url: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "api.cli", "--database", url, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@contextmanager
def _process(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _ready(base: str, proc: subprocess.Popen[str]) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "the service exited"
        try:
            if client.get("/healthz").status_code == 200:
                return client
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the service did not start within 60 s")


def _form(client: httpx.Client, key: str) -> dict[str, Any]:
    answer = client.post("/api/v1/consortia", json=start(),
                         headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_the_projection_runs_as_its_own_process_beside_a_service_without_one(
        database_url: str) -> None:
    key = _cli(database_url, "keys", "create", "--role", "city_bureau", "--city", "nanjing",
               "--name", "split").splitlines()[0].strip()
    port = _free_port()
    service_env = {"CONSORTIA_EMBEDDED_PROJECTION": "0"}
    with _process("--database", database_url, "serve", "--host", "127.0.0.1", "--port",
                  str(port), "--log-level", "warning", env=service_env) as service:
        client = _ready(f"http://127.0.0.1:{port}", service)
        auth = {"Authorization": f"Bearer {key}"}
        first = _form(client, key)

        # No projection anywhere yet: the write is in the ledger, the view has not seen it.
        behind = client.get(f"/api/v1/consortia/{first['consortium_id']}", headers=auth)
        assert behind.status_code == 404
        assert client.get("/readyz").json()["checks"]["projection"]["detail"]["lag"] >= 1

        with _process("--database", database_url, "project"):
            seen = client.get(f"/api/v1/consortia/{first['consortium_id']}",
                              params={"min_position": first["position"]}, headers=auth)
            assert seen.status_code == 200, seen.text
            assert seen.json()["name"] == start()["name"]
            second = _form(client, key)
            seen = client.get("/api/v1/consortia", headers=auth,
                              params={"min_position": second["position"]})
            assert {c["id"] for c in seen.json()["items"]} == {first["consortium_id"],
                                                               second["consortium_id"]}

        # The projection process stopped: writes go on, the view waits for the next one.
        third = _form(client, key)
        waited = client.get("/api/v1/consortia", headers=auth,
                            params={"min_position": third["position"]})
        assert waited.status_code == 503
        assert waited.headers["content-type"].startswith("application/problem+json")

        with _process("--database", database_url, "project"):
            caught_up = client.get("/api/v1/consortia", headers=auth,
                                   params={"min_position": third["position"]})
            assert caught_up.status_code == 200
            assert len(caught_up.json()["items"]) == 3
        client.close()

    # The views built across three processes equal a rebuild from position 0.
    from projections.projection import open_view, rebuild

    view = open_view(database_url)
    before = view.list_consortia(limit=100)[0]
    rebuild(database_url)
    assert view.list_consortia(limit=100)[0] == before


def test_the_credit_delivery_runs_as_its_own_process_and_resumes_after_a_stop(
        database_url: str) -> None:
    from api.webhooks import new_hmac_secret, verify
    from audit.store import open_registry
    from projections.credit_events import EVENT_TYPES
    from projections.credit_outbox import SigningKey, open_credit_store
    from tests.credit_helpers import Receiver, credit_history, wait_until
    from tests.factories import TODAY

    registry = open_registry(database_url, clock=lambda: TODAY)
    receiver = Receiver().start()
    store = open_credit_store(database_url)
    secret, now = new_hmac_secret(), time.time()
    store.create_subscription(subscription_id="platform", url=receiver.url,
                              event_types=EVENT_TYPES, signing="hmac", description="split",
                              created_by="test", key=SigningKey("k1", secret, None, now, None),
                              now=now)
    try:
        credit_history(registry, 1)  # six credit events, before any delivery process runs
        with _process("--database", database_url, "deliver"):
            wait_until(lambda: sum(a.ok for a in receiver.snapshot()) == 6, what="6 delivered")
        # Stopped: what is recorded now waits for the next delivery process.
        credit_history(registry, 2)
        with _process("--database", database_url, "deliver"):
            wait_until(lambda: sum(a.ok for a in receiver.snapshot()) == 12, what="12 delivered")
    finally:
        registry.close()
        receiver.stop()
        store.datastore.close()

    arrivals = receiver.snapshot()
    ids = [a.event["id"] for a in arrivals]
    assert len(set(ids)) == len(ids) == 12  # each once
    for subject in {a.event["subject"] for a in arrivals}:  # in ledger order per unit
        sequences = [a.event["sequence"] for a in arrivals if a.event["subject"] == subject]
        assert sequences == sorted(sequences), subject
    for a in arrivals:
        assert verify([secret], a.body, a.headers) == a.event["id"]
