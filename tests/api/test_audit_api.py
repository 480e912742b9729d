"""Auditors over HTTP: published checkpoints anyone can copy, inclusion and consistency proofs
that verify against them, and verification runs that report without blocking the request."""

from __future__ import annotations

import time
from pathlib import Path

from api.demo import record_demo
from audit import checkpoints as cp
from audit import merkle, signing
from tests.api.conftest import PREFIX, Api, assert_problem


def sign_head(api: Api, keys: Path) -> str:
    keys.mkdir(mode=0o700, exist_ok=True)
    pem = keys / "ledger.pem"
    if not pem.exists():
        signing.create_signing_key(api.registry, pem)
    return signing.sign_checkpoint(api.app.state.database, pem).note


def test_checkpoints_are_published_and_proofs_verify_against_them(api: Api, tmp_path: Path) -> None:
    record_demo(api.registry)
    assert_problem(api.client.get(f"{PREFIX}/audit/checkpoints/latest"), 404)
    first = sign_head(api, tmp_path / "keys")
    latest = api.client.get(f"{PREFIX}/audit/checkpoints/latest")
    assert latest.status_code == 200 and latest.text == first
    signed, _ = cp.parse(latest.text)
    listing = api.client.get(f"{PREFIX}/audit/checkpoints").json()
    assert [c["note"] for c in listing] == [first]

    assert_problem(api.client.get(f"{PREFIX}/audit/proofs/inclusion", params={"position": 3}), 401)
    assert_problem(api.client.get(f"{PREFIX}/audit/proofs/inclusion", params={"position": 3},
                                  headers=api.headers("nanjing")), 403)
    r = api.client.get(f"{PREFIX}/audit/proofs/inclusion",
                       params={"position": 3, "tree_size": signed.size},
                       headers=api.headers("auditor"))
    assert r.status_code == 200, r.text
    p = r.json()
    assert bytes.fromhex(p["root"]) == signed.root
    assert merkle.verify_inclusion(bytes.fromhex(p["leaf_hash"]), p["leaf_index"], signed.size,
                                   [bytes.fromhex(h) for h in p["proof"]], signed.root)
    assert_problem(api.client.get(f"{PREFIX}/audit/proofs/inclusion", params={"position": 99_999},
                                  headers=api.headers("auditor")), 404)

    api.post("/consortia", _start(), who="nanjing")
    second, _ = cp.parse(sign_head(api, tmp_path / "keys"))
    r = api.client.get(f"{PREFIX}/audit/proofs/consistency",
                       params={"old_size": signed.size, "new_size": second.size},
                       headers=api.headers("auditor"))
    assert r.status_code == 200, r.text
    c = r.json()
    assert merkle.verify_consistency(signed.size, second.size, signed.root, second.root,
                                     [bytes.fromhex(h) for h in c["proof"]])
    assert_problem(api.client.get(f"{PREFIX}/audit/proofs/consistency",
                                  params={"old_size": 10_000}, headers=api.headers("auditor")), 422)


def test_a_verification_runs_in_the_background_and_reports(api: Api, tmp_path: Path) -> None:
    record_demo(api.registry)
    sign_head(api, tmp_path / "keys")
    started = api.client.post(f"{PREFIX}/audit/verifications", headers=api.headers("auditor"))
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    deadline = time.monotonic() + 30
    job = started.json()
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api.client.get(location, headers=api.headers("auditor")).json()
    assert job["state"] == "done", job
    assert job["report"]["ok"] is True
    assert job["report"]["chain"]["records"] == job["records_total"] == api.head()
    assert job["report"]["semantic"]["ok"] is True
    assert_problem(api.client.post(f"{PREFIX}/audit/verifications",
                                   headers=api.headers("nanjing")), 403)


def _start() -> dict[str, object]:
    from tests.api import payloads as p

    return p.start(lead=p.unit("enterprise", "审计测试企业"))


def test_a_record_proof_bundle_downloads_and_verifies_offline(api: Api, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    record_demo(api.registry)
    assert_problem(api.client.get(f"{PREFIX}/audit/records/3/proof-bundle",
                                  headers=api.headers("auditor")), 404)  # nothing signed yet
    sign_head(api, tmp_path / "keys")
    r = api.client.get(f"{PREFIX}/audit/records/3/proof-bundle", headers=api.headers("auditor"))
    assert r.status_code == 200, r.text
    bundle = tmp_path / "finding.json"
    bundle.write_text(json.dumps(r.json()), encoding="utf-8")
    offline = Path(__file__).resolve().parents[2] / "audit" / "offline.py"
    done = subprocess.run([sys.executable, str(offline), str(bundle)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_problem(api.client.get(f"{PREFIX}/audit/records/99999/proof-bundle",
                                  headers=api.headers("auditor")), 404)
    assert_problem(api.client.get(f"{PREFIX}/audit/records/3/proof-bundle",
                                  headers=api.headers("nanjing")), 403)
