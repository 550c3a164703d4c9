"""RFC 9162 Merkle trees: hashing, an O(log n) append frontier, proof generation and verification.

For: the tree over ledger entries. ``leaf_hash`` = SHA-256(0x00 || entry bytes), ``node_hash`` =
SHA-256(0x01 || left || right). ``Frontier`` keeps only the roots of the perfect subtrees of the
current tree (its compact range), so an append hashes O(log n) bytes and needs O(log n) memory.
Proofs are generated from stored perfect-subtree hashes through a ``NodeReader`` and verified by
``verify_inclusion`` / ``verify_consistency``, which follow RFC 9162 sections 2.1.3.2 and 2.1.4.2.
Not for: storage (see ``starter_ledger.storage``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from starter_ledger.errors import ProofError

HASH_SIZE = 32
#: Root of the empty tree: SHA-256 of the empty string (RFC 9162 section 2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256

#: (level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level).
NodeCoord = tuple[int, int]
#: Fetches the stored hashes of perfect subtrees, in the order asked.
NodeReader = Callable[[Sequence[NodeCoord]], Sequence[bytes]]

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "NodeCoord",
    "NodeReader",
    "consistency_proof",
    "frontier_coords",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def frontier_coords(size: int) -> list[NodeCoord]:
    """Coordinates of the perfect subtrees that make up a tree of ``size`` leaves, left to right."""
    coords: list[NodeCoord] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            coords.append((level, start >> level))
            start += 1 << level
    return coords


class Frontier:
    """The compact range of a tree: one hash per set bit of its size, largest subtree first."""

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            msg = f"a frontier of size {size} has {size.bit_count()} hashes, not {len(hashes)}"
            raise ValueError(msg)
        self.size = size
        self.hashes = list(hashes)

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the perfect subtrees it completes as (level, index, hash).

        The leaf itself comes first, then each parent it completes, bottom up.
        """
        index = self.size
        created = [(0, index, leaf)]
        h = leaf
        level = 0
        s = index
        hashes = self.hashes
        while s & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            level += 1
            s >>= 1
            created.append((level, index >> level, h))
        hashes.append(h)
        self.size = index + 1
        return created

    def root(self) -> bytes:
        """RFC 9162 root hash of the tree."""
        hashes = self.hashes
        if not hashes:
            return EMPTY_ROOT
        r = hashes[-1]
        for h in reversed(hashes[:-1]):
            r = _sha256(b"\x01" + h + r).digest()
        return r


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """Root of a tree over the given leaf hashes (O(n); for tests and small trees)."""
    f = Frontier()
    for leaf in leaves:
        f.append(leaf)
    return f.root()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _decompose(start: int, end: int) -> list[NodeCoord]:
    """Perfect subtrees covering [start, end), where ``start`` is aligned as in RFC 9162 trees."""
    coords: list[NodeCoord] = []
    while start < end:
        n = end - start
        level = n.bit_length() - 1
        while start % (1 << level):
            level -= 1
        coords.append((level, start >> level))
        start += 1 << level
    return coords


def _hash_ranges(ranges: Sequence[tuple[int, int]], read: NodeReader) -> list[bytes]:
    """MTH of each [start, end) range, fetching all the stored subtrees they need in one call."""
    decomposed = [_decompose(s, e) for s, e in ranges]
    wanted = sorted({c for coords in decomposed for c in coords})
    found = dict(zip(wanted, read(wanted), strict=True))
    out = []
    for coords in decomposed:
        r = found[coords[-1]]
        for c in reversed(coords[:-1]):
            r = node_hash(found[c], r)
        out.append(r)
    return out


def _inclusion_ranges(m: int, start: int, end: int) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 inclusion proof (PATH) of leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    return _hash_ranges(_inclusion_ranges(index, 0, size), read)


def consistency_proof(size1: int, size2: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 consistency proof (PROOF) between trees of ``size1`` and ``size2`` leaves."""
    if not 1 <= size1 <= size2:
        raise ProofError(
            f"no consistency proof from size {size1} to size {size2}: need 1 <= old <= new"
        )
    if size1 == size2:
        return []
    ranges: list[tuple[int, int]] = []
    m, start, end, complete = size1, 0, size2, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    ranges.reverse()
    return _hash_ranges(ranges, read)


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} has {len(value)} bytes, not {HASH_SIZE}")


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _decomp_inclusion(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Returns None on success; raises ``ProofError`` saying why on any failure.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    for i, h in enumerate(proof):
        _check_hash(f"proof[{i}]", h)
    inner, border = _decomp_inclusion(index, size)
    if len(proof) != inner + border:
        raise ProofError(
            f"inclusion proof for index {index} in size {size} has {inner + border} hashes, "
            f"not {len(proof)}"
        )
    calculated = _chain_border_right(_chain_inner(leaf_hash, proof[:inner], index), proof[inner:])
    if calculated != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``.

    Returns None on success; raises ``ProofError`` saying why on any failure.
    """
    if size1 < 1:
        raise ProofError("consistency with the empty tree proves nothing: size1 must be at least 1")
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) is smaller than size1 ({size1})")
    if size1 == size2:
        if proof:
            raise ProofError("trees of equal size need an empty consistency proof")
        if root1 != root2:
            raise ProofError("trees of equal size have different roots")
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for i, h in enumerate(proof):
        _check_hash(f"proof[{i}]", h)
    if not proof:
        raise ProofError("consistency proof is empty")
    inner, border = _decomp_inclusion(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofError(
            f"consistency proof from {size1} to {size2} has {start + inner + border} hashes, "
            f"not {len(proof)}"
        )
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise ProofError("consistency proof does not lead to root1")
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise ProofError("consistency proof does not lead to root2")
