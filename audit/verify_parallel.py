"""Full verification of a large ledger on several processes.

Each record's link can be checked on its own (its bytes and its link's previous hash give its
hash) and the chain is continuous when each link names the hash of the link before it. So the
ledger is cut into consecutive chunks whose sizes are multiples of ``2**level`` records; each
process rehashes one chunk and returns its first link's previous hash, its last hash and the
RFC 9162 roots of its complete blocks of ``2**level`` leaves. The parent checks that the chunks
join up, folds the block roots into the tree of the whole ledger, and compares every checkpoint's
signed root (each process also returns, at every checkpoint size inside its chunk, the partial
tree of that block). Anything unexpected — damage, a chunk that does not join, a ledger that
changed shape while being read — sends the verification back to the single-process walk, which
names the damage; so this path only ever says "intact", never anything else.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import pairwise

from audit import ledger
from audit.chain import FRAMED_IDS_KEPT, GENESIS, TAG, as_recorded, canonical_id
from audit.checkpoints import Checkpoint
from audit.merkle import LEAF_PREFIX, NODE_PREFIX
from audit.store import Database

#: Below this many records one process is quicker than starting others.
MIN_RECORDS = 200_000
#: Chunks are multiples of 2**BLOCK_LEVEL records (65,536).
BLOCK_LEVEL = 16

_U64 = struct.Struct(">Q").pack
_U32 = struct.Struct(">I").pack


@dataclass
class Chunk:
    """What one process found in its part of the ledger."""

    intact: bool = True
    count: int = 0
    first_prev: bytes | None = None
    last_position: int | None = None
    last_hash: bytes | None = None
    blocks: list[bytes] = field(default_factory=list)  # roots of complete blocks, in order
    tail: list[bytes] = field(default_factory=list)  # the tree of the leaves after the last block
    partials: dict[int, list[bytes]] = field(default_factory=dict)  # checkpoint size → its block's tree


def walk_chunk(db: Database, after: int, count: int, level: int, first_leaf: int,
               sizes: Sequence[int], batch: int = 20_000) -> Chunk:
    """Rehash ``count`` records after position ``after`` (leaf ``first_leaf`` onwards)."""
    sha, join = hashlib.sha256, b"".join
    out = Chunk()
    ids: dict[object, bytes] = {}
    topics: dict[object, bytes] = {}
    hashes: list[bytes] = []
    mask = (1 << level) - 1
    size = 0  # leaves of this chunk walked so far
    wanted = set(sizes)
    expected: bytes | None = None
    for records, links in ledger.raw_batches(db, batch, after=after):
        if len(links) != len(records):
            out.intact = False
            return out
        if len(ids) > FRAMED_IDS_KEPT:
            ids.clear()
        for (position, oid, version, topic, state), (linked, prev, h) in zip(records, links,
                                                                             strict=True):
            if size == count:
                break
            if expected is None:
                expected = out.first_prev = prev
            id_part = ids.get(oid)
            if id_part is None:
                if not as_recorded(oid, db.backend):
                    out.intact = False
                    return out
                text = canonical_id(oid).encode("utf-8")
                id_part = ids[oid] = _U32(len(text)) + text
            topic_part = topics.get(topic)
            if topic_part is None:
                text = str(topic).encode("utf-8")
                topic_part = topics[topic] = _U32(len(text)) + text
            try:
                digest = sha(join((TAG, _U64(position), id_part, _U64(version), topic_part,
                                   _U32(len(state)), state, expected))).digest()
            except (TypeError, struct.error):
                out.intact = False
                return out
            if linked != position or digest != h or prev != expected:
                out.intact = False
                return out
            expected = digest
            out.last_position = position
            hashes.append(sha(LEAF_PREFIX + digest).digest())
            carry = size & mask  # within the block: completed blocks have left ``hashes``
            while carry & 1:
                right = hashes.pop()
                hashes[-1] = sha(NODE_PREFIX + hashes[-1] + right).digest()
                carry >>= 1
            size += 1
            if size & mask == 0:
                out.blocks.append(hashes.pop())  # one perfect subtree: the whole block
            if first_leaf + size in wanted:
                out.partials[first_leaf + size] = list(hashes)
        if size == count:
            break
        del records, links  # one batch in memory at a time, not two
    out.count, out.last_hash, out.tail = size, expected, hashes
    out.intact = out.intact and size == count
    return out


class _Tree:
    """The tree's frontier built from perfect subtrees appended in order (levels descending)."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.size = 0

    def append_subtree(self, root: bytes, level: int) -> None:
        self.hashes.append(root)
        carry = self.size >> level
        while carry & 1:
            right = self.hashes.pop()
            self.hashes[-1] = hashlib.sha256(NODE_PREFIX + self.hashes[-1] + right).digest()
            carry >>= 1
        self.size += 1 << level


