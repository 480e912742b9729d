"""Framing of a stored record and its link hash (pure; documented in docs/ledger.md).

    hash = SHA-256( TAG
                    ‖ u64(position)
                    ‖ u32(len(id)) ‖ id            originator id, canonical text, UTF-8
                    ‖ u64(originator_version)
                    ‖ u32(len(topic)) ‖ topic      UTF-8
                    ‖ u32(len(state)) ‖ state      the stored bytes, exactly as stored
                    ‖ previous_hash )              32 bytes; GENESIS (32 zero bytes) first

All integers are unsigned big-endian. The chain is global, in position (notification id) order;
positions may have gaps, and each link names the hash of the record before it in that order.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from uuid import UUID

TAG = b"jiangsu-consortia-ledger/v1\x00"
GENESIS = bytes(32)
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


#: Framed originator ids a walk over the ledger keeps between records (a consortium's records
#: share one). Past this many the walk forgets them, so its memory does not grow with the ledger.
FRAMED_IDS_KEPT = 50_000


def canonical_id(originator_id: UUID | str) -> str:
    """UUIDs in their canonical lowercase hyphenated form; any other text exactly as given.

    Text is read as a UUID only in the one spelling a recorder writes (SQLite stores 32 lowercase
    hex digits; PostgreSQL's ``uuid`` column reads back as a ``UUID``). Any other spelling of the
    same UUID (upper case, braces, ``urn:uuid:``) is framed as the text it is, so its hash
    differs: eventsourcing finds an aggregate's events by the exact stored text, and a
    re-spelled id would silently take a record away from its aggregate."""
    if isinstance(originator_id, UUID):
        return str(originator_id)
    return _canonical_text(originator_id)


_HEX_DIGITS = frozenset("0123456789abcdef")


def as_recorded(originator_id: object, backend: str) -> bool:
    """Whether a stored id (as the walks read it) is in the form the recorder writes: SQLite's
    32 lowercase hex digits, or PostgreSQL's ``uuid`` column (read as its text, always lowercase
    hyphenated). On SQLite the hyphenated spelling frames like the canonical text, yet hides the
    record from its aggregate like any other spelling: the walks name an id that is not as
    recorded as a modified record."""
    if isinstance(originator_id, UUID):
        return True
    if not isinstance(originator_id, str):
        return False
    if backend == "sqlite":
        return len(originator_id) == 32 and _HEX_DIGITS.issuperset(originator_id)
    return len(originator_id) == 36 and _HEX_DIGITS.issuperset(originator_id.replace("-", ""))


@lru_cache(maxsize=65_536)  # a consortium's records share one id: parse it once, not per record
def _canonical_text(originator_id: str) -> str:
    if len(originator_id) == 32 and _HEX_DIGITS.issuperset(originator_id):
        return str(UUID(hex=originator_id))
    return originator_id


def frame(position: int, originator_id: UUID | str, originator_version: int, topic: str,
          state: bytes, previous_hash: bytes) -> bytes:
    """The exact bytes that are hashed for one record."""
    oid = canonical_id(originator_id).encode("utf-8")
    top = topic.encode("utf-8")
    return b"".join((
        TAG,
        _U64.pack(position),
        _U32.pack(len(oid)), oid,
        _U64.pack(originator_version),
        _U32.pack(len(top)), top,
        _U32.pack(len(state)), bytes(state),
        previous_hash,
    ))


def link_hash(position: int, originator_id: UUID | str, originator_version: int, topic: str,
              state: bytes, previous_hash: bytes) -> bytes:
    return hashlib.sha256(
        frame(position, originator_id, originator_version, topic, state, previous_hash)
    ).digest()


@dataclass(frozen=True, slots=True)
class Link:
    position: int
    previous_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class Record:
    """One stored event with its position, as read back from the database."""

    position: int
    originator_id: UUID | str
    originator_version: int
    topic: str
    state: bytes

    def hash_after(self, previous_hash: bytes) -> bytes:
        return link_hash(self.position, self.originator_id, self.originator_version, self.topic,
                         self.state, previous_hash)


def chain(records: Iterable[Record], previous_hash: bytes) -> Iterator[Link]:
    """Links for consecutive new records, continuing from ``previous_hash``."""
    for record in records:
        h = record.hash_after(previous_hash)
        yield Link(record.position, previous_hash, h)
        previous_hash = h
