"""RFC 9162 (Certificate Transparency 2.0) §2.1 Merkle tree: tree heads, proofs, verification.

Pure and stdlib-only. Hashing (§2.1.1), with ``‖`` for concatenation::

    MTH({})     = SHA-256()                                   EMPTY_ROOT
    MTH({d})    = SHA-256(0x00 ‖ d)                           leaf_hash(d)
    MTH(D[n])   = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))   node_hash(left, right)
                  k = the largest power of two smaller than n

Perfect subtrees
----------------
``(level, index)`` names the *perfect* subtree of ``2**level`` leaves that starts at leaf
``index * 2**level``; level 0 is a leaf hash. Once its last leaf is appended a perfect subtree
never changes, so it can be stored once and for all. Every other node an RFC recursion visits lies
on the right edge of the tree of some size and covers a range ``[a, b)`` whose start is aligned to
the power of two above ``b - a``; its hash is the right-to-left fold, with ``node_hash``, of the
perfect subtrees given by the binary digits of ``b - a`` (largest first). Hence a store of perfect
subtrees answers the tree head of every past size and every inclusion or consistency proof from
O(log n) stored hashes, without rehashing the ledger. ``root``, ``inclusion_proof`` and
``consistency_proof`` first plan the set of ``(level, index)`` keys, fetch them with **one**
``perfect_many`` call, then combine them.

Storage layout (what a database-backed ``NodeSource`` is expected to hold)::

    CREATE TABLE merkle_nodes (
        level INTEGER NOT NULL,   -- 0 = leaf hashes
        idx   INTEGER NOT NULL,   -- covers leaves [idx * 2**level, (idx + 1) * 2**level)
        hash  BLOB    NOT NULL,   -- 32 bytes (bytea on PostgreSQL)
        PRIMARY KEY (level, idx)
    );

One row per perfect subtree: a tree of n leaves has ``2n - popcount(n)`` rows. Appending leaf n
adds the row ``(0, n)`` plus one row per trailing 1-bit of n (the subtrees the new leaf completes;
one on average) — exactly the triples ``new_nodes_after_append`` returns, so they can be inserted
in the same transaction as the ledger record and the table is append-only like the ledger.
``perfect_many`` is one ``SELECT level, idx, hash FROM merkle_nodes WHERE (level, idx) IN (...)``;
the leaf count is the number of level-0 rows. Leaf indices are 0-based ordinals in ledger position
order — not positions, which may have gaps.

Edge cases (documented choices)
-------------------------------
* The empty tree's head is ``EMPTY_ROOT``; it has no inclusion proofs.
* A consistency proof with ``m == n`` is the empty list; it verifies iff the two roots are equal.
* RFC 9162 defines ``PROOF(m, D_n)`` only for ``0 < m``: a tree of size 0 commits to nothing, so
  there is nothing to prove and a caller has to decide what an empty old head means. Therefore
  ``consistency_proof(source, 0, n)`` raises ``ValueError`` and ``verify_consistency(0, ...)``
  returns ``False``. (Some implementations, e.g. transparency-dev/merkle, accept ``m == 0`` with an
  empty proof; this module deliberately does not.)
* Generators (``root``, ``inclusion_proof``, ``consistency_proof``) raise ``ValueError`` for
  arguments outside their domain; verifiers never raise on any input and return ``False``
  instead, since they handle untrusted data.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
"""``(level, index)``: the perfect subtree of ``2**level`` leaves starting at ``index * 2**level``."""

NewNode = tuple[int, int, bytes]
"""``(level, index, hash)``: one row of ``merkle_nodes``."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the hash of one leaf."""
    return hashlib.sha256(LEAF_PREFIX + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH of raw leaf inputs by the RFC's recursive definition (the brute-force oracle)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = _split(n)
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


# --------------------------------------------------------------------------------------------
# Node sources
# --------------------------------------------------------------------------------------------


@runtime_checkable
class NodeSource(Protocol):
    """Read access to the stored perfect-subtree hashes of one append-only tree."""

    def leaf_count(self) -> int:
        """The number of leaves stored (the largest tree size that can be answered)."""
        ...

    def perfect(self, level: int, index: int) -> bytes:
        """The hash of perfect subtree ``(level, index)``; ``KeyError`` when it is not stored."""
        ...

    def perfect_many(self, keys: list[NodeKey]) -> Mapping[NodeKey, bytes]:
        """The hashes of all ``keys`` at once (one database query); ``KeyError`` if one is missing."""
        ...


def perfect_cover(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees, left to right, that tile the leaf range ``[start, end)``.

    Greedy: at each point take the largest aligned power of two that fits. For a node of the RFC
    tree (``start`` aligned to the power of two above ``end - start``) this is the binary
    decomposition of ``end - start``, and the node's hash is ``fold_cover`` of these subtrees.
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad leaf range [{start}, {end})")
    keys: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def fold_cover(hashes: Sequence[bytes]) -> bytes:
    """The hash of an RFC tree node from the hashes of its ``perfect_cover`` (left to right)."""
    if not hashes:
        raise ValueError("an RFC tree node covers at least one leaf")
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


# --------------------------------------------------------------------------------------------
# Planning: which perfect subtrees each answer needs (pure; no I/O)
# --------------------------------------------------------------------------------------------

Plan = list[tuple[NodeKey, ...]]
"""One entry per output hash: the perfect subtrees (left to right) whose fold is that hash."""


def root_plan(size: int) -> Plan:
    """Keys for the tree head of ``size`` leaves: one entry (empty for size 0)."""
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    return [tuple(perfect_cover(0, size))] if size else []


def inclusion_plan(index: int, size: int) -> Plan:
    """Keys for PATH(index, D[size]) (RFC 9162 §2.1.3.1), in proof order (leaf's sibling first)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    plan: Plan = []
    a, b = 0, size
    while b - a > 1:
        k = _split(b - a)
        if index < a + k:
            plan.append(tuple(perfect_cover(a + k, b)))
            b = a + k
        else:
            plan.append(tuple(perfect_cover(a, a + k)))
            a += k
    plan.reverse()
    return plan


def consistency_plan(m: int, n: int) -> Plan:
    """Keys for PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (RFC 9162 §2.1.4.1), in proof order."""
    if not 0 < m <= n:
        raise ValueError(f"a consistency proof needs 0 < m <= n (m={m}, n={n})")
    plan: Plan = []
    a, b, whole_old_tree = 0, n, True
    while m != b:
        k = _split(b - a)
        if m <= a + k:
            plan.append(tuple(perfect_cover(a + k, b)))
            b = a + k
        else:
            plan.append(tuple(perfect_cover(a, a + k)))
            a += k
            whole_old_tree = False
    if not whole_old_tree:
        plan.append(tuple(perfect_cover(a, b)))  # a perfect subtree: b - a is a power of two
    plan.reverse()
    return plan


def plan_keys(plan: Plan) -> list[NodeKey]:
    """The distinct keys of a plan, in first-use order (what one ``perfect_many`` call reads)."""
    return list(dict.fromkeys(key for entry in plan for key in entry))


def _execute(source: NodeSource, plan: Plan) -> list[bytes]:
    keys = plan_keys(plan)
    if not keys:
        return []
    found = source.perfect_many(keys)
    return [fold_cover([found[key] for key in entry]) for entry in plan]


def _check_size(source: NodeSource, size: int) -> None:
    count = source.leaf_count()
    if size > count:
        raise ValueError(f"tree size {size} exceeds the {count} leaves stored")


# --------------------------------------------------------------------------------------------
# Tree heads and proofs from a NodeSource
# --------------------------------------------------------------------------------------------


def root(source: NodeSource, size: int | None = None) -> bytes:
    """MTH of the first ``size`` leaves (default: all stored leaves), from one ``perfect_many``."""
    if size is None:
        size = source.leaf_count()
    elif size < 0:
        raise ValueError(f"negative tree size {size}")
    else:
        _check_size(source, size)
    if size == 0:
        return EMPTY_ROOT
    return _execute(source, root_plan(size))[0]


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 §2.1.3.1)."""
    plan = inclusion_plan(index, size)
    _check_size(source, size)
    return _execute(source, plan)


def consistency_proof(source: NodeSource, m: int, n: int) -> list[bytes]:
    """The proof that the tree of ``m`` leaves is a prefix of the tree of ``n`` (§2.1.4.1).

    ``m == n`` gives the empty proof; ``m == 0`` raises ``ValueError`` (see the module docstring).
    """
    plan = consistency_plan(m, n)
    _check_size(source, n)
    return _execute(source, plan)


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2, step by step)
# --------------------------------------------------------------------------------------------


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview) and len(value) == HASH_SIZE


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hash_list(proof: object) -> list[bytes] | None:
    """The proof as a list of 32-byte hashes, or None when it is anything else."""
    if not isinstance(proof, Sequence) or isinstance(proof, bytes | bytearray | str):
        return None
    if not all(_is_hash(h) for h in proof):
        return None
    return [bytes(h) for h in proof]


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """True iff ``proof`` shows the leaf with hash ``leaf_hash`` at ``index`` in the tree of
    ``size`` leaves whose head is ``root`` (RFC 9162 §2.1.3.2). Never raises."""
    path = _hash_list(proof)
    if path is None or not (_is_int(index) and _is_int(size) and _is_hash(leaf_hash)
                            and _is_hash(root)):
        return False
    # 1. If leaf_index is greater than or equal to tree_size, fail.
    if not 0 <= index < size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.  3. Set r to hash.
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    # 4. For each value p in the inclusion_path array:
    for p in path:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn:
        if fn & 1 or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, r)
            # ii. If LSB(fn) is not set, right-shift fn and sn equally until LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise: set r to HASH(0x01 || r || p).
            r = node_hash(r, p)
        # c. Right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Succeed iff sn is 0 and r equals root_hash.
    return sn == 0 and hmac.compare_digest(r, bytes(root))


