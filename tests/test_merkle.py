"""The RFC 9162 tree against a naive, literal transcription of the RFC written here.

``_mth``, ``_path`` and ``_proof`` follow RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1 word for
word (recursive, O(n) per call); the library's frontier, stored-node proofs and verifiers must agree
with them for every small tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starter_ledger.errors import ProofError
from starter_ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    NodeCoord,
    NodeReader,
    consistency_proof,
    frontier_coords,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

MAX_PROOF_SIZE = 40


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.1: the Merkle Tree Hash of a list of entries."""
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + d[0])
    k = _k(n)
    return _sha(b"\x01" + _mth(d[:k]) + _mth(d[k:]))


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1: PATH(m, D[n]), the inclusion proof of entry m."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [_mth(d)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


def _proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.4.1: PROOF(m, D[n]), the consistency proof from size m."""
    return _subproof(m, d, True)


def _entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def _perfect_subtrees(n: int) -> dict[NodeCoord, bytes]:
    """Every perfect subtree of a tree over ``_entries(n)``, computed naively."""
    d = _entries(n)
    out: dict[NodeCoord, bytes] = {}
    level = 0
    while (1 << level) <= n:
        width = 1 << level
        for index in range(n // width):
            out[(level, index)] = _mth(d[index * width : (index + 1) * width])
        level += 1
    return out


@pytest.fixture(scope="module")
def stored_nodes() -> dict[NodeCoord, bytes]:
    """The nodes an appender stores for a tree of MAX_PROOF_SIZE entries."""
    frontier = Frontier()
    nodes: dict[NodeCoord, bytes] = {}
    for entry in _entries(MAX_PROOF_SIZE):
        for level, index, h in frontier.append(leaf_hash(entry)):
            nodes[(level, index)] = h
    return nodes


def _reader(nodes: dict[NodeCoord, bytes], size: int) -> NodeReader:
    """A dict-backed NodeReader that refuses any node outside the tree of ``size`` leaves."""

    def read(coords: Sequence[NodeCoord]) -> list[bytes]:
        for level, index in coords:
            assert (index + 1) << level <= size, f"read node {(level, index)} beyond size {size}"
        return [nodes[c] for c in coords]

    return read


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 0x01]) + h[1:]


# -- roots ---------------------------------------------------------------------------------------


def test_hash_primitives_follow_rfc9162() -> None:
    """Leaf and node hashes use the RFC 9162 domain-separation prefixes 0x00 and 0x01."""
    assert leaf_hash(b"abc") == _sha(b"\x00abc")
    assert node_hash(b"L" * 32, b"R" * 32) == _sha(b"\x01" + b"L" * 32 + b"R" * 32)
    assert _sha(b"") == EMPTY_ROOT


def test_frontier_root_matches_naive_mth() -> None:
    """The O(log n) frontier computes the RFC 9162 root for every size from 0 to 130."""
    d = _entries(130)
    frontier = Frontier()
    assert frontier.root() == _mth([]) == EMPTY_ROOT
    for n in range(1, 131):
        frontier.append(leaf_hash(d[n - 1]))
        assert frontier.size == n
        assert len(frontier.hashes) == n.bit_count()
        assert frontier.root() == _mth(d[:n]), f"root differs at size {n}"
        assert root_from_leaves([leaf_hash(x) for x in d[:n]]) == _mth(d[:n])


def test_frontier_rebuilt_from_stored_nodes_has_the_same_root(
    stored_nodes: dict[NodeCoord, bytes],
) -> None:
    """A frontier loaded from the stored nodes at frontier_coords gives the tree's root."""
    d = _entries(MAX_PROOF_SIZE)
    for n in range(MAX_PROOF_SIZE + 1):
        coords = frontier_coords(n)
        assert sum(1 << level for level, _ in coords) == n
        frontier = Frontier(n, [stored_nodes[c] for c in coords])
        assert frontier.root() == _mth(d[:n])
        assert frontier.copy().root() == frontier.root()


def test_frontier_refuses_a_wrong_number_of_hashes() -> None:
    """A frontier whose hash count does not match its size is refused at construction."""
    with pytest.raises(ValueError, match="hashes"):
        Frontier(3, [b"\x00" * 32])


def test_append_returns_exactly_the_naive_nodes() -> None:
    """Each append reports exactly the perfect subtrees it completes, leaf first, with their MTH."""
    d = _entries(130)
    frontier = Frontier()
    seen: dict[NodeCoord, bytes] = {}
    for i, entry in enumerate(d):
        created = frontier.append(leaf_hash(entry))
        expected = []
        level = 0
        while (i + 1) % (1 << level) == 0:
            width = 1 << level
            index = (i + 1) // width - 1
            expected.append((level, index, _mth(d[index * width : (index + 1) * width])))
            level += 1
        assert created == expected, f"append of leaf {i}"
        for level, index, h in created:
            assert (level, index) not in seen, "a node was produced twice"
            seen[(level, index)] = h
    assert seen == _perfect_subtrees(130)


def test_copy_is_independent() -> None:
    """Appending to a frontier's copy leaves the original untouched."""
    f = Frontier()
    f.append(leaf_hash(b"a"))
    g = f.copy()
    g.append(leaf_hash(b"b"))
    assert f.size == 1
    assert f.root() == _mth([b"a"])


# -- inclusion -----------------------------------------------------------------------------------