@dataclass(frozen=True)
class Intact:
    """A ledger found intact: its size, last position and hash, and its tree's frontier."""

    records: int
    head_position: int | None
    head_hash: bytes
    frontier_hashes: list[bytes]
    roots_at: dict[int, list[bytes]]  # checkpoint size → frontier at that size


def verify_in_parallel(db: Database, *, workers: int, checkpoints: Sequence[Checkpoint],
                       level: int = BLOCK_LEVEL, min_records: int = MIN_RECORDS,
                       progress: Callable[[int], None] | None = None) -> Intact | None:
    """The whole ledger rehashed on ``workers`` processes; ``None`` when it is too small to be
    worth it or when anything at all did not match (the caller then walks it in one process)."""
    records = ledger.record_count(db)
    if workers < 2 or records < max(min_records, 2):
        return None
    block = 1 << level
    per = -(-records // workers)  # ceiling
    per = -(-per // block) * block
    starts = list(range(0, records, per))
    afters = ledger.positions_before(db, starts)
    sizes = sorted({c.size for c in checkpoints if 0 < c.size <= records})
    chunks: dict[int, Chunk] = {}
    context = multiprocessing.get_context("spawn")  # never fork a threaded server
    jobs = [(db, after, min(per, records - first), level, first,
             [s for s in sizes if first < s <= first + per])
            for first, after in zip(starts, afters, strict=True)]
    try:
        # This process walks the first chunk itself while the others walk the rest.
        with ProcessPoolExecutor(max_workers=max(1, len(jobs) - 1), mp_context=context) as pool:
            futures = {pool.submit(walk_chunk, *job): i for i, job in enumerate(jobs) if i}
            chunks[0] = walk_chunk(*jobs[0])
            done = chunks[0].count
            if progress is not None:
                progress(done)
            for future in as_completed(futures):
                chunk = future.result()
                chunks[futures[future]] = chunk
                done += chunk.count
                if progress is not None:
                    progress(done)
    except (BrokenProcessPool, OSError, RuntimeError):
        return None  # no processes to be had here (or one died): one process will do
    ordered = [chunks[i] for i in range(len(starts))]
    if not all(c.intact for c in ordered) or ordered[0].first_prev != GENESIS:
        return None
    for before, after_chunk in pairwise(ordered):
        if before.tail or after_chunk.first_prev != before.last_hash:
            return None
    links, _ = ledger.link_count(db)
    if links != records:
        return None
    blocks = [b for c in ordered for b in c.blocks]
    roots_at = {}
    partials = {s: p for c in ordered for s, p in c.partials.items()}
    for s in sizes:
        tree = _Tree()
        for root in blocks[: s >> level]:
            tree.append_subtree(root, level)
        roots_at[s] = tree.hashes + partials.get(s, [])
    tree = _Tree()
    for root in blocks:
        tree.append_subtree(root, level)
    last = ordered[-1]
    assert last.last_hash is not None
    return Intact(records, last.last_position, last.last_hash, tree.hashes + last.tail, roots_at)


def default_workers() -> int:
    return min(os.cpu_count() or 1, 8)
