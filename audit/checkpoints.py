"""Signed checkpoints: a C2SP tlog-checkpoint body in a C2SP signed note, signed with Ed25519.

Pure: the standard library and ``cryptography`` only (no eventsourcing, no database), so that an
offline verifier can use it on another machine. The formats follow c2sp.org/tlog-checkpoint and
c2sp.org/signed-note (the note format of golang.org/x/mod/sumdb/note); ``‖`` is concatenation.

The checkpoint body (the note text, what is signed)
---------------------------------------------------
Exactly four lines, each ending in a newline (U+000A)::

    <origin>                      the log's name: non-empty, no Unicode space, no "+", no control
    <tree size>                   ASCII decimal, no leading zero ("0" for the empty tree), < 2**63
    <root hash>                   standard padded base64 (RFC 4648 §4) of the 32-byte RFC 9162 root
    time <YYYY-MM-DDTHH:MM:SSZ>   one extension line: when the head was signed (RFC 3339, UTC,
                                  whole seconds, upper-case "T" and "Z")

The origin rule is the tlog-checkpoint recommendation made mandatory. The time is the only extension
line; a body with any other line, a missing line, or any extra space is malformed. The root of the
empty tree (size 0) must be SHA-256 of the empty string (RFC 9162 §2.1.1). ``Checkpoint`` keeps its
time in UTC and drops sub-second digits when it is built, so that parse(sign(c)) == c.

The signed note
---------------
::

    <body>                                      the four lines above
                                                one blank line
    — <key name> <base64(key id ‖ signature)>   one line per signature: em dash U+2014, space, key
                                                name, space, standard padded base64, newline

* key id = the first four bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte Ed25519 public key),
  a big-endian uint32 (0x01 is the signed-note signature type of Ed25519);
* signature = Ed25519 (RFC 8032) over the UTF-8 bytes of the body, its final newline included and
  the separating blank line excluded (64 bytes, so each base64 field decodes to 68 bytes);
* the key name follows the note rules (non-empty, no Unicode space, no "+"); by the
  tlog-checkpoint recommendation it is the origin, so a rotated key keeps the name and changes the id.

A public key is published as a verifier key ("vkey", as in sumdb/note)::

    <key name>+<key id as 8 lowercase hex digits>+<base64(0x01 ‖ 32-byte public key)>

The note must be UTF-8 without control characters other than the newline, at most ``MAX_NOTE_BYTES``
long and with at most ``MAX_SIGNATURES`` signature lines. Base64 is decoded strictly: only the
canonical (re-encodable) padded form is accepted.

Verification and key validity
-----------------------------
A verifier holds ``KeyValidity`` records: a key (name, id, public key) and the ledger positions at
which it was added and, perhaps, revoked (both are ledger events). Positions here are counted in
leaves: "position N" is the record after which the tree has N leaves (on a ledger without gaps, the
ledger position itself). A key is valid for a checkpoint of size S when

    valid_from_position <= S  and  (revoked_at_position is None or S <= revoked_at_position)

so a key may sign the head that contains its own revocation, and a rotation at position N (add the
new key, revoke the old one) leaves the head of size N signable by both keys.

``verify`` follows signed-note: a signature whose (key name, key id) pair is not known is ignored; a
signature by a known key must verify, else the whole note is refused (``BadSignature``); the note is
accepted when at least one known key that is valid for its size signed it. When no valid key did,
the error names why: ``RevokedKey`` (a known key signed a head larger than its revocation position),
``KeyNotYetValid`` (a head smaller than the key's first position) or ``UnknownKey`` (no signature
by a known key). ``verify_detailed`` reports which keys signed (``Verified``).

Key files
---------
A signing key is an unencrypted PKCS #8 PEM file kept outside any database. ``load_signer`` refuses
a symbolic link, anything but a regular file and a file that group or others may read, write or
execute (``mode & 0o077``); ``write_private_key`` creates it with mode 0600 and never overwrites.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ED25519",
    "EMPTY_ROOT",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "BadSignature",
    "Checkpoint",
    "CheckpointError",
    "InsecureKeyFile",
    "KeyFileError",
    "KeyNotYetValid",
    "KeyValidity",
    "MalformedCheckpoint",
    "MalformedKey",
    "RevokedKey",
    "Signature",
    "Signer",
    "UnknownKey",
    "Verified",
    "WrongOrigin",
    "add_signature",
    "encode_vkey",
    "generate_key",
    "key_id",
    "load_signer",
    "parse",
    "parse_vkey",
    "sign",
    "sign_note",
    "signer_from_pem",
    "split_note",
    "valid_name",
    "verify",
    "verify_detailed",
    "write_private_key",
]

ED25519 = 0x01
"""The signed-note signature type byte of Ed25519."""
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256().digest()
"""RFC 9162 MTH({}): the only root a checkpoint of size 0 may carry."""
MAX_TREE_SIZE = 2**63 - 1
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 16
MAX_KEY_FILE_BYTES = 1 << 16

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_TIME_PREFIX = "time "
_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z", re.ASCII)
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)
_FORBIDDEN_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class CheckpointError(Exception):
    """A checkpoint note that must not be trusted."""


class MalformedCheckpoint(CheckpointError, ValueError):
    """The note or its checkpoint body is not in the documented format."""


class WrongOrigin(CheckpointError):
    """A well-signed checkpoint of another log than the one expected."""


class UnknownKey(CheckpointError):
    """No signature on the note is by a known key."""

    def __init__(self, signatures: Sequence[Signature]) -> None:
        self.signatures = tuple(signatures)
        seen = ", ".join(dict.fromkeys(s.label for s in self.signatures)) or "nobody"
        super().__init__(f"no signature by a known key (signed by {seen})")

    def __reduce__(self) -> tuple[type[UnknownKey], tuple[tuple[Signature, ...]]]:
        return type(self), (self.signatures,)


class BadSignature(CheckpointError):
    """A signature by a known key does not verify: the note was altered or forged."""

    def __init__(self, key: KeyValidity) -> None:
        self.key = key
        super().__init__(f"the signature by {key.label} does not verify")

    def __reduce__(self) -> tuple[type[BadSignature], tuple[KeyValidity]]:
        return type(self), (self.key,)


class RevokedKey(CheckpointError):
    """The only known keys that signed were revoked before the checkpoint's size."""

    def __init__(self, key: KeyValidity, size: int) -> None:
        self.key = key
        self.size = size
        super().__init__(f"checkpoint of size {size} signed by {key.label}, a key revoked at position "
                         f"{key.revoked_at_position}")

    def __reduce__(self) -> tuple[type[RevokedKey], tuple[KeyValidity, int]]:
        return type(self), (self.key, self.size)


