"""Offline verifier of evidence bundles — a second, independent implementation of docs/ledger.md.

It imports the standard library and ``cryptography`` only: no eventsourcing, no database driver and
no other module of this project (not even ``audit.chain``, ``audit.merkle`` or
``audit.checkpoints``), so that this one file can be copied to another machine and run there::

    python -m audit.offline BUNDLE [--key VKEY ...] [--json]
    python offline.py BUNDLE [--key VKEY ...] [--json]

Exit status: 0 everything holds, 1 a problem (the first one is named), 2 unusable input.

Everything below is written from the documents, not from the registry's code: the record framing
and hash (docs/ledger.md, "The hash of one record"), the RFC 9162 §2.1 Merkle tree (tree heads
from a running compact range; inclusion proofs checked by the "inner/border" decomposition), and
C2SP signed-note / tlog-checkpoint notes with Ed25519 (docs/ledger.md, "Signed checkpoints", and
c2sp.org). The two bundle formats, and the exact note rules applied, are in docs/ledger.md,
"Evidence bundles".

What is checked in an evidence bundle (``jiangsu-consortia-evidence/v1``):

* the records are in position order (else ``reordered``, naming the first misplaced position);
* every record hashes to its ``hash`` from its ``previous_hash``, and every ``previous_hash`` is
  the hash of the record before it (genesis: 32 zero bytes) — damage is named by position and
  kind as by ``consortia verify``: ``modified``, ``broken-link``, ``reordered``, ``missing``,
  ``inserted``;
* every checkpoint note is well formed, of the bundle's origin, and signed by a key valid for its
  size (else ``malformed-checkpoint``, ``wrong-origin``, ``bad-signature``, ``unknown-key``,
  ``revoked-key``, ``key-not-yet-valid``); the keys are the bundle's own unless ``--key`` names
  trusted ones (then only those count, with the validity windows the bundle lists for them);
* each authentic checkpoint holds the records to its signed head: the bundle has at least
  ``size`` records (else ``truncated``) and the RFC 9162 root of the first ``size`` record hashes
  is the signed root (else ``rewritten``).

A single-record proof bundle (``jiangsu-consortia-record-proof/v1``) is checked the same way for
its one record (hash), its checkpoint (form, origin, signature) and the inclusion proof of the
record's hash at its leaf index in the tree of the checkpoint's size (``not-included``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import re
import struct
import sys
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "EVIDENCE_FORMAT",
    "RECORD_PROOF_FORMAT",
    "CompactRange",
    "Problem",
    "Report",
    "Unusable",
    "leaf_hash",
    "load_bundle",
    "main",
    "node_hash",
    "record_hash",
    "root_from_inclusion_proof",
    "verify_bundle",
    "verify_evidence",
    "verify_record_proof",
]

EVIDENCE_FORMAT = "jiangsu-consortia-evidence/v1"
RECORD_PROOF_FORMAT = "jiangsu-consortia-record-proof/v1"

EXIT_OK, EXIT_PROBLEM, EXIT_UNUSABLE = 0, 1, 2

LEDGER_TAG = b"jiangsu-consortia-ledger/v1\x00"
GENESIS = b"\x00" * 32
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
ED25519 = 0x01
MAX_NOTE_BYTES = 65536
MAX_SIGNATURES = 100
MAX_TREE_SIZE = 2**63 - 1
REORDER_WINDOW = 64  # how far around a mismatching record to look for the link it belongs to
MAX_PROBLEMS = 100

_U64_MAX = 2**64 - 1
_U32_MAX = 2**32 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_HEX8 = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_EM_DASH = "\u2014 "

_RECORD_FIELDS = ("position", "originator_id", "originator_version", "topic", "state",
                  "previous_hash", "hash")
_KEY_FIELDS = ("vkey", "valid_from", "revoked_at")
_EVIDENCE_FIELDS = ("format", "origin", "exported_at", "records", "checkpoints", "keys")
_PROOF_FIELDS = ("format", "origin", "exported_at", "record", "leaf_index", "tree_size",
                 "inclusion_proof", "checkpoint", "keys")


class Unusable(Exception):
    """The input cannot be verified at all (exit status 2): not a bundle, or not well typed."""


# --------------------------------------------------------------------------------------------
# The record hash (docs/ledger.md, "The hash of one record")
# --------------------------------------------------------------------------------------------


def _canonical_id(originator_id: str) -> str:
    """The hyphenated form of SQLite's 32 lowercase hex digits; any other text as given (another
    spelling of a UUID is not the text that was hashed)."""
    if len(originator_id) == 32 and all(ch in "0123456789abcdef" for ch in originator_id):
        return str(uuid.UUID(hex=originator_id))
    return originator_id


def record_hash(position: int, originator_id: str, originator_version: int, topic: str,
                state: bytes, previous_hash: bytes) -> bytes:
    """SHA-256(TAG ‖ u64 position ‖ u32 len ‖ id ‖ u64 version ‖ u32 len ‖ topic ‖ u32 len ‖
    state ‖ previous hash), fed to the hash piece by piece (nothing is concatenated)."""
    oid = _canonical_id(originator_id).encode("utf-8")
    top = topic.encode("utf-8")
    h = hashlib.sha256(LEDGER_TAG)
    h.update(struct.pack(">Q", position))
    h.update(struct.pack(">I", len(oid)))
    h.update(oid)
    h.update(struct.pack(">Q", originator_version))
    h.update(struct.pack(">I", len(top)))
    h.update(top)
    h.update(struct.pack(">I", len(state)))
    h.update(state)
    h.update(previous_hash)
    return h.digest()


# --------------------------------------------------------------------------------------------
# RFC 9162 §2.1 Merkle tree
# --------------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data); here data is a record's 32-byte chain hash."""
    h = hashlib.sha256(b"\x00")
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    h = hashlib.sha256(b"\x01")
    h.update(left)
    h.update(right)
    return h.digest()


