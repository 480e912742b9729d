"""Chain verification: recompute every link from the stored bytes, in position order, and name the
first position where the ledger differs from what was written.

Kinds of damage, by position p (``H`` = the hash of the last good link before p):

* ``modified``   — the record at p no longer hashes to its link (its bytes were edited);
* ``missing``    — p has a link but no record (the record was deleted), or p's link names a
  previous hash that is not ``H`` and is not explained otherwise (records and links deleted);
* ``inserted``   — p has a record but no link, or p's self-consistent link follows ``H`` while the
  next link skips over p (a forged record with a forged link);
* ``reordered``  — the record at p hashes to the link of another position q (rows swapped);
* ``broken-link`` — the record is intact but its link's previous hash was edited;
* ``rewritten``  — the Merkle root of the first n records differs from the root a checkpoint signed
  for size n (a ledger rewritten with freshly computed links passes the chain walk, not this);
* ``truncated``  — the ledger holds fewer records than a signed checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

from audit import ledger, merkle
from audit.chain import (
    FRAMED_IDS_KEPT,
    GENESIS,
    TAG,
    Link,
    Record,
    as_recorded,
    canonical_id,
)
from audit.checkpoints import Checkpoint
from audit.store import Database

#: How far around a mismatching record to look for the position it was moved from.
REORDER_WINDOW = 64

#: Rows per read on the fast path: big reads, few round trips.
FAST_BATCH = 20_000

_sha256 = hashlib.sha256
LEAF, NODE = merkle.LEAF_PREFIX, merkle.NODE_PREFIX
_U64 = struct.Struct(">Q").pack
_U32 = struct.Struct(">I").pack


@dataclass(frozen=True)
class Damage:
    position: int
    kind: str  # modified | missing | inserted | reordered | broken-link
    detail: str


@dataclass
class Report:
    database: str
    records: int = 0
    head_position: int | None = None
    head_hash: str | None = None
    damage: list[Damage] = field(default_factory=list)
    truncated_damage: bool = False
    tree_size: int = 0
    tree_root: str | None = None

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def first(self) -> Damage | None:
        return self.damage[0] if self.damage else None

    def to_json(self) -> str:
        d = asdict(self)
        d["ok"] = self.ok
        d["first"] = asdict(self.first) if self.first else None
        return json.dumps(d, ensure_ascii=False, indent=2)


class Frontier:
    """The RFC 9162 tree of the links walked so far, in O(log n) memory: the roots of its perfect
    subtrees, largest first (their sizes are the set bits of ``size``)."""

    def __init__(self, nodes: Sequence[tuple[int, bytes]] = (), size: int = 0) -> None:
        self.hashes = [h for _, h in nodes]
        self.size = size

    def copy(self) -> Frontier:
        twin = Frontier(size=self.size)
        twin.hashes = list(self.hashes)
        return twin

    def append(self, record_hash: bytes) -> None:
        hashes = self.hashes
        hashes.append(_sha256(LEAF + record_hash).digest())
        carry = self.size
        while carry & 1:  # each trailing one bit is a perfect subtree that now has a twin
            right = hashes.pop()
            hashes[-1] = _sha256(NODE + hashes[-1] + right).digest()
            carry >>= 1
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return merkle.EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = merkle.node_hash(left, h)
        return h


@dataclass(frozen=True)
class Start:
    """Where an incremental verification starts: after ``position``, whose record hash is
    ``previous_hash``, with the tree of the records up to it."""

    position: int
    previous_hash: bytes
    frontier: Frontier


class UntrustedStart(Exception):
    """The stored tree does not match the checkpoint an incremental verification starts from."""


def start_at(db: Database, checkpoint: Checkpoint) -> Start:
    """The point after a checkpoint the auditor already trusts, authenticated against its signed
    root: the record hash of its last leaf (by inclusion proof) and the tree's frontier."""
    from audit import tree

    tree.integrate(db)
    if checkpoint.size == 0:
        return Start(0, GENESIS, Frontier())
    try:
        position = tree.position_of_leaf(db, checkpoint.size - 1)
        proof = tree.inclusion_proof(db, position, checkpoint.size)
        frontier = Frontier(tree.frontier_at(db, checkpoint.size), checkpoint.size)
    except (KeyError, ValueError) as e:
        raise UntrustedStart(f"the ledger no longer holds the tree of the checkpoint: {e}") from e
    if not merkle.verify_inclusion(proof.leaf_hash, proof.leaf_index, checkpoint.size, proof.proof,
                                   checkpoint.root) or frontier.root() != checkpoint.root:
        raise UntrustedStart(f"the stored tree of size {checkpoint.size} does not match the signed "
                             "root: the ledger was rewritten; run a full verification")
    return Start(position, proof.record_hash, frontier)