def test_inclusion_proofs_match_naive_and_verify(stored_nodes: dict[NodeCoord, bytes]) -> None:
    """Inclusion proofs from stored nodes equal RFC 9162 PATH and verify for every (index, size)."""
    d = _entries(MAX_PROOF_SIZE)
    for n in range(1, MAX_PROOF_SIZE + 1):
        root = _mth(d[:n])
        for m in range(n):
            proof = inclusion_proof(m, n, _reader(stored_nodes, n))
            assert proof == _path(m, d[:n]), f"PATH({m}, {n})"
            verify_inclusion(leaf_hash(d[m]), m, n, proof, root)


def test_altered_inclusion_proofs_are_rejected(stored_nodes: dict[NodeCoord, bytes]) -> None:
    """Any altered hash, index, length or root makes an inclusion proof fail."""
    d = _entries(MAX_PROOF_SIZE)
    for n in range(1, MAX_PROOF_SIZE + 1):
        root = _mth(d[:n])
        for m in range(n):
            leaf = leaf_hash(d[m])
            proof = inclusion_proof(m, n, _reader(stored_nodes, n))
            for i in range(len(proof)):
                bad = [*proof[:i], _flip(proof[i]), *proof[i + 1 :]]
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, m, n, bad, root)
            with pytest.raises(ProofError):
                verify_inclusion(leaf, m, n, [*proof, root], root)
            if proof:
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, m, n, proof[:-1], root)
            with pytest.raises(ProofError):
                verify_inclusion(_flip(leaf), m, n, proof, root)
            with pytest.raises(ProofError):
                verify_inclusion(leaf, m, n, proof, _flip(root))
            if n > 1:
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, (m + 1) % n, n, proof, root)


def test_inclusion_proof_outside_the_tree_is_refused(
    stored_nodes: dict[NodeCoord, bytes],
) -> None:
    """Asking for or verifying a leaf outside the tree is an error, not an empty proof."""
    for index, size in [(0, 0), (5, 5), (6, 5), (-1, 5)]:
        with pytest.raises(ProofError):
            inclusion_proof(index, size, _reader(stored_nodes, max(size, 0)))
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(b"x"), index, size, [], EMPTY_ROOT)


# -- consistency ---------------------------------------------------------------------------------


def test_consistency_proofs_match_naive_and_verify(stored_nodes: dict[NodeCoord, bytes]) -> None:
    """Consistency proofs from stored nodes equal RFC 9162 PROOF and verify for all m <= n <= 40."""
    d = _entries(MAX_PROOF_SIZE)
    for n in range(1, MAX_PROOF_SIZE + 1):
        root2 = _mth(d[:n])
        for m in range(1, n + 1):
            proof = consistency_proof(m, n, _reader(stored_nodes, n))
            assert proof == _proof(m, d[:n]), f"PROOF({m}, {n})"
            verify_consistency(m, n, proof, _mth(d[:m]), root2)


def test_altered_consistency_proofs_are_rejected(stored_nodes: dict[NodeCoord, bytes]) -> None:
    """Any altered hash, length or root makes a consistency proof fail."""
    d = _entries(MAX_PROOF_SIZE)
    for n in range(1, MAX_PROOF_SIZE + 1):
        root2 = _mth(d[:n])
        for m in range(1, n + 1):
            root1 = _mth(d[:m])
            proof = consistency_proof(m, n, _reader(stored_nodes, n))
            for i in range(len(proof)):
                bad = [*proof[:i], _flip(proof[i]), *proof[i + 1 :]]
                with pytest.raises(ProofError):
                    verify_consistency(m, n, bad, root1, root2)
            with pytest.raises(ProofError):
                verify_consistency(m, n, [*proof, root2], root1, root2)
            if proof:
                with pytest.raises(ProofError):
                    verify_consistency(m, n, proof[:-1], root1, root2)
            with pytest.raises(ProofError):
                verify_consistency(m, n, proof, _flip(root1), root2)
            with pytest.raises(ProofError):
                verify_consistency(m, n, proof, root1, _flip(root2))
            if m < n:
                with pytest.raises(ProofError):
                    verify_consistency(m, n, proof, root2, root1)


def test_consistency_proof_needs_ordered_nonempty_sizes(
    stored_nodes: dict[NodeCoord, bytes],
) -> None:
    """A consistency proof from the empty tree or to a smaller tree is refused."""
    for m, n in [(0, 5), (6, 5), (-1, 3)]:
        with pytest.raises(ProofError):
            consistency_proof(m, n, _reader(stored_nodes, MAX_PROOF_SIZE))
        with pytest.raises(ProofError):
            verify_consistency(m, n, [], EMPTY_ROOT, EMPTY_ROOT)


# -- larger trees, property-based ----------------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(min_value=1, max_value=3000), st.data())
def test_proofs_verify_in_larger_trees(n: int, data: st.DataObject) -> None:
    """Proofs from stored nodes verify in trees of any size, not only the small exhaustive ones."""
    m = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    old = data.draw(st.integers(min_value=1, max_value=n), label="old size")
    frontier = Frontier()
    nodes: dict[NodeCoord, bytes] = {}
    roots: dict[int, bytes] = {}
    for i in range(n):
        for level, index, h in frontier.append(leaf_hash(i.to_bytes(4, "big"))):
            nodes[(level, index)] = h
        if i + 1 == old:
            roots[old] = frontier.root()
    root = frontier.root()
    proof = inclusion_proof(m, n, _reader(nodes, n))
    verify_inclusion(leaf_hash(m.to_bytes(4, "big")), m, n, proof, root)
    verify_consistency(old, n, consistency_proof(old, n, _reader(nodes, n)), roots[old], root)
