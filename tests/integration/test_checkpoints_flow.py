"""Signed checkpoints held by auditors close what the chain alone cannot show: a cut-off tail,
a ledger rewritten with freshly computed links, and checkpoints signed by unknown or revoked
keys. Keys are ledger events; private keys are files outside the database."""

from __future__ import annotations

import contextlib
import io
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from api.cli import main as cli
from api.demo import record_demo
from audit import checkpoints as cp
from audit import tree
from audit.chain import chain
from audit.ledger import rows
from audit.store import open_registry, parse_database_url
from audit.verify import verify_chain
from tests.factories import NANJING, TODAY, lead_qualification, unit
from tests.integration.tamper import Tamperer


def run(*argv: str) -> tuple[int, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(list(argv))
    text = out.getvalue()
    try:
        return code, json.loads(text)
    except json.JSONDecodeError:
        return code, text


@pytest.fixture
def signed(database_url: str, tmp_path: Path) -> tuple[str, Path, Path]:
    """A demo ledger with a signing key in its keyring and a checkpoint file an auditor keeps."""
    reg = open_registry(database_url, clock=lambda: TODAY)
    record_demo(reg)
    reg.close()
    key = tmp_path / "keys" / "ledger.pem"
    key.parent.mkdir(mode=0o700)
    code, vkey = run("keys", "signing", "create", "--out", str(key), "--database", database_url)
    assert code == 0
    (tmp_path / "vkey.txt").write_text(vkey.strip())
    code, note = run("checkpoint", "--key", str(key), "--database", database_url)
    assert code == 0 and note.splitlines()[1] == "46"  # 44 demo records + the keyring's 2
    held = tmp_path / "checkpoint.txt"
    held.write_text(note, encoding="utf-8")
    return database_url, key, held


def test_an_intact_ledger_matches_the_checkpoint_the_auditor_holds(signed: Any) -> None:
    url, _, held = signed
    code, report = run("verify", "--database", url, "--checkpoint", str(held), "--json")
    assert code == 0 and report["ok"], json.dumps(report)
    assert report["tree_size"] == 46


def test_a_cut_off_tail_is_named_as_truncated(signed: Any) -> None:
    url, _, held = signed
    t = Tamperer(url)
    for position in (46, 45, 44):  # the tail, keyring records included
        t.delete_event(position, with_link=True)
    assert verify_chain(parse_database_url(url)).ok  # the chain alone cannot see it
    vkey = (held.parent / "vkey.txt").read_text()  # the auditor trusts the published key
    code, report = run("verify", "--database", url, "--checkpoint", str(held), "--key", vkey,
                       "--json")
    assert code == 1
    assert report["first"]["kind"] == "truncated" and report["first"]["position"] == 43


def test_a_ledger_rewritten_with_recomputed_links_fails_the_checkpoint(signed: Any) -> None:
    url, _, held = signed
    db = parse_database_url(url)
    t = Tamperer(url)
    t.edit_state(2, "东南大学".encode(), "西南大学".encode())
    # The forger recomputes every link from position 2 on, as if written so from the start.
    records = [r.record for r in rows(db) if r.position >= 2 and r.record is not None]
    previous = bytes(t.link_row(1)[2])
    for link in chain(records, previous):
        t.execute(f"UPDATE {t.lk} SET prev_hash = ?, hash = ? WHERE position = ?",
                  (link.previous_hash, link.hash, link.position), triggers_off=True)
    assert verify_chain(db).ok  # a consistent rewrite passes the chain walk …
    code, report = run("verify", "--database", url, "--checkpoint", str(held), "--json")
    assert code == 1  # … but not the checkpoint signed before it
    assert report["first"]["kind"] == "rewritten" and report["first"]["position"] == 46


def test_checkpoints_signed_by_an_unknown_or_revoked_key_are_refused(signed: Any,
                                                                      tmp_path: Path) -> None:
    url, key, _ = signed
    db = parse_database_url(url)
    size = tree.integrate(db)
    origin = Path(signed[2]).read_text().splitlines()[0]
    head = cp.Checkpoint(origin, *tree.tree_head(db, size), time=datetime(2026, 11, 25, tzinfo=UTC))
    stranger_pem, _ = cp.generate_key(head.origin)
    forged = tmp_path / "forged.txt"
    forged.write_text(cp.sign(head, cp.signer_from_pem(stranger_pem, head.origin)))
    code, report = run("verify", "--database", url, "--checkpoint", str(forged), "--json")
    assert code == 1 and "UnknownKey" in report["checkpoint_problems"][0]

    key_id = f"{cp.load_signer(key, head.origin).key_id:08x}"
    assert run("keys", "signing", "revoke", key_id, "--reason", "泄露", "--database", url)[0] == 0
    reg = open_registry(url, clock=lambda: TODAY)
    reg.select_lead(name="撤销后联合体", city="nanjing", lead=unit(),
                    qualification=lead_qualification(), fields=["quantum"], actor=NANJING,
                    effective_date=date(2024, 1, 1))
    reg.close()
    later = tree.integrate(db)
    late_head = cp.Checkpoint(head.origin, *tree.tree_head(db, later), time=head.time)
    late = tmp_path / "late.txt"
    late.write_text(cp.sign(late_head, cp.load_signer(key, head.origin)))
    code, report = run("verify", "--database", url, "--checkpoint", str(late), "--json")
    assert code == 1 and "RevokedKey" in report["checkpoint_problems"][0]
    assert run("checkpoint", "--key", str(key), "--database", url)[0] == 2  # refused to sign


def test_incremental_verification_rehashes_only_records_after_the_checkpoint(signed: Any) -> None:
    url, _, held = signed
    reg = open_registry(url, clock=lambda: TODAY)
    cid = reg.select_lead(name="增量联合体", city="nanjing", lead=unit(),
                          qualification=lead_qualification(), fields=["quantum"], actor=NANJING,
                          effective_date=date(2024, 1, 1))["consortium_id"]
    for _ in range(4):
        reg.admit_member(cid, unit(), actor=NANJING, effective_date=date(2024, 1, 2))
    reg.close()
    code, report = run("verify", "--database", url, "--checkpoint", str(held),
                       "--from-checkpoint", "--json")
    assert code == 0, report
    assert report["incremental_from"] == 46 and report["records"] == 5
    Tamperer(url).edit_state(49, b'"effective_date"', b'"effective_date" ')
    code, report = run("verify", "--database", url, "--checkpoint", str(held),
                       "--from-checkpoint", "--json")
    assert code == 1 and report["first"]["position"] == 49


def test_a_key_file_others_can_read_is_refused(signed: Any) -> None:
    url, key, _ = signed
    os.chmod(key, 0o644)
    assert run("checkpoint", "--key", str(key), "--database", url)[0] == 2


def test_consortia_export_writes_a_bundle_the_offline_verifier_accepts(signed: Any,
                                                                       tmp_path: Path) -> None:
    import subprocess
    import sys

    url, _, held = signed
    bundle = tmp_path / "evidence.json"
    assert run("export", "--out", str(bundle), "--database", url)[0] == 0
    assert run("export", "--out", str(bundle), "--database", url)[0] == 2  # never overwritten
    vkey = (held.parent / "vkey.txt").read_text()
    offline = Path(__file__).resolve().parents[2] / "audit" / "offline.py"
    done = subprocess.run([sys.executable, str(offline), str(bundle), "--key", vkey],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "46 record(s)" in done.stdout


def run_err(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_given_keys_replace_the_ledgers_own_keyring(signed: Any) -> None:
    url, _, held = signed
    vkey = (held.parent / "vkey.txt").read_text()
    code, report = run("verify", "--database", url, "--checkpoint", str(held), "--key", vkey,
                       "--json")
    assert code == 0 and report["ok"] and report["checkpoint_problems"] == []
    # An auditor who trusts another key only: the ledger's stored checkpoint and the held one,
    # both signed by the ledger's key, no longer count, whatever the keyring says.
    _, stranger = cp.generate_key(Path(held).read_text().splitlines()[0])
    code, report = run("verify", "--database", url, "--checkpoint", str(held),
                       "--key", stranger, "--json")
    assert code == 1 and not report["ok"]
    assert len(report["checkpoint_problems"]) == 2
    assert all("UnknownKey" in p for p in report["checkpoint_problems"])


def test_a_checkpoint_of_another_log_is_refused(signed: Any, tmp_path: Path) -> None:
    url, key, held = signed
    db = parse_database_url(url)
    # The same key (its name is this log's) signs a head that names another log as origin.
    name = held.read_text().splitlines()[0]
    size = tree.integrate(db)
    foreign = cp.Checkpoint("other.registry.example/ledger", *tree.tree_head(db, size),
                            time=datetime(2026, 11, 25, tzinfo=UTC))
    note = tmp_path / "foreign.txt"
    note.write_text(cp.sign(foreign, cp.load_signer(key, name)))
    code, report = run("verify", "--database", url, "--checkpoint", str(note), "--json")
    assert code == 1 and "WrongOrigin" in report["checkpoint_problems"][0]


def test_unusable_arguments_are_one_line_errors_that_exit_2(signed: Any, tmp_path: Path) -> None:
    url = signed[0]
    cases = [
        ("verify", "--database", url, "--checkpoint", str(tmp_path / "missing.txt")),
        ("verify", "--database", url, "--key", "not a vkey"),
        ("checkpoint", "--key", str(tmp_path / "missing.pem"), "--database", url),
        ("keys", "signing", "create", "--out", str(tmp_path / "no" / "such" / "dir.pem"),
         "--database", url),
    ]
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe checkpoint")
    cases.append(("verify", "--database", url, "--checkpoint", str(tmp_path / "binary.txt")))
    for argv in cases:
        code, out, err = run_err(*argv)
        assert code == 2, (argv, out, err)
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert len(cp_rows(url)) == 1  # nothing stored by any of them
    assert not (tmp_path / "no").exists()


def cp_rows(url: str) -> list[Any]:
    from audit.signing import stored_checkpoints

    return stored_checkpoints(parse_database_url(url))


def keyring_events(url: str) -> list[str]:
    from audit.ledger import consortium_history
    from audit.signing import KEYRING_ID

    return [r["event"] for r in consortium_history(parse_database_url(url), KEYRING_ID)]


def test_rotating_away_from_a_key_the_ledger_does_not_hold_writes_nothing(signed: Any,
                                                                          tmp_path: Path) -> None:
    url, key, held = signed
    name = held.read_text().splitlines()[0]
    stranger_pem, _ = cp.generate_key(name)
    stranger = tmp_path / "keys" / "stranger.pem"
    cp.write_private_key(stranger, stranger_pem)
    new = tmp_path / "keys" / "new.pem"
    before = keyring_events(url)
    code, _, err = run_err("keys", "signing", "rotate", "--key", str(stranger), "--out", str(new),
                           "--database", url)
    assert code == 2 and "not an active key" in err
    assert not new.exists() and keyring_events(url) == before

    key_id = f"{cp.load_signer(key, name).key_id:08x}"
    assert run("keys", "signing", "revoke", key_id, "--reason", "退役", "--database", url)[0] == 0
    before = keyring_events(url)
    code, _, err = run_err("keys", "signing", "rotate", "--key", str(key), "--out", str(new),
                           "--database", url)
    assert code == 2 and "not an active key" in err
    assert not new.exists() and keyring_events(url) == before


def test_a_rotation_is_refused_before_writing_when_out_is_unusable(signed: Any,
                                                                   tmp_path: Path) -> None:
    url, key, _ = signed
    before = keyring_events(url)
    for out in (key, tmp_path / "absent" / "new.pem"):
        code, _, err = run_err("keys", "signing", "rotate", "--key", str(key), "--out", str(out),
                               "--database", url)
        assert code == 2 and err.count("\n") == 1, err
    assert keyring_events(url) == before and len(cp_rows(url)) == 1
    new = tmp_path / "keys" / "new.pem"
    code, vkey, _ = run_err("keys", "signing", "rotate", "--key", str(key), "--out", str(new),
                            "--database", url)
    assert code == 0 and new.exists()
    new_name, new_id, _ = cp.parse_vkey(vkey.strip())
    assert new_id == cp.load_signer(new, new_name).key_id
    assert keyring_events(url)[len(before):] == ["KeyAdded", "KeyRevoked"]


def test_verify_names_the_records_no_checkpoint_covers(signed: Any) -> None:
    url = signed[0]
    code, text = run("verify", "--database", url)
    assert code == 0 and "not yet under a checkpoint" not in text
    reg = open_registry(url, clock=lambda: TODAY)
    reg.select_lead(name="未签联合体", city="nanjing", lead=unit(),
                    qualification=lead_qualification(), fields=["quantum"], actor=NANJING,
                    effective_date=date(2024, 1, 1))
    reg.close()
    code, report = run("verify", "--database", url, "--json")
    assert code == 0 and report["checkpoint_covers"] == 46
    assert report["records_after_last_checkpoint"] == 1
    code, text = run("verify", "--database", url)
    assert code == 0
    assert "not yet under a checkpoint: the last 1 records (after the checkpoint of size 46)" in text
