"""Signed checkpoints of the ledger: keys registered in the ledger's keyring, checkpoints signed
over the integrated Merkle tree, stored append-only and published.

Settings: ``CONSORTIA_SIGNING_KEY`` — the PEM file of the private key (outside the database;
refused unless only its owner can read it); ``CONSORTIA_LOG_ORIGIN`` — the checkpoint origin line
(default ``consortia.jiangsu.example/ledger``), also the key name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from audit import checkpoints as cp
from audit import tree
from audit.keyring import KEYRING_ID, SigningKeyring
from audit.ledger import consortium_history
from audit.recorders import APPEND_ONLY_MESSAGE
from audit.store import Database
from domain.registry import Registry

DEFAULT_ORIGIN = "consortia.jiangsu.example/ledger"


def origin() -> str:
    return os.environ.get("CONSORTIA_LOG_ORIGIN") or DEFAULT_ORIGIN


def key_path(path: str | None = None) -> Path:
    value = path or os.environ.get("CONSORTIA_SIGNING_KEY")
    if not value:
        raise cp.KeyFileError("no signing key: give --key PATH or set CONSORTIA_SIGNING_KEY")
    return Path(value)


# ------------------------------------------------------------------------------------ keyring
def keyring(registry: Registry) -> SigningKeyring:
    try:
        ring: SigningKeyring = registry.repository.get(KEYRING_ID)
        return ring
    except AggregateNotFoundError:
        return SigningKeyring()


def create_signing_key(registry: Registry, path: Path, *, name: str | None = None,
                       recorded_by: str = "cli") -> tuple[str, str]:
    """A new key: private PEM written to ``path`` (0600, never overwritten), its vkey recorded
    in the ledger's keyring. Returns (key id hex, vkey)."""
    name = name or origin()
    pem, vkey = cp.generate_key(name)
    cp.write_private_key(path, pem)
    signer = cp.load_signer(path, name)
    key_id = f"{signer.key_id:08x}"
    ring = keyring(registry)
    ring.add_key(key_id=key_id, name=name, vkey=vkey, recorded_by=recorded_by)
    registry.save(ring)
    return key_id, vkey


def revoke_signing_key(registry: Registry, key_id: str, *, reason: str,
                       recorded_by: str = "cli") -> None:
    ring = keyring(registry)
    ring.revoke_key(key_id=key_id, reason=reason, recorded_by=recorded_by)
    registry.save(ring)


def key_validities(db: Database) -> list[cp.KeyValidity]:
    """Every key of the keyring with its validity in tree sizes: from the size that includes its
    KeyAdded record, up to the size that includes its KeyRevoked record."""
    added: dict[str, tuple[str, int]] = {}
    revoked: dict[str, int] = {}
    for record in consortium_history(db, KEYRING_ID):
        data = record["data"]
        if record["event"] == "KeyAdded":
            added[data["key_id"]] = (data["vkey"], tree.leaf_count_at(db, record["position"]))
        elif record["event"] == "KeyRevoked":
            revoked[data["key_id"]] = tree.leaf_count_at(db, record["position"])
    out = []
    for key_id, (vkey, since) in added.items():
        known = cp.KeyValidity.from_vkey(vkey, valid_from_position=since,
                                         revoked_at_position=revoked.get(key_id))
        out.append(known)
    return out


# -------------------------------------------------------------------------------- checkpoints
def _table(db: Database) -> str:
    return f"{db.events_table}_checkpoints"


_created: set[str] = set()


