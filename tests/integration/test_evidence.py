"""Evidence bundles on SQLite and PostgreSQL: exported from the ledger, verified by the standalone
``audit/offline.py`` in a subprocess that cannot import eventsourcing, psycopg or the project, and
refused — naming the position or checkpoint and the kind of problem — once the file is edited.
The offline verifier is also checked against the registry's own implementation (record hashes,
Merkle roots, inclusion proofs, checkpoint notes)."""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import cryptography
import pytest

from api.demo import record_demo
from audit import export, ledger, merkle, offline, tree
from audit.chain import Link, Record, canonical_id, link_hash
from audit.checkpoints import Checkpoint, Signer, generate_key, parse_vkey, sign, signer_from_pem
from audit.checkpoints import parse as parse_checkpoint
from audit.store import Database, open_registry, parse_database_url
from tests.factories import NANJING, TODAY, lead_qualification, unit
from tests.integration.tamper import Tamperer

ORIGIN = "consortia.test/ledger"
OFFLINE_SOURCE = Path(offline.__file__)
AUDIT_INIT = OFFLINE_SOURCE.parent / "__init__.py"


# --------------------------------------------------------------------------------------------
# An environment without the project: the standard library, and cryptography only
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfflineEnv:
    root: Path
    script: Path  # a lone copy of audit/offline.py
    package: Path  # a directory holding audit/__init__.py and audit/offline.py (for -m)
    deps: Path  # cryptography (and its compiled helper), nothing else
    cwd: Path  # an empty working directory

    def run(self, *args: str | Path, module: bool = False, code: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """``python -S`` (no site-packages at all) with PYTHONPATH = the deps (and, for ``-m``,
        the package copy), in an environment that inherits nothing else."""
        path = [str(self.deps)] + ([str(self.package)] if module else [])
        env = {"PYTHONPATH": os.pathsep.join(path), "PYTHONIOENCODING": "utf-8",
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if code is not None:
            head = ["-c", code]
        elif module:
            head = ["-m", "audit.offline"]
        else:
            head = [str(self.script)]
        return subprocess.run([sys.executable, "-S", *head, *map(str, args)], env=env,
                              cwd=self.cwd, capture_output=True, text=True, timeout=120)

    def verify(self, bundle: Path, *keys: str, module: bool = False) -> tuple[int, dict[str, Any]]:
        """Exit status and ``--json`` report of the offline verifier."""
        args: list[str | Path] = [bundle, "--json"]
        for key in keys:
            args += ["--key", key]
        done = self.run(*args, module=module)
        assert done.returncode in (0, 1, 2), done.stderr
        return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="session")
def offline_env(tmp_path_factory: pytest.TempPathFactory) -> OfflineEnv:
    root = tmp_path_factory.mktemp("offline")
    for d in ("script", "package/audit", "deps", "cwd"):
        (root / d).mkdir(parents=True)
    shutil.copy(OFFLINE_SOURCE, root / "script" / "offline.py")
    shutil.copy(OFFLINE_SOURCE, root / "package" / "audit" / "offline.py")
    shutil.copy(AUDIT_INIT, root / "package" / "audit" / "__init__.py")
    (root / "deps" / "cryptography").symlink_to(Path(cryptography.__file__).parent)
    cffi = importlib.util.find_spec("_cffi_backend")  # cryptography's compiled helper, if it uses one
    if cffi is not None and cffi.origin:
        (root / "deps" / Path(cffi.origin).name).symlink_to(cffi.origin)
    return OfflineEnv(root, root / "script" / "offline.py", root / "package", root / "deps",
                      root / "cwd")


def test_the_offline_environment_has_cryptography_but_not_the_project(offline_env: OfflineEnv) -> None:
    for module in ("eventsourcing", "psycopg", "domain", "fastapi", "pydantic"):
        done = offline_env.run(code=f"import {module}")
        assert done.returncode == 1 and f"No module named '{module}'" in done.stderr, module
    done = offline_env.run(code="import audit.chain", module=True)  # only offline.py was copied
    assert done.returncode == 1 and "No module named 'audit.chain'" in done.stderr
    done = offline_env.run(code=(
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as K\n"
        "k = K.generate(); k.public_key().verify(k.sign(b'x'), b'x'); print('ed25519 ok')"))
    assert done.returncode == 0 and "ed25519 ok" in done.stdout, done.stderr


def test_the_offline_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree_ = ast.parse(OFFLINE_SOURCE.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree_):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            assert node.module is not None
            imported.add(node.module.split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"__future__", "cryptography"}
    assert imported <= allowed, imported - allowed
    assert "cryptography" in imported


# --------------------------------------------------------------------------------------------
# A recorded, integrated, signed and exported ledger
# --------------------------------------------------------------------------------------------


@dataclass
class Exported:
    url: str
    db: Database
    path: Path
    size: int
    root: bytes
    signer: Signer
    vkey: str
    note: str
    tmp: Path
    data: dict[str, Any] = field(default_factory=dict)

    def edited(self, change: Callable[[dict[str, Any]], object], name: str = "edited.json") -> Path:
        """A copy of the bundle changed by ``change`` (which edits the parsed JSON in place)."""
        data = json.loads(self.path.read_text(encoding="utf-8"))
        change(data)
        out = self.tmp / name
        out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return out

    def checkpoint(self, root: bytes | None = None, size: int | None = None, *,
                   signer: Signer | None = None, origin: str = ORIGIN) -> str:
        size = self.size if size is None else size
        return sign(Checkpoint(origin, size, self.root if root is None else root, datetime.now(UTC)),
                    signer or self.signer)


def new_signer(name: str = ORIGIN) -> tuple[Signer, str]:
    pem, vkey = generate_key(name)
    return signer_from_pem(pem, name), vkey


def record_and_export(url: str, tmp: Path) -> Exported:
    reg = open_registry(url, clock=lambda: TODAY)
    record_demo(reg)
    reg.close()
    db = parse_database_url(url)
    size = tree.integrate(db)
    _, root = tree.tree_head(db)
    signer, vkey = new_signer()
    note = sign(Checkpoint(ORIGIN, size, root, datetime.now(UTC)), signer)
    path = tmp / "evidence.json"
    written = export.export_bundle(db, path, origin=ORIGIN, checkpoints=[note],
                                   keys=[{"vkey": vkey, "valid_from": 0, "revoked_at": None}])
    assert written == size > 30
    ex = Exported(url, db, path, size, root, signer, vkey, note, tmp)
    ex.data = json.loads(path.read_text(encoding="utf-8"))
    return ex


@pytest.fixture
def exported(database_url: str, tmp_path: Path) -> Exported:
    return record_and_export(database_url, tmp_path)


def test_the_bundle_holds_the_exact_stored_bytes_in_the_documented_form(exported: Exported) -> None:
    data = exported.data
    assert list(data) == ["format", "origin", "exported_at", "records", "checkpoints", "keys"]
    assert data["format"] == "jiangsu-consortia-evidence/v1" and data["origin"] == ORIGIN
    assert datetime.strptime(data["exported_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert data["checkpoints"] == [exported.note]
    assert data["keys"] == [{"vkey": exported.vkey, "valid_from": 0, "revoked_at": None}]
    stored = list(ledger.rows(exported.db))
    assert len(data["records"]) == len(stored) == exported.size
    for entry, row in zip(data["records"], stored, strict=True):
        assert row.record is not None and row.link is not None
        assert list(entry) == ["position", "originator_id", "originator_version", "topic", "state",
                               "previous_hash", "hash"]
        assert entry["position"] == row.position
        assert entry["originator_id"] == str(uuid.UUID(str(row.record.originator_id)))  # canonical
        assert entry["originator_version"] == row.record.originator_version
        assert entry["topic"] == row.record.topic
        assert base64.b64decode(entry["state"], validate=True) == row.record.state
        assert (entry["previous_hash"], entry["hash"]) == (row.link.previous_hash.hex(),
                                                           row.link.hash.hex())


def test_an_intact_bundle_verifies_offline_in_every_form(exported: Exported,
                                                         offline_env: OfflineEnv) -> None:
    code, report = offline_env.verify(exported.path, exported.vkey)
    assert code == 0, report
    assert report["ok"] and report["first"] is None and report["problems"] == []
    assert report["records"] == report["leaves"] == exported.size
    assert report["keys_from"] == "command line"
    assert report["head_hash"] == exported.data["records"][-1]["hash"]
    [cp] = report["checkpoints"]
    assert cp["size"] == exported.size and cp["ok"]
    assert base64.b64decode(cp["root"]) == exported.root
    assert cp["signed_by"] == [f"{exported.signer.name}+{exported.signer.key_id:08x}"]
    # the bundle's own keys (no --key), as a module, and in plain text
    assert offline_env.verify(exported.path)[0] == 0
    assert offline_env.verify(exported.path, exported.vkey, module=True)[0] == 0
    text = offline_env.run(exported.path, "--key", exported.vkey)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "evidence holds" in text.stdout and f"size {exported.size}" in text.stdout
    plain = offline_env.run(exported.path)
    assert plain.returncode == 0 and "taken from the bundle itself" in plain.stdout


# --------------------------------------------------------------------------------------------
# Edited bundles: exit 1, naming the first problem
# --------------------------------------------------------------------------------------------


def _state(entry: dict[str, Any]) -> bytes:
    return base64.b64decode(entry["state"])


def _set_state(entry: dict[str, Any], state: bytes) -> None:
    entry["state"] = base64.b64encode(state).decode("ascii")


def _rechain(records: list[dict[str, Any]], start: int) -> None:
    """Recompute every link from ``records[start]`` on, as a forger without the key would."""
    prev = bytes.fromhex(records[start]["previous_hash"])
    for r in records[start:]:
        h = link_hash(r["position"], r["originator_id"], r["originator_version"], r["topic"],
                      _state(r), prev)
        r["previous_hash"], r["hash"] = prev.hex(), h.hex()
        prev = h


def _with_root(note: str, root: bytes) -> str:
    lines = note.split("\n")
    lines[2] = base64.b64encode(root).decode("ascii")
    return "\n".join(lines)


@dataclass(frozen=True)
class Expect:
    kind: str
    position: int | None = None
    checkpoint: int | None = None
    also: tuple[str, ...] = ()  # the other kinds the report lists (no more)


def modify_state(ex: Exported, d: dict[str, Any]) -> Expect:
    r = d["records"][4]
    _set_state(r, _state(r).replace(b'"effective_date"', b'"effective_date" ', 1))
    return Expect("modified", position=r["position"])


def drop_record(ex: Exported, d: dict[str, Any]) -> Expect:
    after = d["records"][11]["position"]
    del d["records"][10]
    return Expect("missing", position=after, also=("truncated",))


def swap_records(ex: Exported, d: dict[str, Any]) -> Expect:
    r = d["records"]
    first = r[3]["position"]
    r[3], r[9] = r[9], r[3]
    return Expect("reordered", position=first)


def swap_record_contents(ex: Exported, d: dict[str, Any]) -> Expect:
    r = d["records"]
    for k in ("originator_id", "originator_version", "topic", "state"):
        r[3][k], r[9][k] = r[9][k], r[3][k]
    return Expect("reordered", position=r[3]["position"])


def break_link(ex: Exported, d: dict[str, Any]) -> Expect:
    r = d["records"][6]
    r["previous_hash"] = hashlib.sha256(b"elsewhere").hexdigest()
    return Expect("broken-link", position=r["position"])


def record_without_link(ex: Exported, d: dict[str, Any]) -> Expect:
    forged = dict(d["records"][-1], position=d["records"][-1]["position"] + 1, previous_hash=None,
                  hash=None)
    d["records"].append(forged)
    return Expect("inserted", position=forged["position"])


def change_checkpoint_root(ex: Exported, d: dict[str, Any]) -> Expect:
    d["checkpoints"][0] = _with_root(d["checkpoints"][0], hashlib.sha256(b"another root").digest())
    return Expect("bad-signature", checkpoint=1)  # an unauthenticated root holds nothing to it


def resign_another_root(ex: Exported, d: dict[str, Any]) -> Expect:
    d["checkpoints"][0] = ex.checkpoint(root=hashlib.sha256(b"another root").digest())
    return Expect("rewritten", position=d["records"][ex.size - 1]["position"], checkpoint=1)


def rewrite_with_fresh_links(ex: Exported, d: dict[str, Any]) -> Expect:
    r = d["records"][20]
    _set_state(r, _state(r).replace(b'"effective_date"', b'"effective_date" ', 1))
    _rechain(d["records"], 20)
    return Expect("rewritten", position=d["records"][ex.size - 1]["position"], checkpoint=1)


def sign_with_an_unknown_key(ex: Exported, d: dict[str, Any]) -> Expect:
    d["checkpoints"][0] = ex.checkpoint(signer=new_signer()[0])
    return Expect("unknown-key", checkpoint=1)


def truncate_below_the_checkpoint(ex: Exported, d: dict[str, Any]) -> Expect:
    d["records"] = d["records"][:ex.size - 3]
    return Expect("truncated", position=d["records"][-1]["position"], checkpoint=1)


def revoke_the_key_before(ex: Exported, d: dict[str, Any]) -> Expect:
    d["keys"][0]["revoked_at"] = ex.size - 1
    return Expect("revoked-key", checkpoint=1)


def key_valid_only_later(ex: Exported, d: dict[str, Any]) -> Expect:
    d["keys"][0]["valid_from"] = ex.size + 1
    return Expect("key-not-yet-valid", checkpoint=1)


def checkpoint_of_another_log(ex: Exported, d: dict[str, Any]) -> Expect:
    d["checkpoints"][0] = ex.checkpoint(origin="another.test/ledger")
    return Expect("wrong-origin", checkpoint=1)


def malformed_checkpoint(ex: Exported, d: dict[str, Any]) -> Expect:
    d["checkpoints"][0] = d["checkpoints"][0].replace("\n\n", "\n", 1)
    return Expect("malformed-checkpoint", checkpoint=1)


TAMPERING = [modify_state, drop_record, swap_records, swap_record_contents, break_link,
             record_without_link, change_checkpoint_root, resign_another_root,
             rewrite_with_fresh_links, sign_with_an_unknown_key, truncate_below_the_checkpoint,
             revoke_the_key_before, key_valid_only_later, checkpoint_of_another_log,
             malformed_checkpoint]


@pytest.mark.parametrize("tamper", TAMPERING, ids=[t.__name__ for t in TAMPERING])
def test_an_edited_bundle_is_refused_naming_the_first_problem(
        exported: Exported, offline_env: OfflineEnv, tamper: Callable[[Exported, dict[str, Any]], Expect],
) -> None:
    expected: list[Expect] = []
    bundle = exported.edited(lambda d: expected.append(tamper(exported, d)))
    [want] = expected
    for keys in ((exported.vkey,), ()):  # with the trusted key, and with the bundle's own keys
        code, report = offline_env.verify(bundle, *keys)
        assert code == 1, report
        first = report["first"]
        assert (first["kind"], first["position"], first["checkpoint"]) == (
            want.kind, want.position, want.checkpoint), report["problems"]
        assert {p["kind"] for p in report["problems"]} == {want.kind, *want.also}, report["problems"]
    text = offline_env.run(bundle, "--key", exported.vkey)
    assert text.returncode == 1
    if want.checkpoint is None:
        where = f"position {want.position}"
    elif want.position is None:
        where = f"checkpoint {want.checkpoint}"
    else:
        where = f"position {want.position} (checkpoint {want.checkpoint})"
    assert f"BUNDLE DAMAGED at {where}: {want.kind}" in text.stdout, text.stdout


def test_a_rewritten_bundle_signed_by_its_own_key_needs_the_trusted_key(
        exported: Exported, offline_env: OfflineEnv) -> None:
    """A forger who rewrites history, re-signs it and ships their own key makes a bundle that is
    consistent in itself; only the key the auditor already holds shows it is not the registry's."""
    forger, forged_vkey = new_signer()

    def forge(d: dict[str, Any]) -> None:
        r = d["records"][5]
        _set_state(r, _state(r).replace(b'"effective_date"', b'"effective_date" ', 1))
        _rechain(d["records"], 5)
        root = merkle.reference_root([bytes.fromhex(r["hash"]) for r in d["records"]])
        d["checkpoints"] = [exported.checkpoint(root=root, signer=forger)]
        d["keys"] = [{"vkey": forged_vkey, "valid_from": 0, "revoked_at": None}]

    bundle = exported.edited(forge)
    code, report = offline_env.verify(bundle)
    assert code == 0 and report["keys_from"] == "bundle"
    code, report = offline_env.verify(bundle, exported.vkey)
    assert code == 1 and report["first"]["kind"] == "unknown-key", report
    assert "no signature by a key given with --key" in report["first"]["detail"]


def test_a_revocation_listed_in_the_bundle_binds_the_trusted_key(exported: Exported,
                                                                 offline_env: OfflineEnv) -> None:
    def revoke(d: dict[str, Any]) -> None:
        d["keys"][0]["revoked_at"] = exported.size - 1

    code, report = offline_env.verify(exported.edited(revoke), exported.vkey)
    assert code == 1 and report["first"]["kind"] == "revoked-key"
    # a second, trusted key that also signed keeps the checkpoint valid (a rotation)
    successor, successor_vkey = new_signer()

    def countersign(d: dict[str, Any]) -> None:
        revoke(d)
        d["checkpoints"] = [sign(Checkpoint(ORIGIN, exported.size, exported.root, datetime.now(UTC)),
                                 exported.signer, successor)]
        d["keys"].append({"vkey": successor_vkey, "valid_from": exported.size, "revoked_at": None})

    code, report = offline_env.verify(exported.edited(countersign), exported.vkey, successor_vkey)
    assert code == 0, report
    assert report["checkpoints"][0]["signed_by"] == [f"{successor.name}+{successor.key_id:08x}"]


def test_a_ledger_damaged_in_the_database_is_exported_as_it_is(exported: Exported,
                                                               offline_env: OfflineEnv) -> None:
    t = Tamperer(exported.url)
    t.delete_event(9)  # the link stays
    t.insert_event(exported.size + 5, uuid.uuid4().hex if exported.db.backend == "sqlite"
                   else str(uuid.uuid4()), 1, "domain.consortium:Consortium.LeadUnitSelected", b"{}")
    path = exported.tmp / "damaged.json"
    assert export.export_bundle(exported.db, path, origin=ORIGIN, checkpoints=[exported.note],
                                keys=[{"vkey": exported.vkey}]) == exported.size + 1
    records = {r["position"]: r for r in json.loads(path.read_text(encoding="utf-8"))["records"]}
    assert records[9]["state"] is None and records[9]["hash"] is not None
    assert records[exported.size + 5]["hash"] is None and records[exported.size + 5]["state"] == "e30="
    code, report = offline_env.verify(path, exported.vkey)
    assert code == 1
    assert [(p["position"], p["kind"]) for p in report["problems"]] == [
        (9, "missing"), (exported.size + 5, "inserted")]
    # the single-record proof of the deleted record: its hash is in the signed tree, its bytes are gone
    proof = export.record_proof_bundle(exported.db, 9, checkpoint_note=exported.note,
                                       keys=[{"vkey": exported.vkey}])
    assert proof["record"]["state"] is None and proof["record"]["hash"] == records[9]["hash"]
    (exported.tmp / "proof-9.json").write_text(json.dumps(proof), encoding="utf-8")
    code, report = offline_env.verify(exported.tmp / "proof-9.json", exported.vkey)
    assert code == 1 and [(p["position"], p["kind"]) for p in report["problems"]] == [(9, "missing")]


# --------------------------------------------------------------------------------------------
# Unusable input: exit 2
# --------------------------------------------------------------------------------------------


def test_records_after_the_last_checkpoint_are_named(exported: Exported,
                                                    offline_env: OfflineEnv) -> None:
    """A checkpoint of an earlier size: the verifier says which records only the chain vouches for."""
    older = exported.size - 3
    _, root = tree.tree_head(exported.db, older)
    note = exported.checkpoint(root, older)
    path = exported.edited(lambda d: d.__setitem__("checkpoints", [note]), "older.json")
    code, report = offline_env.verify(path, exported.vkey)
    assert code == 0 and report["ok"], report
    assert report["covered_leaves"] == older
    first = exported.data["records"][older]["position"]
    head = exported.data["records"][-1]["position"]
    [said] = [n for n in report["notes"] if "come after" in n]
    assert said.startswith(f"3 record(s) (positions {first}–{head}) come after the checkpoint of "
                           f"size {older}")
    # the whole tree signed: no such note
    code, report = offline_env.verify(exported.path, exported.vkey)
    assert report["covered_leaves"] == exported.size
    assert not [n for n in report["notes"] if "come after" in n]


def test_unusable_input_exits_2(exported: Exported, offline_env: OfflineEnv) -> None:
    tmp = exported.tmp
    (tmp / "not-json.json").write_text("{records: []", encoding="utf-8")
    (tmp / "array.json").write_text("[]", encoding="utf-8")
    raw = exported.path.read_text(encoding="utf-8")
    (tmp / "duplicate-key.json").write_text(raw.replace('"origin": ', '"origin": "x", "origin": ', 1),
                                            encoding="utf-8")

    def bad_state(d: dict[str, Any]) -> None:
        d["records"][3]["state"] = "not base64!"

    def other_format(d: dict[str, Any]) -> None:
        d["format"] = "jiangsu-consortia-evidence/v0"

    def short_hash(d: dict[str, Any]) -> None:
        d["records"][3]["hash"] = "abcd"

    cases: list[tuple[Path, tuple[str, ...], str]] = [
        (tmp / "absent.json", (), "cannot read"),
        (tmp / "not-json.json", (), "is not JSON"),
        (tmp / "array.json", (), "a bundle is a JSON object"),
        (tmp / "duplicate-key.json", (), "appears twice"),
        (exported.edited(bad_state, "bad-state.json"), (), "records[3].state"),
        (exported.edited(other_format, "other-format.json"), (), "unknown bundle format"),
        (exported.edited(short_hash, "short-hash.json"), (), "records[3].hash"),
        (exported.path, ("not-a-vkey",), "--key"),
    ]
    for path, keys, message in cases:
        args: list[str | Path] = [path]
        for key in keys:
            args += ["--key", key]
        done = offline_env.run(*args)
        assert done.returncode == 2, (path, done.stdout, done.stderr)
        assert message in done.stderr, (message, done.stderr)


# --------------------------------------------------------------------------------------------
# Single-record proof bundles
# --------------------------------------------------------------------------------------------


def test_a_record_proof_bundle_verifies_offline_and_fails_when_tampered(
        exported: Exported, offline_env: OfflineEnv) -> None:
    tmp = exported.tmp
    # The checkpoint is older than the ledger: the proof is in the tree of the checkpoint's size.
    reg = open_registry(exported.url, clock=lambda: TODAY)
    reg.select_lead(name="证据测试联合体", city="nanjing", lead=unit(), qualification=lead_qualification(),
                    fields=["quantum"], actor=NANJING, effective_date=date(2024, 1, 1))
    reg.close()
    assert tree.integrate(exported.db) == exported.size + 1

    def write(bundle: dict[str, Any], name: str) -> Path:
        path = tmp / name
        path.write_text(json.dumps(bundle, ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    for position in (1, exported.size // 2, exported.size):
        bundle = export.record_proof_bundle(exported.db, position, checkpoint_note=exported.note,
                                            keys=[{"vkey": exported.vkey}])
        assert bundle["format"] == "jiangsu-consortia-record-proof/v1"
        assert bundle["tree_size"] == exported.size and bundle["leaf_index"] == position - 1
        assert bundle["record"] == exported.data["records"][position - 1]
        code, report = offline_env.verify(write(bundle, f"proof-{position}.json"), exported.vkey)
        assert code == 0, report
        assert report["leaf_index"] == position - 1 and report["checkpoints"][0]["ok"]
    text = offline_env.run(tmp / "proof-1.json", "--key", exported.vkey)
    assert text.returncode == 0 and "proof holds" in text.stdout, text.stdout
    assert offline_env.verify(tmp / "proof-1.json", module=True)[0] == 0

    position = exported.size // 2
    base = export.record_proof_bundle(exported.db, position, checkpoint_note=exported.note,
                                      keys=[{"vkey": exported.vkey}])
    other_signer, _ = new_signer()

    def tampered(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        bundle = json.loads(json.dumps(base))
        change(bundle)
        return bundle

    def edit_state(b: dict[str, Any]) -> None:
        _set_state(b["record"], _state(b["record"]) + b" ")

    def edit_proof(b: dict[str, Any]) -> None:
        b["inclusion_proof"][1] = hashlib.sha256(b"sibling").hexdigest()

    def edit_leaf(b: dict[str, Any]) -> None:
        b["leaf_index"] += 1

    def edit_prev(b: dict[str, Any]) -> None:
        b["record"]["previous_hash"] = hashlib.sha256(b"prev").hexdigest()

    def unknown_signer(b: dict[str, Any]) -> None:
        b["checkpoint"] = exported.checkpoint(signer=other_signer)

    def edit_root(b: dict[str, Any]) -> None:
        b["checkpoint"] = _with_root(b["checkpoint"], hashlib.sha256(b"root").digest())

    cases: list[tuple[Callable[[dict[str, Any]], object], str, int | None]] = [
        (edit_state, "modified", position),
        (edit_prev, "modified", position),
        (edit_proof, "not-included", position),
        (edit_leaf, "not-included", position),
        (unknown_signer, "unknown-key", None),
        (edit_root, "bad-signature", None),
    ]
    for change, kind, at in cases:
        path = write(tampered(change), f"proof-{change.__name__}.json")
        code, report = offline_env.verify(path, exported.vkey)
        assert code == 1, (change.__name__, report)
        assert (report["first"]["kind"], report["first"]["position"]) == (kind, at), (
            change.__name__, report["problems"])
    text = offline_env.run(tmp / "proof-edit_state.json", "--key", exported.vkey)
    assert text.returncode == 1 and f"PROOF FAILS at position {position}: modified" in text.stdout


# --------------------------------------------------------------------------------------------
# Two implementations, one format
# --------------------------------------------------------------------------------------------


def test_the_documented_test_vector() -> None:
    h = offline.record_hash(1, "12345678-1234-5678-1234-567812345678", 1,
                            "domain.consortium:Consortium.LeadUnitSelected", b"{}", bytes(32))
    assert h.hex() == "2ce06dc998da6e1cb8fb672a9a576f70bfdf8b4c66d45d20d91391da73d36b28"


def test_offline_hashes_roots_and_proofs_equal_the_registry_s(exported: Exported) -> None:
    db = exported.db
    leaves = offline.CompactRange()
    assert leaves.root() == tree.tree_head(db, 0)[1] == merkle.EMPTY_ROOT
    count = 0
    for row in ledger.rows(db):
        rec, link = row.record, row.link
        assert rec is not None and link is not None
        ours = offline.record_hash(row.position, str(rec.originator_id), rec.originator_version,
                                   rec.topic, rec.state, link.previous_hash)
        canonical = offline.record_hash(row.position, canonical_id(rec.originator_id),
                                        rec.originator_version, rec.topic, rec.state,
                                        link.previous_hash)
        assert ours == canonical == rec.hash_after(link.previous_hash) == link.hash
        leaves.append(offline.leaf_hash(link.hash))
        count += 1
        assert leaves.root() == tree.tree_head(db, count)[1], count
    assert count == exported.size
    for position in range(1, exported.size + 1):
        for size in {position, exported.size, (position + exported.size) // 2}:
            p = tree.inclusion_proof(db, position, size)
            assert offline.root_from_inclusion_proof(p.leaf_index, size, p.leaf_hash,
                                                     p.proof) == tree.tree_head(db, size)[1]


def test_offline_checkpoint_notes_and_keys_agree_with_the_registry_s(exported: Exported) -> None:
    assert offline.parse_vkey(exported.vkey) == parse_vkey(exported.vkey)
    text, cp, sigs = offline.parse_note(exported.note)
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, exported.size, exported.root)
    key = offline.Key(*offline.parse_vkey(exported.vkey))
    assert offline.check_signatures(text, cp, sigs, {(key.name, key.key_id): key}, True) == (
        [key.label], None)
    for broken in (exported.note.replace("time ", "time  "), exported.note.replace("\u2014", "-"),
                   exported.note + "trailing", exported.note.replace(f"\n{exported.size}\n", "\n01\n")):
        with pytest.raises(ValueError):
            offline.parse_note(broken)
        with pytest.raises(ValueError):
            parse_checkpoint(broken)


# --------------------------------------------------------------------------------------------
# The exporter
# --------------------------------------------------------------------------------------------


def test_export_refuses_an_existing_file_a_directory_and_bad_input(exported: Exported) -> None:
    db, tmp = exported.db, exported.tmp
    before = exported.path.read_bytes()
    good: dict[str, Any] = {"origin": ORIGIN, "checkpoints": [exported.note],
                            "keys": [{"vkey": exported.vkey}]}
    with pytest.raises(FileExistsError):
        export.export_bundle(db, exported.path, **good)
    assert exported.path.read_bytes() == before
    with pytest.raises(IsADirectoryError):
        export.export_bundle(db, tmp, **good)
    out = tmp / "new.json"
    _, other_vkey = new_signer("another.test/ledger")
    bad_inputs: list[dict[str, Any]] = [
        dict(good, origin="has space"),
        dict(good, checkpoints=["not a note\n"]),
        dict(good, checkpoints=[exported.checkpoint(origin="another.test/ledger")]),
        dict(good, keys=[{"vkey": "nope"}]),
        dict(good, keys=[{"vkey": exported.vkey}, {"vkey": exported.vkey, "valid_from": 3}]),
        dict(good, keys=[{"vkey": exported.vkey, "valid_from": 5, "revoked_at": 4}]),
        dict(good, keys=[{"vkey": other_vkey, "colour": "red"}]),
    ]
    for bad in bad_inputs:
        with pytest.raises(export.ExportError):
            export.export_bundle(db, out, **bad)
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith((".new", "new"))) == []
    assert export.export_bundle(db, out, **good) == exported.size
    assert not [p for p in tmp.iterdir() if p.name.endswith(".tmp")]


def test_export_streams_records_without_holding_the_ledger(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight thousand 4 KiB records (~45 MB of bundle) written with a flat memory peak."""
    n, state = 8_000, b"x" * 4096

    def many_rows(db: Database, batch: int = ledger.BATCH) -> Iterator[ledger.Row]:
        prev = bytes(32)
        for position in range(1, n + 1):
            rec = Record(position, "12345678-1234-5678-1234-567812345678", position, "t", state)
            h = rec.hash_after(prev)
            yield ledger.Row(position, rec, Link(position, prev, h))
            prev = h

    monkeypatch.setattr(ledger, "rows", many_rows)
    db = parse_database_url(f"sqlite:///{tmp_path / 'unused.db'}")
    out = tmp_path / "big.json"
    tracemalloc.start()
    try:
        assert export.export_bundle(db, out, origin=ORIGIN, checkpoints=[], keys=[]) == n
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.stat().st_size > n * len(state)
    assert peak < 2 * 1024 * 1024, peak
    report = offline.verify_bundle(str(out))
    assert report.ok and report.records == n
    assert report.notes  # no checkpoint: the report says what the chain alone cannot show
