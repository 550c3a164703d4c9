"""Property tests of RFC 9162 proofs: generated proofs verify, and every mutation of one is refused.

Proofs come from a ``Ledger`` over a ``MemoryStore`` of 2000 entries (built once for the module) and
from a bare ``merkle.Frontier`` with a dict node reader; both are compared with a reference written
straight from RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1 (recursive MTH, PATH and PROOF).

Note on sizes: the RFC 9162 verification algorithms do not bind the tree size into the hash, so a
proof for (index, size) may also verify for another size *against the same root* (e.g. leaf 0 of
sizes 5 and 6). A "wrong size" is therefore always checked against the root of the claimed size,
which is what a verifier holding a signed checkpoint (size and root together) does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ORIGIN, make_signer
from starter_ledger import Ledger, MemoryStore
from starter_ledger.clock import FixedClock
from starter_ledger.encoding import b64_encode
from starter_ledger.errors import ProofError
from starter_ledger.ledger import Event
from starter_ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    NodeCoord,
    consistency_proof,
    frontier_coords,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 2000
PROPS = settings(max_examples=150, deadline=None)

# -- the reference: RFC 9162 section 2.1, recursively, over a tuple of leaf hashes ----------


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    """MTH, PATH and PROOF of RFC 9162 over fixed leaf hashes, memoised by leaf range."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = tuple(leaves)
        self.mth = cache(self._mth)

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return self.leaves[start]
        k = _k(n)
        return node_hash(self.mth(start, start + k), self.mth(start + k, end))

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self._subproof(m, 0, n, True)

    def _subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = _k(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.mth(start, start + k)]


# -- the ledger under test, built once ---------------------------------------------------------


@dataclass(frozen=True)
class Built:
    ledger: Ledger
    leaves: tuple[bytes, ...]
    ref: Reference


@pytest.fixture(scope="module")
def built() -> Built:
    clock = FixedClock(dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC))
    led = Ledger(MemoryStore("proofs"), clock=clock)
    signer = make_signer("genesis")
    led.init(ORIGIN, signer, "tester")
    events = [Event("note.recorded", {"text": f"note {i}"}) for i in range(MAX_SIZE - 1)]
    led.append_many(events, signer, "tester")
    assert led.size() == MAX_SIZE
    leaves = tuple(leaf_hash(raw) for _, raw in led.store.iter_entries())
    return Built(led, leaves, Reference(leaves))


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


@st.composite
def _mutated(draw: st.DrawFn, proof: list[bytes]) -> tuple[str, list[bytes]]:
    """One of: a bit flip in any hash, a hash dropped, a hash added, two hashes swapped."""
    kinds = ["extra"]
    if proof:
        kinds += ["flip", "drop"]
    if len(set(proof)) > 1:
        kinds.append("swap")
    kind = draw(st.sampled_from(kinds))
    out = list(proof)
    if kind == "flip":
        i = draw(st.integers(0, len(out) - 1))
        out[i] = _flip(out[i], draw(st.integers(0, 255)))
    elif kind == "drop":
        del out[draw(st.integers(0, len(out) - 1))]
    elif kind == "extra":
        fresh = st.binary(min_size=32, max_size=32)
        extra = draw(st.one_of(fresh, st.sampled_from(proof)) if proof else fresh)
        out.insert(draw(st.integers(0, len(out))), extra)
    else:
        i, j = draw(
            st.tuples(st.integers(0, len(out) - 1), st.integers(0, len(out) - 1)).filter(
                lambda ij: out[ij[0]] != out[ij[1]]
            )
        )
        out[i], out[j] = out[j], out[i]
    return kind, out


# -- inclusion ---------------------------------------------------------------------------------