def _create_table(db: Database) -> None:
    """Create the checkpoints table once per process and database."""
    key = db.identity
    if key in _created:
        return
    t = _table(db)
    statements = [f"CREATE TABLE IF NOT EXISTS {t} (note_sha256 TEXT PRIMARY KEY, size BIGINT NOT "
                  f"NULL, signed_at TEXT NOT NULL, note TEXT NOT NULL)"]
    if db.backend == "sqlite":
        statements += [f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} BEGIN "
                       f"SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: {op} on {t} refused'); END"
                       for op in ("UPDATE", "DELETE")]
    else:
        fn = f"{db.events_table}_tree_append_only"  # created with the tree's tables
        statements += [f"CREATE OR REPLACE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                       f"FOR EACH ROW EXECUTE FUNCTION {fn}()"]
    tree.ensure_tables(db)
    with tree.connect(db, write=False, atomic=True) as c:
        for s in statements:
            c.all(s)
    _created.add(key)


@dataclass(frozen=True)
class Stored:
    size: int
    signed_at: str
    note: str


def store_checkpoint(db: Database, note: str) -> Stored:
    _create_table(db)
    checkpoint, _ = cp.parse(note)
    digest = hashlib.sha256(note.encode()).hexdigest()
    signed_at = checkpoint.time.isoformat()
    # A writing transaction from the start: on SQLite a read that turns into a write fails at
    # once (no waiting) when another connection wrote in between.
    with tree.connect(db, write=True) as c:
        if not c.all(f"SELECT 1 FROM {_table(db)} WHERE note_sha256 = ?", (digest,)):
            c.all(f"INSERT INTO {_table(db)} (note_sha256, size, signed_at, note) "
                  "VALUES (?, ?, ?, ?)", (digest, checkpoint.size, signed_at, note))
    return Stored(checkpoint.size, signed_at, note)


def stored_checkpoints(db: Database) -> list[Stored]:
    """Every checkpoint ever signed, oldest first."""
    _create_table(db)
    with tree.connect(db, write=False) as c:
        rows = c.all(f"SELECT size, signed_at, note FROM {_table(db)} ORDER BY size, signed_at")
    return [Stored(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def trusted_keys(db: Database, vkeys: Sequence[str] = ()) -> list[cp.KeyValidity]:
    """The keys a checkpoint of this ledger is held to.

    Without ``vkeys``: the ledger's own keyring (which shows the ledger is consistent with itself,
    not who wrote it). With ``vkeys`` (the keys an auditor holds): only those; a key the keyring
    also records keeps the keyring's validity window (its revocation is part of the evidence), a
    key it does not record is valid for every size. ``MalformedKey`` for a vkey out of format."""
    ring = key_validities(db)
    if not vkeys:
        return ring
    recorded = {(k.name, k.key_id): k for k in ring}
    trusted: dict[tuple[str, int], cp.KeyValidity] = {}
    for vkey in vkeys:
        given = cp.KeyValidity.from_vkey(vkey)
        same = recorded.get((given.name, given.key_id))
        keep = same if same is not None and same.public_key == given.public_key else given
        trusted.setdefault((given.name, given.key_id), keep)
    return list(trusted.values())


def verified_checkpoints(db: Database, *, notes: Sequence[tuple[str, str]] = (),
                         trusted_vkeys: Sequence[str] = ()) -> tuple[list[cp.Checkpoint], list[str]]:
    """The checkpoints to hold the ledger to: those the registry stored and the given ``notes``
    (label, text) — each a checkpoint of this log (``origin()``) signed by a key of
    ``trusted_keys(db, trusted_vkeys)`` valid for its size. Returns the verified checkpoints (the
    given notes last) and the problems found with the others."""
    known = trusted_keys(db, trusted_vkeys)
    candidates = [(f"stored checkpoint of size {s.size}", s.note) for s in stored_checkpoints(db)]
    verified, problems = [], []
    for label, note in [*candidates, *notes]:
        try:
            verified.append(cp.verify(note, known, origin=origin()))
        except cp.CheckpointError as e:
            problems.append(f"{label}: {type(e).__name__}: {e}")
    return verified, problems


def sign_checkpoint(db: Database, path: Path, *, name: str | None = None,
                    now: datetime | None = None) -> Stored:
    """Integrate the tree, sign its head with the key at ``path`` and store the note. The key
    must be in the ledger's keyring and valid for this size."""
    name = name or origin()
    signer = cp.load_signer(path, name)
    size, root = tree.tree_head(db, tree.integrate(db))
    checkpoint = cp.Checkpoint(origin(), size, root, (now or datetime.now(UTC)).replace(
        microsecond=0))
    note = cp.sign(checkpoint, signer)
    # refuse a key the ledger does not know or has revoked
    cp.verify(note, key_validities(db), origin=origin())
    return store_checkpoint(db, note)


def countersign(db: Database, note: str, path: Path, *, name: str | None = None) -> Stored:
    """Add a signature (a rotation's new key) to a checkpoint already signed."""
    signer = cp.load_signer(path, name or origin())
    both = cp.add_signature(note, signer)
    cp.verify(both, key_validities(db), origin=origin())
    return store_checkpoint(db, both)


def as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
