"""The ledger-storage family: an append-only store of entries, tree nodes and checkpoints.

For: the ``LedgerStore`` protocol that every backend (memory, SQLite) implements, and
the ``AppendBatch`` value an append writes in one transaction. A store keeps bytes verbatim and
knows nothing of signatures; the ledger (``starter_ledger.ledger``) decides what is appended. There
is no update or delete operation. Not for: verification, which reads a store but never trusts it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from starter_ledger.errors import ConflictError, LedgerUnavailableError
from starter_ledger.merkle import NodeCoord

__all__ = [
    "AppendBatch",
    "ConflictError",
    "LedgerStore",
    "LedgerUnavailableError",
    "NewEntry",
]


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry to append: its position, its verbatim bytes, and two index columns."""

    seq: int
    entry: bytes
    type: str
    kid: str


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """Everything one append writes, atomically: entries, completed tree nodes, one checkpoint."""

    #: The ledger size the appender read; the append fails with ``ConflictError`` otherwise.
    expected_size: int
    entries: Sequence[NewEntry]
    #: (level, index, hash) of every perfect subtree the entries complete, leaves included.
    nodes: Sequence[tuple[int, int, bytes]]
    #: (tree size, signed note) of the checkpoint after the append.
    checkpoint: tuple[int, str]
    #: The leaf hash of entry ``expected_size - 1`` in the history the appender built on (None:
    #: check the size only). A store holding another entry there refuses the batch, so a view
    #: of the same size but of another history (a rolled-back append) cannot be built on.
    expected_last_leaf: bytes | None = None


class LedgerStore(Protocol):
    """Append-only storage of one ledger."""

    @property
    def url(self) -> str:
        """Where the ledger lives, without credentials."""
        ...

    def size(self) -> int:
        """Number of entries."""
        ...

    def writing(self) -> AbstractContextManager[None]:
        """Hold the write lock: reads inside see the newest state and no other writer can append
        until the block ends; appends inside commit together, durably, when it ends (or not at
        all if it raises). ``ConflictError`` when the lock cannot be had in time."""
        ...

    def append(self, batch: AppendBatch) -> None:
        """Write ``batch`` in one durable transaction (or within ``writing``), or nothing;
        ``ConflictError`` when the ledger's size is not ``batch.expected_size``, or when its
        last entry's leaf hash is not ``batch.expected_last_leaf`` (when that is given)."""
        ...

    def iter_entries(
        self, start: int = 0, end: int | None = None, chunk: int = 2048
    ) -> Iterator[tuple[int, bytes]]:
        """(seq, entry bytes) in order from ``start`` up to ``end`` (exclusive), streamed."""
        ...

    def entries_of_types(
        self, types: Sequence[str], end: int | None = None
    ) -> list[tuple[int, bytes]]:
        """(seq, entry bytes) of every entry whose type is in ``types``, below ``end``, in order."""
        ...

    def read_nodes(self, coords: Sequence[NodeCoord]) -> list[bytes]:
        """Stored perfect-subtree hashes at ``coords``, in order; missing ones are an error."""
        ...

    def latest_checkpoint(self) -> tuple[int, str] | None:
        """(size, signed note) of the newest checkpoint, or None."""
        ...

    def checkpoint_at(self, size: int) -> str | None:
        """The checkpoint stored for tree ``size``, or None."""
        ...

    def iter_checkpoints(self, start_size: int = 0) -> Iterator[tuple[int, str]]:
        """(size, signed note) of every stored checkpoint with size >= ``start_size``, by size."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