class KeyNotYetValid(CheckpointError):
    """The only known keys that signed were added after the checkpoint's size."""

    def __init__(self, key: KeyValidity, size: int) -> None:
        self.key = key
        self.size = size
        super().__init__(f"checkpoint of size {size} signed by {key.label}, a key valid only from "
                         f"position {key.valid_from_position}")

    def __reduce__(self) -> tuple[type[KeyNotYetValid], tuple[KeyValidity, int]]:
        return type(self), (self.key, self.size)


class MalformedKey(ValueError):
    """A key name, verifier key or public key that is not in the documented format."""


class KeyFileError(Exception):
    """A private key file that cannot be used."""


class InsecureKeyFile(KeyFileError):
    """A private key file that others could read or replace: a symlink, or mode & 0o077 != 0."""


# --------------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------------


def _is_space(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def valid_name(name: object) -> bool:
    """A signed-note key name (and, here, a checkpoint origin): non-empty UTF-8 text without any
    Unicode space, plus sign or control character below U+0020."""
    return (isinstance(name, str) and name != "" and "+" not in name and _encodable(name)
            and not any(ch < " " or _is_space(ch) for ch in name))


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64: padded, canonical (it re-encodes to the same text), else None."""
    if not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return raw if _b64encode(raw) == text else None


def _format_time(t: datetime) -> str:
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
            f"T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z")


def _parse_time(text: str) -> datetime:
    match = _TIME.fullmatch(text)
    if match is None:
        raise MalformedCheckpoint(f"time is not YYYY-MM-DDTHH:MM:SSZ: {text!r}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise MalformedCheckpoint(f"time is not a valid UTC time: {text!r}") from exc


def key_id(name: str, public_key: bytes) -> int:
    """The signed-note key id of an Ed25519 key: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + bytes(public_key)).digest()
    return int.from_bytes(digest[:4], "big")