def verify_consistency(m: int, n: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """True iff ``proof`` shows the tree of ``m`` leaves with head ``old_root`` is a prefix of the
    tree of ``n`` leaves with head ``new_root`` (RFC 9162 §2.1.4.2). Never raises.

    ``m == n``: true iff the proof is empty and the roots are equal. ``m == 0``: always false (no
    proof is defined for an empty old tree; see the module docstring).
    """
    path = _hash_list(proof)
    if path is None or not (_is_int(m) and _is_int(n) and _is_hash(old_root)
                            and _is_hash(new_root)):
        return False
    first_hash, second_hash = bytes(old_root), bytes(new_root)
    if not 0 < m <= n:
        return False
    if m == n:
        return not path and hmac.compare_digest(first_hash, second_hash)
    # 1. If consistency_path is an empty array, stop and fail.
    if not path:
        return False
    # 2. If first is an exact power of 2, prepend first_hash to consistency_path.
    if m & (m - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = m - 1, n - 1
    # 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in consistency_path.
    fr = sr = path[0]
    # 6. For each subsequent value c in consistency_path:
    for c in path[1:]:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn:
        if fn & 1 or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr).  ii. Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. If LSB(fn) is not set, right-shift fn and sn equally until LSB(fn) is set or
            #      fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise: set sr to HASH(0x01 || sr || c).
            sr = node_hash(sr, c)
        # c. Right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Succeed iff fr equals first_hash, sr equals second_hash and sn is 0.
    return (sn == 0 and hmac.compare_digest(fr, first_hash)
            and hmac.compare_digest(sr, second_hash))


# --------------------------------------------------------------------------------------------
# Appending
# --------------------------------------------------------------------------------------------


def append_sibling_keys(size: int) -> list[NodeKey]:
    """The stored subtrees that appending leaf ``size`` (to a tree of ``size`` leaves) merges
    with, lowest first: one per trailing 1-bit of ``size``."""
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    trailing_ones = (size ^ (size + 1)).bit_length() - 1
    return [(level, (size >> level) - 1) for level in range(trailing_ones)]


def new_nodes_after_append(source: NodeSource, new_leaf_hash: bytes) -> list[NewNode]:
    """The rows that appending ``new_leaf_hash`` to ``source`` creates, lowest level first.

    The first is the leaf itself ``(0, n, new_leaf_hash)``; each further one is a perfect subtree
    the new leaf completes. Reads the (at most log n, on average one) left siblings with one
    ``perfect_many`` call and writes nothing: the caller stores the returned rows, in the same
    transaction as the record the leaf stands for.
    """
    if not _is_hash(new_leaf_hash):
        raise ValueError("a leaf hash is 32 bytes")
    size = source.leaf_count()
    keys = append_sibling_keys(size)
    siblings = source.perfect_many(keys) if keys else {}
    h = bytes(new_leaf_hash)
    created: list[NewNode] = [(0, size, h)]
    for level, index in keys:
        h = node_hash(siblings[(level, index)], h)
        created.append((level + 1, index >> 1, h))
    return created


class MemoryNodes:
    """An in-memory ``NodeSource``: every perfect subtree hash, kept up to date on ``append``."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MemoryNodes:
        """A tree of raw leaf inputs (each is hashed with ``leaf_hash``)."""
        return cls(leaf_hash(d) for d in leaves)

    def leaf_count(self) -> int:
        return len(self._levels[0])

    def __len__(self) -> int:
        return self.leaf_count()

    def perfect(self, level: int, index: int) -> bytes:
        if level < 0 or index < 0 or level >= len(self._levels) or index >= len(self._levels[level]):
            raise KeyError((level, index))
        return self._levels[level][index]

    def perfect_many(self, keys: list[NodeKey]) -> dict[NodeKey, bytes]:
        return {key: self.perfect(*key) for key in keys}

    def append(self, leaf_hash: bytes) -> list[NewNode]:
        """Add one leaf hash; returns the rows it created (see ``new_nodes_after_append``)."""
        created = new_nodes_after_append(self, leaf_hash)
        for level, index, h in created:
            if level == len(self._levels):
                self._levels.append([])
            row = self._levels[level]
            if index != len(row):  # cannot happen: nodes complete strictly left to right
                raise AssertionError(f"node ({level}, {index}) completed out of order")
            row.append(h)
        return created

    def nodes(self) -> Iterator[NewNode]:
        """Every stored ``(level, index, hash)``, level by level."""
        for level, row in enumerate(self._levels):
            for index, h in enumerate(row):
                yield level, index, h