@dataclass
class _Walk:
    """Where a walk stands: after ``after``, whose hash is ``expected_prev``; the links of the
    last two positions walked (to name an insertion); the tree so far; checkpoints still due."""

    after: int
    expected_prev: bytes
    frontier: Frontier
    due: list[Checkpoint]
    records: int = 0
    last_link: Link | None = None
    previous_good: Link | None = None

    def copy(self) -> _Walk:
        return _Walk(self.after, self.expected_prev, self.frontier.copy(), list(self.due),
                     self.records, self.last_link, self.previous_good)


def verify_chain(db: Database, *, progress: Callable[[int], None] | None = None,
                 max_damage: int = 100, batch: int | None = None,
                 checkpoints: Sequence[Checkpoint] = (), start: Start | None = None,
                 workers: int | None = None) -> Report:
    """Walk the ledger from genesis (or from ``start``); report every damaged position (up to
    ``max_damage``). The Merkle root of the records walked is compared with every checkpoint's
    signed root at its size: a ledger rewritten with freshly computed links, or cut short, is
    named too. ``batch`` (rows per read) is for tests.

    An intact ledger is walked by a tight loop over plain rows; at the first sign of damage the
    walk goes back one batch and names what it finds record by record. A full verification of a
    large ledger rehashes it on ``workers`` processes first (default: one per core; see
    ``audit.verify_parallel``) and walks it in this process only if that did not find it intact."""
    report = Report(database=db.display())
    frontier = Frontier() if start is None else start.frontier.copy()
    walk = _Walk(after=0 if start is None else start.position,
                 expected_prev=GENESIS if start is None else start.previous_hash,
                 frontier=frontier,
                 due=sorted((c for c in checkpoints if c.size > frontier.size),
                            key=lambda c: c.size))
    if start is None and workers != 1 and _in_parallel(db, report, walk, workers, progress,
                                                       max_damage):
        return report
    origin = walk.copy()
    resume = _fast_walk(db, walk, progress, batch or FAST_BATCH)
    if resume is None:
        links, _ = ledger.link_count(db, after=origin.after)
        if links == walk.records:
            report.records = walk.records
            if walk.last_link is not None:
                report.head_position = walk.last_link.position
                report.head_hash = walk.last_link.hash.hex()
            _finish(report, walk, max_damage)
            return report
        resume = origin  # links with no record after the last one: find them carefully
    report.records = resume.records
    if resume.last_link is not None:
        report.head_position, report.head_hash = (resume.last_link.position,
                                                  resume.last_link.hash.hex())
    _careful_walk(db, report, resume, progress=progress, max_damage=max_damage,
                  batch=batch or ledger.BATCH)
    return report


def _in_parallel(db: Database, report: Report, walk: _Walk, workers: int | None,
                 progress: Callable[[int], None] | None, max_damage: int, *,
                 level: int | None = None, min_records: int | None = None) -> bool:
    """True when the parallel rehash found the ledger intact and ``report`` is complete."""
    from audit import verify_parallel as vp

    intact = vp.verify_in_parallel(
        db, workers=vp.default_workers() if workers is None else workers,
        checkpoints=walk.due, progress=progress,
        level=vp.BLOCK_LEVEL if level is None else level,
        min_records=vp.MIN_RECORDS if min_records is None else min_records)
    if intact is None:
        return False
    for signed in [c for c in walk.due if c.size <= intact.records]:
        tree = Frontier(size=signed.size)
        tree.hashes = intact.roots_at[signed.size]
        if tree.root() != signed.root:
            return False  # the single-process walk names the rewritten position
    walk.due[:] = [c for c in walk.due if c.size > intact.records]
    walk.frontier.hashes, walk.frontier.size = intact.frontier_hashes, intact.records
    walk.records = report.records = intact.records
    report.head_position, report.head_hash = intact.head_position, intact.head_hash.hex()
    _finish(report, walk, max_damage)
    return True