def encode_vkey(name: str, public_key: bytes) -> str:
    """The verifier key ``<name>+<8 hex digits>+<base64(0x01 ‖ public key)>`` (sumdb/note)."""
    if not valid_name(name):
        raise MalformedKey(f"invalid key name {name!r}")
    if len(public_key) != 32:
        raise MalformedKey("an Ed25519 public key is 32 bytes")
    return f"{name}+{key_id(name, public_key):08x}+{_b64encode(bytes([ED25519]) + bytes(public_key))}"


def parse_vkey(vkey: str) -> tuple[str, int, bytes]:
    """``(name, key id, 32-byte public key)`` from a verifier key; checks the id against the key."""
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3:
        raise MalformedKey("a verifier key is <name>+<key id>+<base64 key>")
    name, hex_id, b64 = parts
    raw = _b64decode(b64)
    if not valid_name(name) or _HEX_ID.fullmatch(hex_id) is None or not raw:
        raise MalformedKey(f"malformed verifier key {vkey!r}")
    if raw[0] != ED25519:
        raise MalformedKey(f"unknown signature type {raw[0]:#04x} (only 0x01, Ed25519)")
    if len(raw) != 33:
        raise MalformedKey("an Ed25519 public key is 32 bytes")
    public_key = raw[1:]
    if int(hex_id, 16) != key_id(name, public_key):
        raise MalformedKey(f"key id {hex_id} does not match the key named {name!r}")
    return name, int(hex_id, 16), public_key


