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

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

from audit import ledger, merkle
from audit.chain import GENESIS, Link, Record
from audit.checkpoints import Checkpoint
from audit.store import Database

#: How far around a mismatching record to look for the position it was moved from.
REORDER_WINDOW = 64


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
    subtrees, largest first."""

    def __init__(self, nodes: Sequence[tuple[int, bytes]] = (), size: int = 0) -> None:
        self.nodes = list(nodes)  # (level, hash)
        self.size = size

    def append(self, record_hash: bytes) -> None:
        level, h = 0, merkle.leaf_hash(record_hash)
        while self.nodes and self.nodes[-1][0] == level:
            h = merkle.node_hash(self.nodes.pop()[1], h)
            level += 1
        self.nodes.append((level, h))
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return merkle.EMPTY_ROOT
        h = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
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


def verify_chain(db: Database, *, progress: Callable[[int], None] | None = None,
                 max_damage: int = 100, batch: int = ledger.BATCH,
                 checkpoints: Sequence[Checkpoint] = (), start: Start | None = None) -> Report:
    """Walk the ledger from genesis (or from ``start``); report every damaged position (up to
    ``max_damage``). The Merkle root of the records walked is compared with every checkpoint's
    signed root at its size: a ledger rewritten with freshly computed links, or cut short, is
    named too."""
    report = Report(database=db.display())
    expected_prev = GENESIS if start is None else start.previous_hash
    frontier = Frontier() if start is None else start.frontier
    due = sorted((c for c in checkpoints if c.size > frontier.size), key=lambda c: c.size)
    previous_good: Link | None = None  # the link before the last one, to spot an insertion
    last_link: Link | None = None
    window: deque[ledger.Row] = deque(maxlen=REORDER_WINDOW)  # recent rows, to spot a swap
    stream = _lookahead(ledger.rows(db, batch, after=0 if start is None else start.position))

    def damaged(position: int, kind: str, detail: str) -> None:
        if len(report.damage) < max_damage:
            report.damage.append(Damage(position, kind, detail))
        else:
            report.truncated_damage = True

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
    for signed in due:
        damaged(report.head_position or 0, "truncated", f"the ledger has {frontier.size} records; "
                f"a signed checkpoint holds {signed.size}: records after this position were removed")
    report.tree_size, report.tree_root = frontier.size, frontier.root().hex()
    return report


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