def _fast_walk(db: Database, walk: _Walk, progress: Callable[[int], None] | None,
               batch: int) -> _Walk | None:
    """Rehash every record, batch by batch, while all is well. Returns ``None`` when every record
    matched its link and every due checkpoint its root (``walk`` then holds the end state), or
    the state at the start of the batch before the one where something did not match."""
    sha, join, pack64, pack32 = _sha256, b"".join, _U64, _U32
    ids: dict[object, bytes] = {}
    topics: dict[object, bytes] = {}
    hashes = walk.frontier.hashes
    size = walk.frontier.size
    expected = walk.expected_prev
    due = walk.due
    next_due = due[0].size if due else -1
    before = previous = walk.copy()
    last: tuple[int, bytes, bytes] | None = None
    second: tuple[int, bytes, bytes] | None = None
    for records, links in ledger.raw_batches(db, batch, after=walk.after):
        previous, before = before, _snapshot(walk, expected, hashes, size, last, second)
        if len(links) != len(records):  # a record with no link, or a link with no record
            return previous
        if len(ids) > FRAMED_IDS_KEPT:
            ids.clear()
        for (position, oid, version, topic, state), (linked, prev, h) in zip(records, links,
                                                                         strict=True):
            if linked != position:
                return previous
            id_part = ids.get(oid)
            if id_part is None:
                if not as_recorded(oid, db.backend):
                    return previous
                text = canonical_id(oid).encode("utf-8")
                id_part = ids[oid] = pack32(len(text)) + text
            topic_part = topics.get(topic)
            if topic_part is None:
                text = str(topic).encode("utf-8")
                topic_part = topics[topic] = pack32(len(text)) + text
            try:
                digest = sha(join((TAG, pack64(position), id_part, pack64(version), topic_part,
                                   pack32(len(state)), state, expected))).digest()
            except (TypeError, struct.error):  # a column whose type was changed by hand
                return previous
            if digest != h or prev != expected:
                return previous
            second, last = last, (position, expected, digest)
            expected = digest
            hashes.append(sha(LEAF + digest).digest())
            carry = size
            while carry & 1:
                right = hashes.pop()
                hashes[-1] = sha(NODE + hashes[-1] + right).digest()
                carry >>= 1
            size += 1
            if size == next_due:
                walk.frontier.size = size
                root = walk.frontier.root()
                while due and due[0].size == size:  # the same size may be signed more than once
                    if due.pop(0).root != root:
                        return previous
                next_due = due[0].size if due else -1
        walk.records += len(records)
        del records, links  # one batch in memory at a time, not two
        if progress is not None:
            progress(walk.records)
    _snapshot(walk, expected, hashes, size, last, second, into=walk)
    return None


def _snapshot(walk: _Walk, expected: bytes, hashes: list[bytes], size: int,
              last: tuple[int, bytes, bytes] | None, second: tuple[int, bytes, bytes] | None,
              *, into: _Walk | None = None) -> _Walk:
    """The fast walk's loop variables as a ``_Walk`` (a copy, or written ``into`` one)."""
    target = into or walk.copy()
    target.expected_prev = expected
    target.frontier.hashes = hashes if into is not None else list(hashes)
    target.frontier.size = size
    if last is not None:
        target.after = last[0]
        target.last_link = Link(*last)
        target.previous_good = None if second is None else Link(*second)
    return target


def _finish(report: Report, walk: _Walk, max_damage: int) -> None:
    for signed in walk.due:
        _add(report, max_damage, Damage(
            report.head_position or 0, "truncated",
            f"the ledger has {walk.frontier.size} records; a signed checkpoint holds "
            f"{signed.size}: records after this position were removed"))
    report.tree_size, report.tree_root = walk.frontier.size, walk.frontier.root().hex()


def _add(report: Report, max_damage: int, damage: Damage) -> None:
    if len(report.damage) < max_damage:
        report.damage.append(damage)
    else:
        report.truncated_damage = True