# --------------------------------------------------------------------------------------------
# Checkpoints, signatures, keys
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's origin, its size (leaves), its RFC 9162 root and when it was signed."""

    origin: str
    size: int
    root: bytes
    time: datetime

    def __post_init__(self) -> None:
        if not valid_name(self.origin):
            raise MalformedCheckpoint(f"invalid origin {self.origin!r}: non-empty, no space, no '+'")
        if not isinstance(self.size, int) or isinstance(self.size, bool) \
                or not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedCheckpoint(f"tree size must be an integer in [0, 2**63): {self.size!r}")
        if not isinstance(self.root, bytes | bytearray | memoryview) or len(self.root) != HASH_SIZE:
            raise MalformedCheckpoint("the root hash is 32 bytes")
        object.__setattr__(self, "root", bytes(self.root))
        if self.size == 0 and self.root != EMPTY_ROOT:
            raise MalformedCheckpoint("the empty tree's root is SHA-256 of the empty string")
        if not isinstance(self.time, datetime) or self.time.utcoffset() is None:
            raise MalformedCheckpoint("the time must be a timezone-aware datetime")
        object.__setattr__(self, "time", self.time.astimezone(UTC).replace(microsecond=0))

    @property
    def body(self) -> str:
        """The note text: origin, size, base64 root and ``time <RFC 3339>``, one per line."""
        return (f"{self.origin}\n{self.size}\n{_b64encode(self.root)}\n"
                f"{_TIME_PREFIX}{_format_time(self.time)}\n")

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        """The checkpoint a body states; ``MalformedCheckpoint`` unless it is exactly canonical."""
        if not text.endswith("\n"):
            raise MalformedCheckpoint("the checkpoint body must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 4:
            raise MalformedCheckpoint(f"the checkpoint body has {len(lines)} lines, not 4 "
                                      "(origin, size, root, time)")
        origin, size_text, root_text, time_line = lines
        if not valid_name(origin):
            raise MalformedCheckpoint(f"invalid origin {origin!r}")
        if _SIZE.fullmatch(size_text) is None:
            raise MalformedCheckpoint(f"tree size is not a decimal number: {size_text!r}")
        size = int(size_text)
        root = _b64decode(root_text)
        if root is None or len(root) != HASH_SIZE:
            raise MalformedCheckpoint(f"root hash is not the base64 of 32 bytes: {root_text!r}")
        if not time_line.startswith(_TIME_PREFIX):
            raise MalformedCheckpoint(f"the fourth line must be 'time <RFC 3339>': {time_line!r}")
        checkpoint = cls(origin, size, root, _parse_time(time_line[len(_TIME_PREFIX):]))
        if checkpoint.body != text:  # cannot happen with the checks above; kept as the contract
            raise MalformedCheckpoint("the checkpoint body is not in canonical form")
        return checkpoint


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: key name, key id (uint32) and the signature bytes after the id."""

    name: str
    key_id: int
    signature: bytes

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id:08x}"

    @property
    def line(self) -> str:
        """The signature line, with its newline."""
        raw = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIGNATURE_PREFIX}{self.name} {_b64encode(raw)}\n"


@dataclass(frozen=True, slots=True)
class KeyValidity:
    """A public signing key the verifier trusts, and the positions between which it is valid."""

    key_id: int
    name: str
    public_key: bytes
    valid_from_position: int = 0
    revoked_at_position: int | None = None

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise MalformedKey(f"invalid key name {self.name!r}")
        if not isinstance(self.public_key, bytes | bytearray) or len(self.public_key) != 32:
            raise MalformedKey("an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "public_key", bytes(self.public_key))
        if self.key_id != key_id(self.name, self.public_key):
            raise MalformedKey(f"key id {self.key_id:08x} does not match the key named {self.name!r}")
        if not _is_position(self.valid_from_position):
            raise ValueError(f"valid_from_position must be a non-negative integer: "
                             f"{self.valid_from_position!r}")
        revoked = self.revoked_at_position
        if revoked is not None and not (_is_position(revoked) and revoked >= self.valid_from_position):
            raise ValueError(f"revoked_at_position must be an integer >= valid_from_position: {revoked!r}")

    @classmethod
    def from_vkey(cls, vkey: str, valid_from_position: int = 0,
                  revoked_at_position: int | None = None) -> KeyValidity:
        name, kid, public_key = parse_vkey(vkey)
        return cls(kid, name, public_key, valid_from_position, revoked_at_position)

    @property
    def vkey(self) -> str:
        return encode_vkey(self.name, self.public_key)

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id:08x}"

    def valid_for(self, size: int) -> bool:
        """True when the key may sign the head of ``size`` leaves."""
        return self.valid_from_position <= size and (
            self.revoked_at_position is None or size <= self.revoked_at_position)

    def verifies(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def _is_position(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Signer:
    """An Ed25519 private key under a key name. Its repr never shows the key."""

    __slots__ = ("_private_key", "key_id", "name", "public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not valid_name(name):
            raise MalformedKey(f"invalid key name {name!r}: non-empty, no space, no '+'")
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("a Signer needs an Ed25519 private key")
        self.name: str = name
        self._private_key = private_key
        self.public_key: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id: int = key_id(name, self.public_key)

    @property
    def vkey(self) -> str:
        return encode_vkey(self.name, self.public_key)

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id:08x}"

    def validity(self, valid_from_position: int = 0,
                 revoked_at_position: int | None = None) -> KeyValidity:
        return KeyValidity(self.key_id, self.name, self.public_key, valid_from_position,
                           revoked_at_position)

    def sign(self, message: bytes) -> Signature:
        return Signature(self.name, self.key_id, self._private_key.sign(message))

    def __repr__(self) -> str:
        return f"Signer({self.label})"


@dataclass(frozen=True, slots=True)
class Verified:
    """What ``verify_detailed`` found: the checkpoint and who signed it.

    ``signed_by``: known keys valid for the checkpoint's size whose signatures verify (never empty).
    ``outside_validity``: known keys whose signatures verify but that were not valid for this size
    (only present alongside a valid signer). ``unknown``: signatures by keys not known, ignored.
    """

    checkpoint: Checkpoint
    signed_by: tuple[KeyValidity, ...]
    outside_validity: tuple[KeyValidity, ...]
    unknown: tuple[Signature, ...]


# --------------------------------------------------------------------------------------------
# Signed notes (c2sp.org/signed-note)
# --------------------------------------------------------------------------------------------


def _check_note_text(text: str) -> None:
    if not _encodable(text):
        raise MalformedCheckpoint("a note must be valid UTF-8")
    if _FORBIDDEN_CONTROL.search(text):
        raise MalformedCheckpoint("a note must not contain control characters other than newline")


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """``text``, a blank line and one signature line per signer, in order."""
    if not text.endswith("\n"):
        raise MalformedCheckpoint("a note text must end in a newline")
    _check_note_text(text)
    if not signers:
        raise ValueError("a note needs at least one signer")
    labels = [s.label for s in signers]
    if len(set(labels)) != len(labels):
        raise ValueError(f"the same key signs twice: {labels}")
    message = text.encode("utf-8")
    return text + "\n" + "".join(s.sign(message).line for s in signers)


def split_note(note: str | bytes) -> tuple[str, list[Signature]]:
    """The note text (with its final newline) and its signatures, checked for form only."""
    if isinstance(note, bytes | bytearray):
        if len(note) > MAX_NOTE_BYTES:
            raise MalformedCheckpoint(f"a note is at most {MAX_NOTE_BYTES} bytes")
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedCheckpoint("a note must be valid UTF-8") from exc
    if not isinstance(note, str):
        raise TypeError("a note is text")
    _check_note_text(note)
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise MalformedCheckpoint(f"a note is at most {MAX_NOTE_BYTES} bytes")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedCheckpoint("no blank line between the note text and its signatures")
    text, block = note[:split + 1], note[split + 2:]
    if not block or not block.endswith("\n"):
        raise MalformedCheckpoint("a note ends with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedCheckpoint(f"more than {MAX_SIGNATURES} signatures")
    signatures: list[Signature] = []
    for line in lines:
        if not line.startswith(_SIGNATURE_PREFIX):
            raise MalformedCheckpoint(f"a signature line starts with an em dash and a space: {line!r}")
        fields = line[len(_SIGNATURE_PREFIX):].split(" ")
        if len(fields) != 2:
            raise MalformedCheckpoint(f"a signature line is '— <key name> <base64>': {line!r}")
        name, b64 = fields
        raw = _b64decode(b64)
        if not valid_name(name) or raw is None or len(raw) < 5:
            raise MalformedCheckpoint(f"malformed signature line {line!r}")
        signatures.append(Signature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, signatures


def add_signature(note: str | bytes, signer: Signer) -> str:
    """The note with ``signer``'s signature appended (replacing an earlier one by the same key),
    e.g. the new key countersigning a checkpoint during a rotation. Verifies nothing."""
    text, signatures = split_note(note)
    kept = [s for s in signatures if (s.name, s.key_id) != (signer.name, signer.key_id)]
    return text + "\n" + "".join(s.line for s in kept) + signer.sign(text.encode("utf-8")).line


# --------------------------------------------------------------------------------------------
# Checkpoint notes: sign, parse, verify
# --------------------------------------------------------------------------------------------


def sign(checkpoint: Checkpoint, signer: Signer, *more_signers: Signer) -> str:
    """The signed note of ``checkpoint``; several signers (a rotation) give several lines."""
    return sign_note(checkpoint.body, (signer, *more_signers))


def parse(note: str | bytes) -> tuple[Checkpoint, list[Signature]]:
    """The checkpoint and signatures of a note, checked for form only (no signature is verified)."""
    text, signatures = split_note(note)
    return Checkpoint.from_body(text), signatures


def _index(known_keys: Iterable[KeyValidity]) -> dict[tuple[str, int], KeyValidity]:
    index: dict[tuple[str, int], KeyValidity] = {}
    for key in known_keys:
        if not isinstance(key, KeyValidity):
            raise TypeError(f"known keys are KeyValidity records, not {type(key).__name__}")
        other = index.setdefault((key.name, key.key_id), key)
        if other != key:
            raise ValueError(f"two different records for the key {key.label}")
    return index


def verify_detailed(note: str | bytes, known_keys: Iterable[KeyValidity], *,
                    origin: str | None = None) -> Verified:
    """Verify a checkpoint note against the trusted keys; report which keys signed it.

    Raises ``MalformedCheckpoint``, ``WrongOrigin`` (when ``origin`` is given and differs),
    ``BadSignature`` (any known key's signature fails), or — when no known key valid for the
    checkpoint's size signed — ``RevokedKey``, ``KeyNotYetValid`` or ``UnknownKey``.
    """
    index = _index(known_keys)
    text, signatures = split_note(note)
    checkpoint = Checkpoint.from_body(text)
    if origin is not None and checkpoint.origin != origin:
        raise WrongOrigin(f"checkpoint of {checkpoint.origin!r}, expected {origin!r}")
    message = text.encode("utf-8")
    valid: dict[str, KeyValidity] = {}
    outside: dict[str, KeyValidity] = {}
    unknown: dict[Signature, None] = {}
    for signature in signatures:
        key = index.get((signature.name, signature.key_id))
        if key is None:
            unknown[signature] = None
            continue
        if not key.verifies(message, signature.signature):
            raise BadSignature(key)
        (valid if key.valid_for(checkpoint.size) else outside)[key.label] = key
    if not valid:
        for key in outside.values():
            if key.revoked_at_position is not None and checkpoint.size > key.revoked_at_position:
                raise RevokedKey(key, checkpoint.size)
        if outside:
            raise KeyNotYetValid(next(iter(outside.values())), checkpoint.size)
        raise UnknownKey(list(unknown))
    return Verified(checkpoint, tuple(valid.values()), tuple(outside.values()), tuple(unknown))


def verify(note: str | bytes, known_keys: Iterable[KeyValidity], *, origin: str | None = None) -> Checkpoint:
    """The checkpoint of a note signed by at least one trusted key valid for its size (see
    ``verify_detailed`` for the errors and for who signed)."""
    return verify_detailed(note, known_keys, origin=origin).checkpoint


# --------------------------------------------------------------------------------------------
# Key files
# --------------------------------------------------------------------------------------------


def generate_key(name: str) -> tuple[bytes, str]:
    """A new Ed25519 key: (unencrypted PKCS #8 PEM of the private key, its verifier key)."""
    if not valid_name(name):
        raise MalformedKey(f"invalid key name {name!r}: non-empty, no space, no '+'")
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return pem, Signer(name, private_key).vkey


def signer_from_pem(pem: bytes, name: str) -> Signer:
    """A signer from PEM bytes (an unencrypted Ed25519 private key)."""
    try:
        private_key = serialization.load_pem_private_key(bytes(pem), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError("not an unencrypted PEM private key") from exc
    if not isinstance(private_key, Ed25519PrivateKey):
        raise KeyFileError(f"not an Ed25519 private key ({type(private_key).__name__})")
    return Signer(name, private_key)


def _check_mode(path: Path, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise InsecureKeyFile(f"{path} is a symbolic link; name the key file itself")
    if not stat.S_ISREG(st.st_mode):
        raise InsecureKeyFile(f"{path} is not a regular file")
    if st.st_mode & 0o077:
        raise InsecureKeyFile(f"{path} has mode {stat.S_IMODE(st.st_mode):04o}: a signing key must not be "
                              f"accessible to group or others (chmod 600 {path})")


def load_signer(path: Path | str, name: str) -> Signer:
    """The signer in a PEM file, refused (``InsecureKeyFile``) when the file is a symbolic link, not
    a regular file, or has any group/other permission bit (``mode & 0o077``)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror or exc}") from exc
    _check_mode(path, st)
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
             | getattr(os, "O_NONBLOCK", 0))
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a symlink since lstat
            raise InsecureKeyFile(f"{path} is a symbolic link; name the key file itself") from exc
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)  # the file actually opened: no race with the lstat above
        _check_mode(path, st)
        data = b""
        while len(data) <= MAX_KEY_FILE_BYTES:
            chunk = os.read(fd, MAX_KEY_FILE_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is too large for a PEM key")
    return signer_from_pem(data, name)


def write_private_key(path: Path | str, pem: bytes) -> None:
    """Create ``path`` holding ``pem`` with mode 0600, atomically: the file appears complete or not
    at all, and an existing file (or symlink) at ``path`` is never replaced (``FileExistsError``)."""
    path = Path(path)
    signer_from_pem(pem, "check")  # refuse to store anything but an unencrypted Ed25519 key
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing key file", str(path))
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(bytes(pem))
            file.flush()
            os.fsync(file.fileno())
        os.link(tmp, path)  # atomic, and fails with FileExistsError if the name was taken meanwhile
    finally:
        os.unlink(tmp)
    sync_directory(directory)


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a new name in ``directory`` durable, where directories can be synced."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
