"""A key revoked by the operator (``consortia keys revoke``, another process) is refused by the
running service at its very next request — on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth import key_id_of
from tests.api import payloads as p
from tests.reliability.service import ROOT, Service, make_keys
from tests.reliability.workload import CALLERS


@pytest.fixture
def running(database_url: str, tmp_path: Path) -> Iterator[Service]:
    service = Service(database_url, log=tmp_path / "service.log",
                      keys=make_keys(database_url, CALLERS))
    try:
        yield service.start()
    finally:
        service.stop()


def test_a_key_revoked_from_the_command_line_is_refused_at_once(running: Service,
                                                                database_url: str) -> None:
    key = running.keys["nanjing"]
    auth = {"Authorization": f"Bearer {key}"}
    with running.client() as client:
        r = client.post("/consortia", json=p.start(), headers=auth)
        assert r.status_code == 201, r.text
        key_id = key_id_of(key)
        assert key_id is not None
        done = subprocess.run([sys.executable, "-m", "api.cli", "--database", database_url,
                               "keys", "revoke", key_id], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        for headers in (auth, {**auth, "Idempotency-Key": "after-revocation"}):
            r = client.post("/consortia", json=p.start(), headers=headers)
            assert r.status_code == 401, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "unauthenticated"
        r = client.get("/consortia/" + "00000000-0000-4000-8000-000000000000", headers=auth)
        assert r.status_code == 401, r.text