class CompactRange:
    """The running head of an append-only RFC 9162 tree in O(log n) memory.

    ``peaks`` holds the hashes of the perfect subtrees that the binary digits of ``size`` cut the
    leaves into, largest (leftmost) first. Appending a leaf merges it with one peak per trailing
    1-bit of the old size; the tree head folds the peaks from the right, which is MTH(D[size])
    because RFC 9162 always splits at the largest power of two below the size.
    """

    def __init__(self) -> None:
        self.size = 0
        self.peaks: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        h, n = leaf, self.size
        while n & 1:
            h = node_hash(self.peaks.pop(), h)
            n >>= 1
        self.peaks.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        h = self.peaks[-1]
        for left in reversed(self.peaks[:-1]):
            h = node_hash(left, h)
        return h


def root_from_inclusion_proof(index: int, size: int, leaf: bytes,
                              proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` (RFC 9162 §2.1.3 audit path) leads to from ``leaf`` at ``index``
    in a tree of ``size`` leaves, or None when the proof cannot be one (wrong length or index).

    The path has an "inner" part (the subtrees where the paths to ``index`` and to the last leaf
    ``size - 1`` have not yet merged: one sibling per bit of ``index ^ (size - 1)``, on the side
    given by that bit of ``index``) and a "border" part (one left sibling per 1-bit of ``index``
    above the inner part, where the right edge of the tree has no right sibling)."""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return None
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        return None
    h = leaf
    for level in range(inner):
        h = node_hash(proof[level], h) if (index >> level) & 1 else node_hash(h, proof[level])
    for sibling in proof[inner:]:
        h = node_hash(sibling, h)
    return h


# --------------------------------------------------------------------------------------------
# Encodings, keys and signed-note checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint)
# --------------------------------------------------------------------------------------------


def _b64(text: str) -> bytes | None:
    """Strict standard base64 (RFC 4648 §4): padded and canonical, else None."""
    if not isinstance(text, str) or not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _valid_name(name: str) -> bool:
    """A key name or origin: non-empty, valid UTF-8, no '+', no Unicode space, no control char."""
    if not name or "+" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ch < " " or ch.isspace() or unicodedata.category(ch) in ("Zs", "Zl", "Zp")
                   for ch in name)


def _key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode("utf-8") + b"\x0a" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Key:
    """A public Ed25519 key under a name, and the tree sizes for which it may sign."""

    name: str
    key_id: int
    public_key: bytes
    valid_from: int = 0
    revoked_at: int | None = None

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id:08x}"

    def valid_for(self, size: int) -> bool:
        return self.valid_from <= size and (self.revoked_at is None or size <= self.revoked_at)

    def verifies(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def parse_vkey(vkey: object) -> tuple[str, int, bytes]:
    """``<name>+<8 hex digits key id>+<base64(0x01 ‖ 32-byte key)>`` → (name, id, key);
    ``ValueError`` unless well formed and the id matches the name and key."""
    if not isinstance(vkey, str) or vkey.count("+") < 2:
        raise ValueError(f"not a verifier key <name>+<key id>+<base64 key>: {vkey!r}")
    name, hex_id, b64 = vkey.split("+", 2)
    raw = _b64(b64)
    if not _valid_name(name) or not _HEX8.fullmatch(hex_id) or raw is None:
        raise ValueError(f"malformed verifier key {vkey!r}")
    if len(raw) != 33 or raw[0] != ED25519:
        raise ValueError(f"not an Ed25519 verifier key (type 0x01 and 32 bytes): {vkey!r}")
    if int(hex_id, 16) != _key_id(name, raw[1:]):
        raise ValueError(f"the key id of {vkey!r} does not match its name and key")
    return name, int(hex_id, 16), raw[1:]


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: str


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id:08x}"


class MalformedNote(ValueError):
    """A checkpoint note that is not in the documented form."""


def parse_note(note: object) -> tuple[str, Checkpoint, list[NoteSignature]]:
    """(signed text, checkpoint, signatures) of a signed checkpoint note; ``MalformedNote`` unless
    the note has exactly the documented form. No signature is verified here."""
    if not isinstance(note, str):
        raise MalformedNote("a checkpoint note is text")
    try:
        size_in_bytes = len(note.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise MalformedNote("a note must be valid UTF-8") from exc
    if size_in_bytes > MAX_NOTE_BYTES:
        raise MalformedNote(f"a note is at most {MAX_NOTE_BYTES} bytes")
    if _CONTROL.search(note):
        raise MalformedNote("a note has no control characters but newlines")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise MalformedNote("no blank line between the checkpoint and its signatures")
    text, block = note[:cut + 1], note[cut + 2:]
    if not block.endswith("\n"):
        raise MalformedNote("the note must end with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        parts = line[len(_EM_DASH):].split(" ") if line.startswith(_EM_DASH) else []
        raw = _b64(parts[1]) if len(parts) == 2 else None
        if raw is None or len(raw) < 5 or not _valid_name(parts[0]):
            raise MalformedNote(f"not a signature line '— <key name> <base64>': {line!r}")
        signatures.append(NoteSignature(parts[0], int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, _parse_body(text), signatures


def _parse_body(text: str) -> Checkpoint:
    body = text[:-1].split("\n")
    if len(body) != 4:
        raise MalformedNote(f"the checkpoint has {len(body)} lines, not 4 (origin, size, root, time)")
    origin, size_text, root_text, time_line = body
    if not _valid_name(origin):
        raise MalformedNote(f"invalid origin {origin!r}")
    if not _DECIMAL.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise MalformedNote(f"the tree size is not a decimal number below 2**63: {size_text!r}")
    root = _b64(root_text)
    if root is None or len(root) != HASH_SIZE:
        raise MalformedNote(f"the root is not the base64 of 32 bytes: {root_text!r}")
    match = _TIME.fullmatch(time_line[5:]) if time_line.startswith("time ") else None
    if match is None:
        raise MalformedNote(f"the fourth line is not 'time YYYY-MM-DDTHH:MM:SSZ': {time_line!r}")
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise MalformedNote(f"not a valid time: {time_line!r}") from exc
    size = int(size_text)
    if size == 0 and root != EMPTY_ROOT:
        raise MalformedNote("the root of the empty tree is SHA-256 of the empty string")
    return Checkpoint(origin, size, root, time_line[5:])


def check_signatures(text: str, checkpoint: Checkpoint, signatures: Sequence[NoteSignature],
                     known: dict[tuple[str, int], Key], from_cli: bool,
                     ) -> tuple[list[str], tuple[str, str] | None]:
    """Signed-note verification: (labels of valid signers, None) or ([], (kind, detail)).

    Signatures by unknown keys are ignored; a known key's signature that does not verify refuses
    the note; at least one known key that is valid for the checkpoint's size must have signed."""
    message = text.encode("utf-8")
    valid: list[Key] = []
    outside: list[Key] = []
    unknown: list[str] = []
    for s in signatures:
        key = known.get((s.name, s.key_id))
        if key is None:
            unknown.append(s.label)
        elif not key.verifies(message, s.signature):
            return [], ("bad-signature", f"the signature by {key.label} does not verify: the checkpoint "
                        "was altered after signing, or forged")
        elif key.valid_for(checkpoint.size):
            valid.append(key)
        else:
            outside.append(key)
    if valid:
        return list(dict.fromkeys(k.label for k in valid)), None
    for key in outside:
        if key.revoked_at is not None and checkpoint.size > key.revoked_at:
            return [], ("revoked-key", f"signed by {key.label}, a key revoked at tree size "
                        f"{key.revoked_at}, for a tree of size {checkpoint.size}")
    if outside:
        key = outside[0]
        return [], ("key-not-yet-valid", f"signed by {key.label}, a key valid only from tree size "
                    f"{key.valid_from}, for a tree of size {checkpoint.size}")
    signers = ", ".join(dict.fromkeys(unknown)) or "nobody"
    which = "a key given with --key" if from_cli else "a key listed in the bundle"
    return [], ("unknown-key", f"no signature by {which} (signed by {signers})")


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    position: int | None  # the ledger position, when the problem is one record's
    kind: str
    detail: str
    checkpoint: int | None = None  # 1-based index of the checkpoint in the bundle, when it is one's

    def describe(self) -> str:
        if self.checkpoint is None:
            where = f"position {self.position}"
        elif self.position is None:
            where = f"checkpoint {self.checkpoint}"
        else:
            where = f"position {self.position} (checkpoint {self.checkpoint})"
        return f"{where}: {self.kind} — {self.detail}"


@dataclass
class Report:
    bundle: str
    format: str
    origin: str = ""
    exported_at: str = ""
    keys_from: str = "bundle"  # "bundle" | "command line"
    records: int = 0
    leaves: int = 0
    first_position: int | None = None
    head_position: int | None = None
    head_hash: str | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    leaf_index: int | None = None  # record proofs: the record's leaf in the checkpoint's tree
    covered_leaves: int | None = None  # bundles: the largest size a verified checkpoint signs
    problems: list[Problem] = field(default_factory=list)
    more_problems: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more_problems = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["first"] = asdict(self.first) if self.first else None
        return d


# --------------------------------------------------------------------------------------------
# Reading a bundle (structure only; anything malformed here is unusable input, exit 2)
# --------------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise Unusable(f"the key {k!r} appears twice in one JSON object")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise Unusable(f"{name} is not JSON")


def load_bundle(path: str) -> dict[str, Any]:
    """The bundle's JSON object: UTF-8, no duplicate keys, no NaN/Infinity; ``Unusable`` otherwise."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise Unusable(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unusable(f"{path} is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    del raw  # one copy of the file in memory, not two
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise Unusable(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Unusable("a bundle is a JSON object")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _expect_fields(obj: object, fields: Sequence[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Unusable(f"{where} is not a JSON object")
    missing = [f for f in fields if f not in obj]
    extra = [f for f in obj if f not in fields]
    if missing or extra:
        raise Unusable(f"{where}: missing {missing or 'nothing'}, unexpected {extra or 'nothing'}")
    return obj


def _hash_field(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise Unusable(f"{where} is not 64 lowercase hex digits")
    return bytes.fromhex(value)


@dataclass(slots=True)
class Entry:
    """One position of the exported ledger: its record and/or its link."""

    index: int  # in the bundle's list
    position: int
    originator_id: str | None
    originator_version: int | None
    topic: str | None
    state: bytes | None
    previous_hash: bytes | None
    hash: bytes | None

    @property
    def has_record(self) -> bool:
        return self.originator_id is not None

    def hash_at(self, position: int, previous_hash: bytes) -> bytes:
        assert self.originator_id is not None and self.originator_version is not None
        assert self.topic is not None and self.state is not None
        return record_hash(position, self.originator_id, self.originator_version, self.topic,
                           self.state, previous_hash)


def _entry(index: int, obj: object, where: str) -> Entry:
    r = _expect_fields(obj, _RECORD_FIELDS, where)
    position = r["position"]
    if not _is_int(position) or not 0 <= position <= _U64_MAX:
        raise Unusable(f"{where}.position is not an integer in [0, 2**64)")
    record = [r[k] for k in ("originator_id", "originator_version", "topic", "state")]
    link = [r[k] for k in ("previous_hash", "hash")]
    if all(v is None for v in record) and all(v is None for v in link):
        raise Unusable(f"{where} has neither a record nor a link")
    if any(v is None for v in record) and not all(v is None for v in record):
        raise Unusable(f"{where}: the record fields are all present or all null")
    if any(v is None for v in link) and not all(v is None for v in link):
        raise Unusable(f"{where}: previous_hash and hash are both present or both null")
    oid, version, topic, state_b64 = record
    state = None
    if oid is not None:
        if not isinstance(oid, str) or not isinstance(topic, str):
            raise Unusable(f"{where}: originator_id and topic are strings")
        try:
            if max(len(oid.encode("utf-8")), len(topic.encode("utf-8"))) > _U32_MAX:
                raise Unusable(f"{where}: a field is longer than 2**32 - 1 bytes")
        except UnicodeEncodeError as exc:
            raise Unusable(f"{where}: originator_id and topic must be valid Unicode text") from exc
        if not _is_int(version) or not 0 <= version <= _U64_MAX:
            raise Unusable(f"{where}.originator_version is not an integer in [0, 2**64)")
        state = _b64(state_b64)
        if state is None:
            raise Unusable(f"{where}.state is not canonical padded base64")
        if len(state) > _U32_MAX:
            raise Unusable(f"{where}.state is longer than 2**32 - 1 bytes")
    prev = h = None
    if link[0] is not None:
        prev, h = _hash_field(link[0], f"{where}.previous_hash"), _hash_field(link[1], f"{where}.hash")
    return Entry(index, position, oid, version, topic, state, prev, h)


def _keys(value: object) -> list[Key]:
    if not isinstance(value, list):
        raise Unusable("keys is not a list")
    keys: dict[tuple[str, int], Key] = {}
    for i, obj in enumerate(value):
        where = f"keys[{i}]"
        k = _expect_fields(obj, _KEY_FIELDS, where)
        try:
            name, kid, public_key = parse_vkey(k["vkey"])
        except ValueError as exc:
            raise Unusable(f"{where}.vkey: {exc}") from exc
        valid_from, revoked_at = k["valid_from"], k["revoked_at"]
        if not _is_int(valid_from) or valid_from < 0:
            raise Unusable(f"{where}.valid_from is not a non-negative integer (a tree size)")
        if revoked_at is not None and (not _is_int(revoked_at) or revoked_at < valid_from):
            raise Unusable(f"{where}.revoked_at is neither null nor a tree size >= valid_from")
        if (name, kid) in keys:
            raise Unusable(f"{where}: the key {name}+{kid:08x} is listed twice")
        keys[(name, kid)] = Key(name, kid, public_key, valid_from, revoked_at)
    return list(keys.values())


def _trusted(bundle_keys: list[Key], cli_vkeys: Sequence[str]) -> tuple[dict[tuple[str, int], Key], bool]:
    """The keys that count, and where they come from.

    Without ``--key`` the bundle's own keys count (the bundle is then shown to be consistent, not
    to come from the registry). With ``--key`` only those keys count; a key the bundle also lists
    keeps the validity window listed there (a revocation is part of the evidence); a key it does
    not list is valid for every size."""
    listed = {(k.name, k.key_id): k for k in bundle_keys}
    if not cli_vkeys:
        return listed, False
    trusted: dict[tuple[str, int], Key] = {}
    for vkey in cli_vkeys:
        try:
            name, kid, public_key = parse_vkey(vkey)
        except ValueError as exc:
            raise Unusable(f"--key: {exc}") from exc
        same = listed.get((name, kid))
        if same is not None and same.public_key == public_key:
            trusted[(name, kid)] = same
        else:
            trusted[(name, kid)] = Key(name, kid, public_key)
    return trusted, True


# --------------------------------------------------------------------------------------------
# Evidence bundles
# --------------------------------------------------------------------------------------------


def _check_order(entries: list[Entry]) -> tuple[list[Entry], Problem | None]:
    """The entries in position order; a bundle out of order is reported once, as ``reordered`` at
    the first position that is not where it belongs."""
    if all(a.position <= b.position for a, b in itertools.pairwise(entries)):
        return entries, None
    ordered = sorted(entries, key=lambda e: e.position)  # stable: duplicates keep their order
    for k, (found, due) in enumerate(zip(entries, ordered, strict=True)):
        if found.position != due.position:
            return ordered, Problem(due.position, "reordered", f"the records are not in position "
                                    f"order: record #{k + 1} of the bundle is position "
                                    f"{found.position}, where position {due.position} belongs")
    raise AssertionError("unreachable: the entries were out of order")


def _moved_from(entries: list[Entry], i: int) -> int | None:
    """The position of a nearby link that the record at ``entries[i]`` hashes to exactly."""
    e = entries[i]
    for other in entries[max(0, i - REORDER_WINDOW):i + REORDER_WINDOW + 1]:
        if other is e or other.hash is None or other.previous_hash is None:
            continue
        if other.position == e.position:
            continue
        if e.hash_at(other.position, other.previous_hash) == other.hash:
            return other.position
    return None


def _check_chain(entries: list[Entry], report: Report, sizes: set[int],
                 damage: list[Problem]) -> dict[int, tuple[bytes, int | None]]:
    """Recompute every record's hash and every link, in position order, appending what is wrong
    to ``damage`` (kinds as in docs/ledger.md, "Verification"); returns the Merkle root at each of
    ``sizes`` the records reach, with the position of the last record it covers (leaves are the
    links' hashes, in position order)."""
    roots: dict[int, tuple[bytes, int | None]] = {0: (EMPTY_ROOT, None)} if 0 in sizes else {}
    tree = CompactRange()
    expected = GENESIS  # the hash of the last link
    last: Entry | None = None  # the last entry with a link
    before_last: Entry | None = None  # the one before it

    def damaged(position: int, kind: str, detail: str) -> None:
        damage.append(Problem(position, kind, detail))

    for i, e in enumerate(entries):
        if e.hash is None or e.previous_hash is None:
            damaged(e.position, "inserted", "a record with no link: it was not written by the registry")
            continue
        if not e.has_record:
            damaged(e.position, "missing", "the link remains but its record was deleted")
        elif e.hash_at(e.position, e.previous_hash) != e.hash:
            if e.hash_at(e.position, expected) == e.hash:
                damaged(e.position, "broken-link", "the record is intact but its link's previous hash "
                        "was changed")
            else:
                origin = _moved_from(entries, i)
                if origin is not None:
                    damaged(e.position, "reordered", f"this record was written at position {origin}")
                else:
                    damaged(e.position, "modified", "the record's bytes do not hash to the hash "
                            "written with it")
        elif e.previous_hash != expected:
            if last is not None and before_last is not None and e.previous_hash == before_last.hash:
                forged = last.position
                damage[:] = [d for d in damage if d.position != forged]
                damaged(forged, "inserted", "a record with a forged link that the next record does "
                        "not follow")
            elif last is not None and last.previous_hash == e.previous_hash:
                damaged(e.position, "inserted", "two links claim the same predecessor")
            else:
                before = f"the record at position {last.position}" if last else "genesis"
                damaged(e.position, "missing", f"records before this position were deleted: its "
                        f"link's predecessor is not {before}")
        before_last, last, expected = last, e, e.hash
        tree.append(leaf_hash(e.hash))
        if tree.size in sizes:
            roots[tree.size] = (tree.root(), e.position)
        report.records += 1
        report.head_position, report.head_hash = e.position, e.hash.hex()
        if report.first_position is None:
            report.first_position = e.position
    report.leaves = tree.size
    return roots


def _report(report: Report, problems: list[Problem]) -> Report:
    """Problems at a position first, in position order (as the chain is walked), then the others
    (checkpoints refused for their form, origin or signature) in bundle order."""
    for problem in sorted(problems, key=lambda p: (p.position is None, p.position or 0)):  # stable
        report.add(problem)
    return report


def verify_evidence(data: dict[str, Any], cli_keys: Sequence[str] = (), *, name: str = "") -> Report:
    """Verify a parsed evidence bundle; ``Unusable`` when it is not one."""
    _expect_fields(data, _EVIDENCE_FIELDS, "the bundle")
    origin, exported_at = data["origin"], data["exported_at"]
    if not isinstance(origin, str) or not _valid_name(origin):
        raise Unusable("origin is not a valid log name (non-empty, no space, no '+')")
    if not isinstance(exported_at, str):
        raise Unusable("exported_at is not a string")
    records, notes = data["records"], data["checkpoints"]
    if not isinstance(records, list):
        raise Unusable("records is not a list")
    if not isinstance(notes, list):
        raise Unusable("checkpoints is not a list")
    known, from_cli = _trusted(_keys(data["keys"]), cli_keys)
    report = Report(bundle=name, format=EVIDENCE_FORMAT, origin=origin, exported_at=exported_at,
                    keys_from="command line" if from_cli else "bundle")
    entries = []
    for i in range(len(records)):
        entries.append(_entry(i, records[i], f"records[{i}]"))
        records[i] = None  # keep one copy of each record in memory, not two
    parsed: list[tuple[str, Checkpoint, list[NoteSignature]] | MalformedNote] = []
    for i, note in enumerate(notes):
        if not isinstance(note, str):
            raise Unusable(f"checkpoints[{i}] is not a string")
        try:
            parsed.append(parse_note(note))
        except MalformedNote as exc:
            parsed.append(exc)
    entries, misplaced = _check_order(entries)
    problems = [misplaced] if misplaced else []
    roots = _check_chain(entries, report, {p[1].size for p in parsed if isinstance(p, tuple)},
                         problems)
    if not notes:
        if from_cli:
            problems.append(Problem(None, "no-checkpoint", "the bundle has no checkpoint for the "
                                    "trusted key to vouch for"))
        else:
            report.notes.append("the bundle has no checkpoint: the chain alone cannot show a cut-off "
                                "tail or a ledger rewritten with fresh links")
    for n, item in enumerate(parsed, start=1):
        if isinstance(item, MalformedNote):
            report.checkpoints.append({"index": n, "ok": False})
            problems.append(Problem(None, "malformed-checkpoint", str(item), n))
            continue
        text, cp, signatures = item
        # Only an authentic checkpoint of this log (a valid signature by a key valid for its
        # size) holds the records to anything: an unauthenticated root proves nothing.
        refused = _check_checkpoint(text, cp, signatures, known, from_cli, origin, n, report)
        if refused is None and cp.size > report.leaves:
            shown = f", up to position {report.head_position}" if report.leaves else ""
            refused = Problem(report.head_position, "truncated", f"checkpoint {n} signs a tree of "
                              f"{cp.size} records but the bundle holds only {report.leaves}{shown}", n)
        elif refused is None and roots[cp.size][0] != cp.root:
            at = roots[cp.size][1]
            refused = Problem(at, "rewritten", f"the first {cp.size} records do not hash to the root "
                              f"signed in checkpoint {n}: the ledger was rewritten at or before "
                              f"position {at}", n)
        report.checkpoints[-1]["ok"] = refused is None
        if refused is not None:
            problems.append(refused)
    _note_uncovered(report, entries)
    return _report(report, problems)


def _note_uncovered(report: Report, entries: list[Entry]) -> None:
    """Say which records no verified checkpoint covers: only the chain vouches for them, so a
    tail cut off after the last checkpoint, or rewritten with fresh links, would not show."""
    covered = max((c["size"] for c in report.checkpoints if c.get("ok")), default=0)
    report.covered_leaves = covered
    if not report.checkpoints or covered >= report.leaves or not entries:
        return
    leaves = (e for e in entries if e.hash is not None and e.previous_hash is not None)
    after_covered = next(itertools.islice(leaves, covered, None), None)
    first = after_covered.position if after_covered is not None else None
    span = (f"positions {first}–{report.head_position}" if first is not None
            else f"up to position {report.head_position}")
    after = f"the checkpoint of size {covered}" if covered else "no verified checkpoint"
    report.notes.append(f"{report.leaves - covered} record(s) ({span}) come after {after}: only "
                        "the chain vouches for them, so a cut-off tail or a rewrite with fresh "
                        "links there would not show")


def _check_checkpoint(text: str, cp: Checkpoint, signatures: list[NoteSignature],
                      known: dict[tuple[str, int], Key], from_cli: bool, origin: str, n: int,
                      report: Report) -> Problem | None:
    """Origin and signatures of one checkpoint; appends its summary to ``report.checkpoints``."""
    signed_by, refused = check_signatures(text, cp, signatures, known, from_cli)
    report.checkpoints.append({"index": n, "size": cp.size,
                               "root": base64.b64encode(cp.root).decode("ascii"),
                               "time": cp.time, "signed_by": signed_by})
    if cp.origin != origin:
        return Problem(None, "wrong-origin", f"a checkpoint of {cp.origin!r}, not of {origin!r}", n)
    if refused is not None:
        return Problem(None, refused[0], refused[1], n)
    return None


# --------------------------------------------------------------------------------------------
# Single-record proof bundles
# --------------------------------------------------------------------------------------------


def verify_record_proof(data: dict[str, Any], cli_keys: Sequence[str] = (), *, name: str = "") -> Report:
    """Verify a parsed single-record proof bundle; ``Unusable`` when it is not one."""
    _expect_fields(data, _PROOF_FIELDS, "the proof bundle")
    origin, exported_at = data["origin"], data["exported_at"]
    if not isinstance(origin, str) or not _valid_name(origin):
        raise Unusable("origin is not a valid log name (non-empty, no space, no '+')")
    if not isinstance(exported_at, str):
        raise Unusable("exported_at is not a string")
    e = _entry(0, data["record"], "record")
    if e.hash is None or e.previous_hash is None:
        raise Unusable("record: a proof needs the record's link (previous_hash and hash)")
    index, size, path = data["leaf_index"], data["tree_size"], data["inclusion_proof"]
    if not _is_int(index) or not _is_int(size) or not 0 <= index < size:
        raise Unusable("leaf_index and tree_size are integers with 0 <= leaf_index < tree_size")
    if not isinstance(path, list):
        raise Unusable("inclusion_proof is not a list")
    proof = [_hash_field(h, f"inclusion_proof[{i}]") for i, h in enumerate(path)]
    if not isinstance(data["checkpoint"], str):
        raise Unusable("checkpoint is not a string")
    known, from_cli = _trusted(_keys(data["keys"]), cli_keys)
    report = Report(bundle=name, format=RECORD_PROOF_FORMAT, origin=origin, exported_at=exported_at,
                    keys_from="command line" if from_cli else "bundle", records=1, leaves=1,
                    first_position=e.position, head_position=e.position, head_hash=e.hash.hex(),
                    leaf_index=index)
    p = e.position
    problems = []
    if not e.has_record:
        problems.append(Problem(p, "missing", "the record's bytes are absent: only its link was "
                                "exported"))
    elif e.hash_at(p, e.previous_hash) != e.hash:
        problems.append(Problem(p, "modified", "the record's bytes do not hash to the hash written "
                                "with it"))
    try:
        text, cp, signatures = parse_note(data["checkpoint"])
    except MalformedNote as exc:
        report.checkpoints.append({"index": 1, "ok": False})
        problems.append(Problem(None, "malformed-checkpoint", str(exc), 1))
        return _report(report, problems)
    refused = _check_checkpoint(text, cp, signatures, known, from_cli, origin, 1, report)
    if refused is None and cp.size != size:
        refused = Problem(None, "size-mismatch", f"the proof is for a tree of {size} records, the "
                          f"checkpoint signs {cp.size}", 1)
    elif refused is None and root_from_inclusion_proof(index, size, leaf_hash(e.hash), proof) != cp.root:
        refused = Problem(p, "not-included", f"the inclusion proof does not lead from the record's "
                          f"hash at leaf {index} to the root signed for the tree of {size} records", 1)
    report.checkpoints[-1]["ok"] = refused is None
    if refused is not None:
        problems.append(refused)
    return _report(report, problems)


def verify_bundle(path: str, cli_keys: Sequence[str] = ()) -> Report:
    """Load and verify the bundle at ``path`` (either format); ``Unusable`` for unusable input."""
    data = load_bundle(path)
    fmt = data.get("format")
    if fmt == EVIDENCE_FORMAT:
        return verify_evidence(data, cli_keys, name=path)
    if fmt == RECORD_PROOF_FORMAT:
        return verify_record_proof(data, cli_keys, name=path)
    raise Unusable(f"unknown bundle format {fmt!r} (expected {EVIDENCE_FORMAT!r} or "
                   f"{RECORD_PROOF_FORMAT!r})")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _print_report(report: Report, out: Callable[[str], None]) -> None:
    kind = "evidence bundle" if report.format == EVIDENCE_FORMAT else "record proof"
    out(f"{kind} {report.bundle} ({report.format}), origin {report.origin}, exported "
        f"{report.exported_at}")
    proof = report.format == RECORD_PROOF_FORMAT
    if proof:
        out(f"  record: position {report.head_position}, leaf {report.leaf_index}, hash {report.head_hash}")
    elif report.records:
        out(f"  records: {report.records} (positions {report.first_position}–{report.head_position}), "
            f"head hash {report.head_hash}")
    else:
        out("  records: none")
    for cp in report.checkpoints:
        if "size" not in cp:
            out(f"  checkpoint {cp['index']}: malformed")
            continue
        signers = ", ".join(cp["signed_by"]) or "no valid signer"
        out(f"  checkpoint {cp['index']}: size {cp['size']}, root {cp['root']}, time {cp['time']}, "
            f"signed by {signers}")
    if report.keys_from == "bundle":
        out("  keys: taken from the bundle itself — this shows the bundle is consistent, not who made "
            "it; pass --key VKEY with a key you hold")
    else:
        out("  keys: only the keys given with --key are trusted")
    for note in report.notes:
        out(f"  note: {note}")
    first = report.first
    if first is None and proof:
        out(f"proof holds: the record at position {report.head_position} hashes to its link, which "
            f"is leaf {report.leaf_index} of the tree whose root the checkpoint signs")
        return
    if first is None:
        out(f"evidence holds: {report.records} record(s) hash to their links, the chain is unbroken, "
            f"and {len(report.checkpoints)} checkpoint(s) are validly signed and match the records")
        return
    out(f"{'PROOF FAILS' if proof else 'BUNDLE DAMAGED'} at {first.describe()}")
    for p in report.problems[1:]:
        out(f"  also {p.describe()}")
    if report.more_problems:
        out("  (more problems not listed)")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.offline",
        description="Verify an evidence bundle or a single-record proof bundle of the Jiangsu "
                    "innovation-consortium registry, offline (standard library and cryptography only).",
        epilog="Exit status: 0 everything holds, 1 a problem (the first is named), 2 unusable input.")
    parser.add_argument("bundle", help="the bundle file (JSON)")
    parser.add_argument("--key", action="append", default=[], metavar="VKEY",
                        help="a trusted verifier key <name>+<key id>+<base64>; repeatable. Without "
                             "it, the keys listed in the bundle are used")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(None if argv is None else list(argv))
    for stream in (sys.stdout, sys.stderr):  # never fail on a terminal that cannot show a dash
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        report = verify_bundle(args.bundle, args.key)
    except Unusable as exc:
        if args.json:
            print(json.dumps({"ok": False, "unusable": str(exc)}, ensure_ascii=False, indent=2))
        print(f"unusable input: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_report(report, print)
    return EXIT_OK if report.ok else EXIT_PROBLEM


if __name__ == "__main__":
    sys.exit(main())