@PROPS
@given(data=st.data())
def test_inclusion_proofs_are_rfc9162_and_verify(built: Built, data: st.DataObject) -> None:
    """An inclusion proof the ledger hands out is exactly RFC 9162 PATH and verifies to its root."""
    size = data.draw(st.integers(1, MAX_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = built.ledger.inclusion_proof(index, size)
    assert proof == built.ref.path(index, 0, size)
    root = built.ledger.root(size)
    assert root == built.ref.mth(0, size)
    verify_inclusion(built.leaves[index], index, size, proof, root)


@PROPS
@given(data=st.data())
def test_mutated_inclusion_proof_is_rejected(built: Built, data: st.DataObject) -> None:
    """A changed, shortened, lengthened or reordered inclusion proof never proves a leaf."""
    size = data.draw(st.integers(1, MAX_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = built.ledger.inclusion_proof(index, size)
    root = built.ledger.root(size)
    kind, bad = data.draw(_mutated(proof), label="mutation")
    assert bad != proof, kind
    with pytest.raises(ProofError):
        verify_inclusion(built.leaves[index], index, size, bad, root)


@PROPS
@given(data=st.data())
def test_inclusion_proof_for_another_index_or_size_is_rejected(
    built: Built, data: st.DataObject
) -> None:
    """A valid inclusion proof does not prove the leaf at another index or in another tree size."""
    size = data.draw(st.integers(2, MAX_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = built.ledger.inclusion_proof(index, size)
    root = built.ledger.root(size)
    leaf = built.leaves[index]
    other_index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="idx2")
    with pytest.raises(ProofError):
        verify_inclusion(leaf, other_index, size, proof, root)
    other_size = data.draw(
        st.integers(index + 1, MAX_SIZE).filter(lambda n: n != size), label="size2"
    )
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, other_size, proof, built.ledger.root(other_size))
    with pytest.raises(ProofError):
        verify_inclusion(built.leaves[other_index], index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, _flip(root, data.draw(st.integers(0, 255))))


# -- consistency -------------------------------------------------------------------------------


@PROPS
@given(data=st.data())
def test_consistency_proofs_are_rfc9162_and_verify(built: Built, data: st.DataObject) -> None:
    """A consistency proof the ledger hands out is exactly RFC 9162 PROOF and verifies."""
    size2 = data.draw(st.integers(1, MAX_SIZE), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    proof = built.ledger.consistency_proof(size1, size2)
    assert proof == built.ref.proof(size1, size2)
    verify_consistency(size1, size2, proof, built.ledger.root(size1), built.ledger.root(size2))


@PROPS
@given(data=st.data())
def test_mutated_consistency_proof_is_rejected(built: Built, data: st.DataObject) -> None:
    """A changed, shortened, lengthened or reordered consistency proof never proves an extension."""
    size2 = data.draw(st.integers(1, MAX_SIZE), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    proof = built.ledger.consistency_proof(size1, size2)
    root1, root2 = built.ledger.root(size1), built.ledger.root(size2)
    kind, bad = data.draw(_mutated(proof), label="mutation")
    assert bad != proof, kind
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, bad, root1, root2)


@PROPS
@given(data=st.data())
def test_consistency_proof_for_other_sizes_or_roots_is_rejected(
    built: Built, data: st.DataObject
) -> None:
    """A valid consistency proof does not prove other sizes, nor a rewritten old or new root."""
    size2 = data.draw(st.integers(2, MAX_SIZE), label="size2")
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    led = built.ledger
    proof = led.consistency_proof(size1, size2)
    root1, root2 = led.root(size1), led.root(size2)
    other1 = data.draw(st.integers(1, size2).filter(lambda n: n != size1), label="other1")
    with pytest.raises(ProofError):
        verify_consistency(other1, size2, proof, led.root(other1), root2)
    other2 = data.draw(st.integers(size1, MAX_SIZE).filter(lambda n: n != size2), label="other2")
    with pytest.raises(ProofError):
        verify_consistency(size1, other2, proof, root1, led.root(other2))
    bit = data.draw(st.integers(0, 255), label="bit")
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, _flip(root1, bit), root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, _flip(root2, bit))


# -- roots -------------------------------------------------------------------------------------


@PROPS
@given(n=st.integers(1, MAX_SIZE))
def test_root_from_leaves_equals_stored_tree_root(built: Built, n: int) -> None:
    """The root recomputed from the first n entries' leaf hashes is the stored root at size n."""
    expected = root_from_leaves(built.leaves[:n])
    assert built.ledger.root(n) == expected
    assert built.ledger.frontier(n).root() == expected
    assert expected == built.ref.mth(0, n)


def test_final_root_matches_checkpoint_and_empty_root(built: Built) -> None:
    """The latest checkpoint commits to the root of all entries; the empty tree is SHA-256("")."""
    root = root_from_leaves(built.leaves)
    note = built.ledger.latest_checkpoint()
    assert note.startswith(f"{ORIGIN}\n{MAX_SIZE}\n{b64_encode(root)}\n")
    assert root_from_leaves([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


# -- bare Frontier + dict node reader ----------------------------------------------------------


def _tree(seed: int, size: int) -> tuple[list[bytes], dict[NodeCoord, bytes]]:
    leaves = [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(size)]
    nodes: dict[NodeCoord, bytes] = {}
    f = Frontier()
    for leaf in leaves:
        for level, idx, h in f.append(leaf):
            nodes[(level, idx)] = h
    return leaves, nodes


@PROPS
@given(seed=st.integers(0, 2**32), size=st.integers(1, MAX_SIZE), data=st.data())
def test_frontier_nodes_give_rfc9162_proofs(seed: int, size: int, data: st.DataObject) -> None:
    """Proofs built from the nodes a Frontier emits match RFC 9162 and verify for any tree."""
    leaves, nodes = _tree(seed, size)
    ref = Reference(leaves)

    def read(coords: Sequence[NodeCoord]) -> list[bytes]:
        return [nodes[c] for c in coords]

    n = data.draw(st.integers(1, size), label="n")
    frontier = Frontier(n, read(frontier_coords(n)))
    assert frontier.root() == ref.mth(0, n) == root_from_leaves(leaves[:n])
    index = data.draw(st.integers(0, n - 1), label="index")
    path = inclusion_proof(index, n, read)
    assert path == ref.path(index, 0, n)
    verify_inclusion(leaves[index], index, n, path, frontier.root())
    m = data.draw(st.integers(1, n), label="m")
    proof = consistency_proof(m, n, read)
    assert proof == ref.proof(m, n)
    verify_consistency(m, n, proof, ref.mth(0, m), frontier.root())
    _, bad = data.draw(_mutated(path), label="bad path")
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, n, bad, frontier.root())
    _, bad = data.draw(_mutated(proof), label="bad proof")
    with pytest.raises(ProofError):
        verify_consistency(m, n, bad, ref.mth(0, m), frontier.root())
