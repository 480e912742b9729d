"""RFC 9162 §2.1 Merkle tree (audit/merkle.py): published vectors, brute force, read counts.

Published vectors (the reference tree of 8 leaves, its roots, paths and consistency proofs) come from
the Certificate Transparency reference implementations, which carry identical values:

* google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc (kInputs, kSHA256Roots,
  kSHA256Paths, kSHA256Proofs);
* transparency-dev/merkle, proof/verify_test.go (leaves, roots, inclusionProofs,
  consistencyProofs; adds the 6 -> 7 consistency proof), mirrored in testdata/consistency/*.json.

Both number leaves from 1 in their path vectors; below they are converted to 0-based indices.
The node-id vectors (which stored subtrees a proof is made of) come from transparency-dev/merkle,
proof/proof_test.go (TestInclusion, TestConsistency); see the comment above INCLUSION_NODE_IDS.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.merkle import (
    EMPTY_ROOT,
    MemoryNodes,
    NodeKey,
    NodeSource,
    Plan,
    append_sibling_keys,
    consistency_plan,
    consistency_proof,
    fold_cover,
    inclusion_plan,
    inclusion_proof,
    leaf_hash,
    new_nodes_after_append,
    node_hash,
    perfect_cover,
    plan_keys,
    reference_root,
    root,
    root_plan,
    verify_consistency,
    verify_inclusion,
)


def h(hex_digest: str) -> bytes:
    return bytes.fromhex(hex_digest)


LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]

ROOTS = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]

SHA256_EMPTY = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")

# (0-based leaf index, tree size, audit path)
INCLUSION_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (0, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
]

# (old size, new size, consistency proof)
CONSISTENCY_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (1, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]


# ---------------------------------------------------------------------------------------------
# Brute-force oracles: the RFC 9162 recursive definitions over raw leaf inputs
# ---------------------------------------------------------------------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D_n), RFC 9162 §2.1.3.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_root(leaves[:k])]


def reference_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D_n, b), RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if whole else [reference_root(leaves)]
    k = _k(n)
    if m <= k:
        return [*reference_subproof(m, leaves[:k], whole), reference_root(leaves[k:])]
    return [*reference_subproof(m - k, leaves[k:], False), reference_root(leaves[:k])]


# ---------------------------------------------------------------------------------------------
# Corruptions, after the probes of the reference verifiers' own tests
# ---------------------------------------------------------------------------------------------


def flip(b: bytes, byte: int = 0, bit: int = 3) -> bytes:
    out = bytearray(b)
    out[byte] ^= 1 << bit
    return bytes(out)


def inclusion_probes(lh: bytes, index: int, size: int, proof: list[bytes],
                     rt: bytes) -> list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    probes = [
        ("index - 1", (lh, index - 1, size, proof, rt)),
        ("index + 1", (lh, index + 1, size, proof, rt)),
        ("index ^ 2", (lh, index ^ 2, size, proof, rt)),
        ("size * 2", (lh, index, size * 2, proof, rt)),
        ("size // 2", (lh, index, size // 2, proof, rt)),
        ("wrong leaf", (leaf_hash(b"WrongLeaf"), index, size, proof, rt)),
        ("flipped leaf", (flip(lh), index, size, proof, rt)),
        ("empty root", (lh, index, size, proof, SHA256_EMPTY)),
        ("random root", (lh, index, size, proof, SOME_HASH)),
        ("flipped root", (lh, index, size, proof, flip(rt, 31, 0))),
        ("trailing root", (lh, index, size, [*proof, rt], rt)),
        ("trailing hash", (lh, index, size, [*proof, SOME_HASH], rt)),
        ("preceding root", (lh, index, size, [rt, *proof], rt)),
        ("preceding hash", (lh, index, size, [SOME_HASH, *proof], rt)),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i])
        probes.append((f"proof[{i}] flipped", (lh, index, size, bad, rt)))
        bad = list(proof)
        bad[i] = SHA256_EMPTY
        probes.append((f"proof[{i}] replaced", (lh, index, size, bad, rt)))
    if proof:
        probes.append(("truncated", (lh, index, size, proof[:-1], rt)))
    if len(proof) > 1:
        probes.append(("inserted", (lh, index, size, [proof[0], SOME_HASH, *proof[1:]], rt)))
        probes.append(("swapped", (lh, index, size, [proof[1], proof[0], *proof[2:]], rt)))
    return probes


def consistency_probes(m: int, n: int, r1: bytes, r2: bytes, proof: list[bytes]
                       ) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    probes = [
        ("m - 1", (m - 1, n, r1, r2, proof)),
        ("m + 1", (m + 1, n, r1, r2, proof)),
        ("m ^ 2", (m ^ 2, n, r1, r2, proof)),
        ("n * 2", (m, n * 2, r1, r2, proof)),
        ("n // 2", (m, n // 2, r1, r2, proof)),
        ("flipped old root", (m, n, flip(r1), r2, proof)),
        ("flipped new root", (m, n, r1, flip(r2), proof)),
        ("swapped roots", (m, n, r2, r1, proof)),
        ("empty proof", (m, n, r1, r2, [])),
        ("trailing old root", (m, n, r1, r2, [*proof, r1])),
        ("trailing new root", (m, n, r1, r2, [*proof, r2])),
        ("trailing hash", (m, n, r1, r2, [*proof, SOME_HASH])),
        ("preceding old root", (m, n, r1, r2, [r1, *proof])),
        ("preceding new root", (m, n, r1, r2, [r2, *proof])),
        ("preceding proof[0]", (m, n, r1, r2, [proof[0], *proof])),
        ("truncated", (m, n, r1, r2, proof[:-1])),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i], bit=4)
        probes.append((f"proof[{i}] flipped", (m, n, r1, r2, bad)))
    if len(proof) > 1:
        probes.append(("swapped", (m, n, r1, r2, [proof[1], proof[0], *proof[2:]])))
    return probes


def assert_inclusion_sound(lh: bytes, index: int, size: int, proof: list[bytes], rt: bytes) -> None:
    assert verify_inclusion(lh, index, size, proof, rt)
    accepted = [desc for desc, args in inclusion_probes(lh, index, size, proof, rt)
                if verify_inclusion(*args)]
    assert accepted == [], f"({index}, {size}) also verified: {accepted}"


def assert_consistency_sound(m: int, n: int, r1: bytes, r2: bytes, proof: list[bytes]) -> None:
    assert verify_consistency(m, n, r1, r2, proof)
    if m == n:
        assert not verify_consistency(m, n, r1, r2, [r1])
        return
    accepted = [desc for desc, args in consistency_probes(m, n, r1, r2, proof)
                if verify_consistency(*args)]
    assert accepted == [], f"({m}, {n}) also verified: {accepted}"


# ---------------------------------------------------------------------------------------------
# Published vectors
# ---------------------------------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert EMPTY_ROOT == SHA256_EMPTY == hashlib.sha256(b"").digest()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert leaf_hash(LEAVES[0]) == ROOTS[0]


def test_published_roots_for_sizes_1_to_8() -> None:
    tree = MemoryNodes()
    assert root(tree) == EMPTY_ROOT
    for i, data in enumerate(LEAVES):
        tree.append(leaf_hash(data))
        assert root(tree) == ROOTS[i]
        for size in range(1, i + 2):  # every past head is still answered
            assert root(tree, size) == ROOTS[size - 1]
        assert root(tree, 0) == EMPTY_ROOT
    for size in range(1, 9):
        assert reference_root(LEAVES[:size]) == ROOTS[size - 1]
    assert reference_root([]) == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_VECTORS,
                         ids=[f"{i}-of-{n}" for i, n, _ in INCLUSION_VECTORS])
def test_published_inclusion_proofs(index: int, size: int, expected: list[bytes]) -> None:
    tree = MemoryNodes.from_leaves(LEAVES)
    assert inclusion_proof(tree, index, size) == expected
    assert reference_path(index, LEAVES[:size]) == expected
    assert_inclusion_sound(leaf_hash(LEAVES[index]), index, size, expected, ROOTS[size - 1])


@pytest.mark.parametrize(("m", "n", "expected"), CONSISTENCY_VECTORS,
                         ids=[f"{m}-to-{n}" for m, n, _ in CONSISTENCY_VECTORS])
def test_published_consistency_proofs(m: int, n: int, expected: list[bytes]) -> None:
    tree = MemoryNodes.from_leaves(LEAVES)
    assert consistency_proof(tree, m, n) == expected
    assert reference_subproof(m, LEAVES[:n], True) == expected
    assert_consistency_sound(m, n, ROOTS[m - 1], ROOTS[n - 1], expected)


# transparency-dev/merkle proof/proof_test.go lists, per proof, the stored node ids (level, index)
# it is built from; a run of ids marked "rehash(begin, end)" is hashed into one proof element,
# listed there bottom-up. Here each proof element is the tuple of perfect subtrees whose fold is
# that element, left to right, so a rehash run appears reversed.
INCLUSION_NODE_IDS: list[tuple[int, int, Plan]] = [
    (0, 1, []),
    (0, 2, [((0, 1),)]),
    (1, 2, [((0, 0),)]),
    (1, 3, [((0, 0),), ((0, 2),)]),
    (0, 7, [((0, 1),), ((1, 1),), ((1, 2), (0, 6))]),
    (1, 7, [((0, 0),), ((1, 1),), ((1, 2), (0, 6))]),
    (2, 7, [((0, 3),), ((1, 0),), ((1, 2), (0, 6))]),
    (3, 7, [((0, 2),), ((1, 0),), ((1, 2), (0, 6))]),
    (4, 7, [((0, 5),), ((0, 6),), ((2, 0),)]),
    (5, 7, [((0, 4),), ((0, 6),), ((2, 0),)]),
    (6, 7, [((1, 2),), ((2, 0),)]),
    (2, 4, [((0, 3),), ((1, 0),)]),
    (3, 5, [((0, 2),), ((1, 0),), ((0, 4),)]),
    (3, 6, [((0, 2),), ((1, 0),), ((1, 2),)]),
    (4, 6, [((0, 5),), ((2, 0),)]),
    (10, 15, [((0, 11),), ((1, 4),), ((1, 6), (0, 14)), ((3, 0),)]),
    (24, 31, [((0, 25),), ((1, 13),), ((1, 14), (0, 30)), ((3, 2),), ((4, 0),)]),
    (81, 95, [((0, 80),), ((1, 41),), ((2, 21),), ((2, 22), (1, 46), (0, 94)), ((4, 4),),
              ((6, 0),)]),
]

CONSISTENCY_NODE_IDS: list[tuple[int, int, Plan]] = [
    (1, 2, [((0, 1),)]),
    (1, 4, [((0, 1),), ((1, 1),)]),
    (1, 6, [((0, 1),), ((1, 1),), ((1, 2),)]),
    (2, 3, [((0, 2),)]),
    (2, 8, [((1, 1),), ((2, 1),)]),
    (3, 7, [((0, 2),), ((0, 3),), ((1, 0),), ((1, 2), (0, 6))]),
    (4, 7, [((1, 2), (0, 6))]),
    (5, 7, [((0, 4),), ((0, 5),), ((0, 6),), ((2, 0),)]),
    (6, 7, [((1, 2),), ((0, 6),), ((2, 0),)]),
    (7, 8, [((0, 6),), ((0, 7),), ((1, 2),), ((2, 0),)]),
    *[(s, s, []) for s in (1, 2, 3, 4, 5, 7, 8)],
    (2, 4, [((1, 1),)]),
    (3, 5, [((0, 2),), ((0, 3),), ((1, 0),), ((0, 4),)]),
    (3, 6, [((0, 2),), ((0, 3),), ((1, 0),), ((1, 2),)]),
    (4, 6, [((1, 2),)]),
    (1, 7, [((0, 1),), ((1, 1),), ((1, 2), (0, 6))]),
    (10, 15, [((1, 4),), ((1, 5),), ((1, 6), (0, 14)), ((3, 0),)]),
    (24, 31, [((3, 2),), ((2, 6), (1, 14), (0, 30)), ((4, 0),)]),
    (81, 95, [((0, 80),), ((0, 81),), ((1, 41),), ((2, 21),), ((2, 22), (1, 46), (0, 94)),
              ((4, 4),), ((6, 0),)]),
]


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_NODE_IDS,
                         ids=[f"{i}-of-{n}" for i, n, _ in INCLUSION_NODE_IDS])
def test_inclusion_reads_the_published_node_ids(index: int, size: int, expected: Plan) -> None:
    assert inclusion_plan(index, size) == expected


@pytest.mark.parametrize(("m", "n", "expected"), CONSISTENCY_NODE_IDS,
                         ids=[f"{m}-to-{n}" for m, n, _ in CONSISTENCY_NODE_IDS])
def test_consistency_reads_the_published_node_ids(m: int, n: int, expected: Plan) -> None:
    assert consistency_plan(m, n) == expected


# ---------------------------------------------------------------------------------------------
# Edge cases and argument checking
# ---------------------------------------------------------------------------------------------


def test_verifiers_reject_out_of_range_and_malformed_input() -> None:
    lh = leaf_hash(b"data")
    # A one-leaf tree: the root is the leaf hash and the path is empty.
    assert verify_inclusion(lh, 0, 1, [], lh)
    assert not verify_inclusion(lh, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], lh)
    assert not verify_inclusion(lh, 0, 1, b"", lh)  # type: ignore[arg-type]  # not a list of hashes
    assert not verify_inclusion(lh, 0, 1, [b"\x00" * 31], lh)
    assert not verify_inclusion(lh, True, 2, [lh], lh)
    for index, size in ((0, 0), (1, 0), (2, 1), (1, 1), (-1, 1), (0, -1)):
        assert not verify_inclusion(SOME_HASH, index, size, [], SHA256_EMPTY)
        assert not verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)

    # Equal sizes: empty proof and equal roots, nothing else.
    assert verify_consistency(1, 1, SOME_HASH, SOME_HASH, [])
    assert verify_consistency(5, 5, ROOTS[4], ROOTS[4], [])
    assert not verify_consistency(1, 1, SOME_HASH, SHA256_EMPTY, [])
    assert not verify_consistency(1, 1, SOME_HASH, SOME_HASH, [SHA256_EMPTY])
    # m == 0 has no proof (module docstring): always false, whatever is offered.
    for n, r2 in ((0, SHA256_EMPTY), (1, ROOTS[0]), (8, ROOTS[7])):
        assert not verify_consistency(0, n, SHA256_EMPTY, r2, [])
        assert not verify_consistency(0, n, SHA256_EMPTY, r2, [SHA256_EMPTY])
    # Time travel, an empty proof for distinct sizes, malformed hashes.
    assert not verify_consistency(1, 0, ROOTS[0], SHA256_EMPTY, [])
    assert not verify_consistency(2, 1, ROOTS[1], ROOTS[0], [])
    assert not verify_consistency(1, 2, ROOTS[0], ROOTS[1], [])
    assert not verify_consistency(1, 2, ROOTS[0], ROOTS[1], [leaf_hash(LEAVES[1])[:31]])
    assert not verify_consistency(1, 2, ROOTS[0], b"WrongRoot", [leaf_hash(LEAVES[1])])
    assert verify_consistency(1, 2, ROOTS[0], ROOTS[1], [leaf_hash(LEAVES[1])])


def test_generators_refuse_arguments_outside_their_domain() -> None:
    tree = MemoryNodes.from_leaves(LEAVES)
    assert consistency_proof(tree, 8, 8) == []
    assert consistency_proof(tree, 3, 3) == []
    with pytest.raises(ValueError, match="0 < m"):
        consistency_proof(tree, 0, 5)
    with pytest.raises(ValueError):
        consistency_proof(tree, 6, 5)
    with pytest.raises(ValueError, match="exceeds"):
        consistency_proof(tree, 3, 9)
    with pytest.raises(ValueError):
        inclusion_proof(tree, 0, 0)
    with pytest.raises(ValueError):
        inclusion_proof(tree, 5, 5)
    with pytest.raises(ValueError):
        inclusion_proof(tree, -1, 5)
    with pytest.raises(ValueError, match="exceeds"):
        inclusion_proof(tree, 0, 9)
    with pytest.raises(ValueError, match="exceeds"):
        root(tree, 9)
    with pytest.raises(ValueError):
        root(tree, -1)
    with pytest.raises(ValueError):
        tree.append(b"short")
    with pytest.raises(KeyError):
        tree.perfect(3, 1)  # leaves 8..15 are not there yet
    with pytest.raises(KeyError):
        tree.perfect(4, 0)
    assert isinstance(tree, NodeSource)


def test_perfect_cover_is_the_binary_decomposition() -> None:
    assert perfect_cover(0, 0) == []
    assert perfect_cover(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_cover(88, 95) == [(2, 22), (1, 46), (0, 94)]
    assert perfect_cover(3, 8) == [(0, 3), (2, 1)]  # unaligned start: still a tiling
    assert root_plan(0) == []
    assert root_plan(13) == [((3, 0), (2, 2), (0, 12))]
    with pytest.raises(ValueError):
        fold_cover([])


# ---------------------------------------------------------------------------------------------
# Brute force: every size, index and prefix of small trees, and random trees up to 200 leaves
# ---------------------------------------------------------------------------------------------

SMALL = 40
SMALL_LEAVES = [b"leaf-%d" % i for i in range(SMALL)]


def test_exhaustive_small_trees_against_the_rfc_recursions() -> None:
    tree = MemoryNodes.from_leaves(SMALL_LEAVES)
    roots = [reference_root(SMALL_LEAVES[:n]) for n in range(SMALL + 1)]
    for n in range(1, SMALL + 1):
        assert root(tree, n) == roots[n]
        for i in range(n):
            proof = inclusion_proof(tree, i, n)
            assert proof == reference_path(i, SMALL_LEAVES[:n])
            assert_inclusion_sound(leaf_hash(SMALL_LEAVES[i]), i, n, proof, roots[n])
        for m in range(1, n + 1):
            proof = consistency_proof(tree, m, n)
            assert proof == reference_subproof(m, SMALL_LEAVES[:n], True)
            assert_consistency_sound(m, n, roots[m], roots[n], proof)


def test_proof_sizes_are_logarithmic() -> None:
    for n in range(1, 300):
        bits = (n - 1).bit_length()  # ceil(log2 n)
        for i in range(n):
            plan = inclusion_plan(i, n)
            assert len(plan) <= bits
            assert len(plan_keys(plan)) <= 2 * bits
        for m in range(1, n + 1):
            plan = consistency_plan(m, n)
            assert len(plan) <= bits + 1
            assert len(plan_keys(plan)) <= 2 * bits + 1


leaf_lists = st.lists(st.binary(max_size=12), max_size=200)
unique_leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=200, unique=True)


@settings(max_examples=40, deadline=None)
@given(leaf_lists)
def test_root_of_every_prefix_matches_the_reference(leaves: list[bytes]) -> None:
    tree = MemoryNodes.from_leaves(leaves)
    for k in range(len(leaves) + 1):
        assert root(tree, k) == reference_root(leaves[:k])


@settings(max_examples=60, deadline=None)
@given(unique_leaf_lists, st.data())
def test_inclusion_proofs_match_the_reference_and_resist_tampering(
        leaves: list[bytes], data: st.DataObject) -> None:
    tree = MemoryNodes.from_leaves(leaves)
    for _ in range(8):
        size = data.draw(st.integers(1, len(leaves)), label="size")
        index = data.draw(st.integers(0, size - 1), label="index")
        proof = inclusion_proof(tree, index, size)
        assert proof == reference_path(index, leaves[:size])
        rt = root(tree, size)
        lh = leaf_hash(leaves[index])
        assert_inclusion_sound(lh, index, size, proof, rt)
        other = data.draw(st.integers(0, size - 1), label="other leaf")
        if other != index:  # another leaf's hash at this index (leaves are unique)
            assert not verify_inclusion(leaf_hash(leaves[other]), index, size, proof, rt)


@settings(max_examples=60, deadline=None)
@given(unique_leaf_lists, st.data())
def test_consistency_proofs_match_the_reference_and_resist_tampering(
        leaves: list[bytes], data: st.DataObject) -> None:
    tree = MemoryNodes.from_leaves(leaves)
    for _ in range(8):
        n = data.draw(st.integers(1, len(leaves)), label="n")
        m = data.draw(st.integers(1, n), label="m")
        proof = consistency_proof(tree, m, n)
        assert proof == reference_subproof(m, leaves[:n], True)
        assert_consistency_sound(m, n, root(tree, m), root(tree, n), proof)


def perfect_from_scratch(leaves: Sequence[bytes]) -> dict[NodeKey, bytes]:
    out: dict[NodeKey, bytes] = {}
    level = 0
    while (1 << level) <= len(leaves):
        width = 1 << level
        for index in range(len(leaves) // width):
            out[(level, index)] = reference_root(leaves[index * width:(index + 1) * width])
        level += 1
    return out


@settings(max_examples=40, deadline=None)
@given(leaf_lists)
def test_incremental_nodes_equal_nodes_from_scratch(leaves: list[bytes]) -> None:
    tree = MemoryNodes()
    appended: list[tuple[int, int, bytes]] = []
    for n, data in enumerate(leaves):
        created = tree.append(leaf_hash(data))
        assert created[0] == (0, n, leaf_hash(data))
        assert [(lv, ix) for lv, ix, _ in created[1:]] == [
            (lv + 1, ix >> 1) for lv, ix in append_sibling_keys(n)]
        appended += created
    expected = perfect_from_scratch(leaves)
    assert {(lv, ix): hh for lv, ix, hh in tree.nodes()} == expected
    assert {(lv, ix): hh for lv, ix, hh in appended} == expected
    assert len(appended) == len(expected) == 2 * len(leaves) - bin(len(leaves)).count("1")


class TableNodes:
    """What a database-backed source does: rows (level, idx) -> hash, one query per read."""

    def __init__(self) -> None:
        self.rows: dict[NodeKey, bytes] = {}
        self.queries = 0

    def leaf_count(self) -> int:
        return sum(1 for level, _ in self.rows if level == 0)

    def perfect(self, level: int, index: int) -> bytes:
        return self.perfect_many([(level, index)])[(level, index)]

    def perfect_many(self, keys: list[NodeKey]) -> dict[NodeKey, bytes]:
        self.queries += 1
        return {key: self.rows[key] for key in keys}


def test_a_table_filled_by_new_nodes_after_append_answers_like_memory() -> None:
    table = TableNodes()
    memory = MemoryNodes()
    for i in range(100):
        lh = leaf_hash(b"record-%d" % i)
        before = table.queries
        rows = new_nodes_after_append(table, lh)
        assert table.queries - before == (1 if append_sibling_keys(i) else 0)
        for level, index, hh in rows:  # the INSERTs of the record's transaction
            assert (level, index) not in table.rows
            table.rows[(level, index)] = hh
        assert rows == memory.append(lh)
    for n in range(1, 101):
        before = table.queries
        assert root(table, n) == root(memory, n)
        assert inclusion_proof(table, n // 3, n) == inclusion_proof(memory, n // 3, n)
        assert consistency_proof(table, max(1, n // 2), n) == consistency_proof(memory, max(1, n // 2), n)
        assert table.queries - before <= 3  # one query per answer


# ---------------------------------------------------------------------------------------------
# Node reads at a million leaves, without a million leaves
# ---------------------------------------------------------------------------------------------


class SyntheticNodes:
    """A NodeSource for a tree of ``size`` leaves whose hashes are made up from (level, index),
    counting every read. Refuses any key that is not a complete perfect subtree."""

    def __init__(self, size: int, make: Callable[[int, int], bytes]) -> None:
        self.size = size
        self.make = make
        self.single_reads = 0
        self.many_calls = 0
        self.keys_read = 0

    def _get(self, level: int, index: int) -> bytes:
        if level < 0 or index < 0 or (index + 1) << level > self.size:
            raise KeyError((level, index))
        return self.make(level, index)

    def leaf_count(self) -> int:
        return self.size

    def perfect(self, level: int, index: int) -> bytes:
        self.single_reads += 1
        return self._get(level, index)

    def perfect_many(self, keys: list[NodeKey]) -> dict[NodeKey, bytes]:
        self.many_calls += 1
        self.keys_read += len(keys)
        assert len(set(keys)) == len(keys), "a key was requested twice"
        return {key: self._get(*key) for key in keys}

    def reads(self) -> int:
        return self.single_reads + self.keys_read


def arbitrary(level: int, index: int) -> bytes:
    return hashlib.sha256(b"synthetic %d %d" % (level, index)).digest()


_UNIFORM = [leaf_hash(b"same")]
for _ in range(64):
    _UNIFORM.append(node_hash(_UNIFORM[-1], _UNIFORM[-1]))


def uniform(level: int, index: int) -> bytes:
    """A consistent tree (every leaf the same), so its proofs verify."""
    return _UNIFORM[level]


BIG = 1_000_003
LOG2 = math.ceil(math.log2(BIG))  # 20


@pytest.mark.parametrize("index", [0, 1, 524_287, 524_288, 999_999, BIG - 2, BIG - 1])
def test_inclusion_proof_at_a_million_leaves_reads_few_nodes_in_one_call(index: int) -> None:
    src = SyntheticNodes(BIG, arbitrary)
    proof = inclusion_proof(src, index, BIG)
    assert src.many_calls == 1 and src.single_reads == 0
    assert src.reads() <= 2 * LOG2 + 2
    plan = inclusion_plan(index, BIG)
    assert proof == [fold_cover([arbitrary(*key) for key in entry]) for entry in plan]
    consistent = SyntheticNodes(BIG, uniform)
    proof = inclusion_proof(consistent, index, BIG)
    rt = root(consistent, BIG)
    assert consistent.many_calls == 2 and consistent.reads() <= 2 * LOG2 + 2 + LOG2
    assert verify_inclusion(uniform(0, index), index, BIG, proof, rt)
    assert not verify_inclusion(uniform(0, index), index, BIG, proof, flip(rt))


@pytest.mark.parametrize("m", [1, 2, 3, 65_537, 524_288, 524_289, 999_999, BIG - 1, BIG])
def test_consistency_proof_at_a_million_leaves_reads_few_nodes_in_one_call(m: int) -> None:
    src = SyntheticNodes(BIG, arbitrary)
    consistency_proof(src, m, BIG)
    assert src.many_calls <= 1 and src.single_reads == 0
    assert src.reads() <= 2 * LOG2 + 2
    consistent = SyntheticNodes(BIG, uniform)
    proof = consistency_proof(consistent, m, BIG)
    assert verify_consistency(m, BIG, root(consistent, m), root(consistent, BIG), proof)


def test_tree_head_at_a_million_leaves_reads_popcount_nodes() -> None:
    src = SyntheticNodes(BIG, arbitrary)
    root(src, BIG)
    assert src.many_calls == 1 and src.reads() == bin(BIG).count("1") <= LOG2


def test_append_at_a_million_leaves_reads_only_the_completed_siblings() -> None:
    src = SyntheticNodes(2**20 - 1, uniform)  # the worst case: the new leaf completes 20 levels
    rows = new_nodes_after_append(src, uniform(0, 0))
    assert src.many_calls == 1 and src.reads() == 20
    assert rows[-1] == (20, 0, uniform(20, 0))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**40), st.data())
def test_reads_stay_logarithmic_for_any_size(n: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, n - 1), label="index")
    m = data.draw(st.integers(1, n), label="m")
    bits = (n - 1).bit_length()
    src = SyntheticNodes(n, arbitrary)
    inclusion_proof(src, index, n)
    consistency_proof(src, m, n)
    root(src, n)
    assert src.single_reads == 0 and src.many_calls <= 3
    assert src.keys_read <= (2 * bits) + (2 * bits + 1) + (bits + 1)