def _careful_walk(db: Database, report: Report, walk: _Walk, *,
                  progress: Callable[[int], None] | None, max_damage: int, batch: int) -> None:
    """Record by record from ``walk``: name every damaged position."""
    expected_prev, frontier, due = walk.expected_prev, walk.frontier, walk.due
    previous_good, last_link = walk.previous_good, walk.last_link
    window: deque[ledger.Row] = deque(maxlen=REORDER_WINDOW)  # recent rows, to spot a swap
    stream = _lookahead(ledger.rows(db, batch, after=walk.after))

    def damaged(position: int, kind: str, detail: str) -> None:
        _add(report, max_damage, Damage(position, kind, detail))

    for row, upcoming in stream:
        window.append(row)
        rec, link = row.record, row.link
        if link is None:
            assert rec is not None
            damaged(row.position, "inserted", "a record with no link: it was not written by the "
                    "registry")
            continue
        if rec is None:
            damaged(row.position, "missing", "the link remains but its record was deleted")
        elif not as_recorded(rec.originator_id, db.backend):
            damaged(row.position, "modified", f"the originator id {rec.originator_id!r} is not "
                    "stored as the recorder writes it: the record is hidden from its aggregate")
        elif rec.hash_after(link.previous_hash) != link.hash:
            if rec.hash_after(expected_prev) == link.hash:
                damaged(row.position, "broken-link", "the record is intact but its link's previous "
                        "hash was changed")
            else:
                origin = _moved_from(rec, window, upcoming)
                if origin is not None:
                    damaged(row.position, "reordered", f"this record was written at position "
                            f"{origin}")
                else:
                    damaged(row.position, "modified", "the stored record does not match the hash "
                            "written with it")
        elif link.previous_hash != expected_prev:
            if (last_link is not None and previous_good is not None
                    and link.previous_hash == previous_good.hash):
                # The chain skips the last link: that record was slipped in after the fact.
                _replace_or_add(report, damaged, last_link.position, "inserted",
                                "a record with a forged link that the next record does not follow")
            elif last_link is not None and last_link.previous_hash == link.previous_hash:
                damaged(row.position, "inserted", "two links claim the same predecessor")
            else:
                damaged(row.position, "missing", "records before this position were deleted "
                        "(the link's predecessor is not the previous record)")
        previous_good = last_link
        last_link = link
        expected_prev = link.hash
        frontier.append(link.hash)
        while due and due[0].size == frontier.size:
            signed = due.pop(0)
            if frontier.root() != signed.root:
                damaged(row.position, "rewritten", f"the first {signed.size} records do not hash to "
                        f"the root signed in the checkpoint of size {signed.size}: the ledger was "
                        "rewritten at or before this position")
        report.records += 1
        report.head_position, report.head_hash = link.position, link.hash.hex()
        if progress is not None:
            progress(report.records)
    _finish(report, walk, max_damage)


def _replace_or_add(report: Report, damaged: Callable[[int, str, str], None], position: int,
                    kind: str, detail: str) -> None:
    report.damage[:] = [d for d in report.damage if d.position != position]
    damaged(position, kind, detail)
    report.damage.sort(key=lambda d: d.position)


def _moved_from(rec: Record, window: Iterable[ledger.Row],
                upcoming: Iterable[ledger.Row]) -> int | None:
    """The position whose link this record's bytes match, if the record was moved there from."""
    for other in (*window, *upcoming):
        lk = other.link
        if lk is None or other.position == rec.position:
            continue
        moved = Record(lk.position, rec.originator_id, rec.originator_version, rec.topic,
                       rec.state)
        if moved.hash_after(lk.previous_hash) == lk.hash:
            return lk.position
    return None


def _lookahead(rows: Iterator[ledger.Row], size: int = REORDER_WINDOW,
               ) -> Iterator[tuple[ledger.Row, deque[ledger.Row]]]:
    """Each row with a bounded buffer of the rows after it (memory stays flat). The buffer is
    shared, not copied: it is only read when a mismatch needs explaining."""
    buffer: deque[ledger.Row] = deque()
    for row in rows:
        buffer.append(row)
        if len(buffer) > size:
            current = buffer.popleft()
            yield current, buffer
    while buffer:
        current = buffer.popleft()
        yield current, buffer
