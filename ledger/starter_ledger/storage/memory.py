"""``memory://`` ledger storage: lists in this process, gone when it ends.

For: tests and tools that need a ledger without a file. It enforces the same rules as the durable
stores (append-only, expected size, atomic batches). Not for: anything that must survive the
process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from starter_ledger.errors import ConflictError, LedgerUnavailableError
from starter_ledger.merkle import NodeCoord
from starter_ledger.storage.interface import AppendBatch

__all__ = ["MemoryStore"]


class MemoryStore:
    """An in-process, append-only ledger store."""

    def __init__(self, name: str = "") -> None:
        self._name = name
        self._entries: list[tuple[bytes, str]] = []
        self._nodes: dict[NodeCoord, bytes] = {}
        self._checkpoints: dict[int, str] = {}
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return f"memory://{self._name}"

    def size(self) -> int:
        return len(self._entries)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            yield

    def append(self, batch: AppendBatch) -> None:
        with self._lock:
            if len(self._entries) != batch.expected_size:
                raise ConflictError(
                    f"ledger has {len(self._entries)} entries, the appender expected "
                    f"{batch.expected_size}",
                    hint="re-read the ledger and append again",
                )
            last = batch.expected_last_leaf
            if last is not None and self._nodes.get((0, batch.expected_size - 1)) != last:
                raise ConflictError(
                    f"entry {batch.expected_size - 1} is not the one the appender built on",
                    hint="re-read the ledger and append again",
                )
            for i, e in enumerate(batch.entries):
                if e.seq != batch.expected_size + i:
                    raise ConflictError(f"entry seq {e.seq} is not the next position")
            taken = [(lvl, idx) for lvl, idx, _ in batch.nodes if (lvl, idx) in self._nodes]
            if taken or batch.checkpoint[0] in self._checkpoints:
                raise ConflictError(
                    f"tree node {taken[0]} is stored already"
                    if taken
                    else f"a checkpoint for size {batch.checkpoint[0]} is stored already",
                    hint="re-read the ledger and append again",
                )
            self._entries.extend((e.entry, e.type) for e in batch.entries)
            for level, index, h in batch.nodes:
                self._nodes[(level, index)] = h
            size, note = batch.checkpoint
            self._checkpoints[size] = note

    def iter_entries(
        self, start: int = 0, end: int | None = None, chunk: int = 2048
    ) -> Iterator[tuple[int, bytes]]:
        stop = len(self._entries) if end is None else min(end, len(self._entries))
        for seq in range(start, stop):
            yield seq, self._entries[seq][0]

    def entries_of_types(
        self, types: Sequence[str], end: int | None = None
    ) -> list[tuple[int, bytes]]:
        wanted = set(types)
        stop = len(self._entries) if end is None else end
        return [
            (seq, entry)
            for seq, (entry, type_) in enumerate(self._entries[:stop])
            if type_ in wanted
        ]

    def read_nodes(self, coords: Sequence[NodeCoord]) -> list[bytes]:
        try:
            return [self._nodes[c] for c in coords]
        except KeyError as e:
            raise LedgerUnavailableError(
                f"tree node {e.args[0]} is missing from {self.url}"
            ) from None

    def latest_checkpoint(self) -> tuple[int, str] | None:
        if not self._checkpoints:
            return None
        size = max(self._checkpoints)
        return size, self._checkpoints[size]

    def checkpoint_at(self, size: int) -> str | None:
        return self._checkpoints.get(size)

    def iter_checkpoints(self, start_size: int = 0) -> Iterator[tuple[int, str]]:
        for size in sorted(self._checkpoints):
            if size >= start_size:
                yield size, self._checkpoints[size]

    def close(self) -> None:
        return None
