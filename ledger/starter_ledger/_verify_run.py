"""Verification, part 3: one pass over a source, from its rows to a finished replay.

For: ``_run``, which reads entries (and, from a store that has them, the checkpoints and tree
nodes stored with each row) from a ``Source``, seeds the workers with the signer keys the source
lists, has them checked (``_verify_chunks``, in parallel above ``PARALLEL_THRESHOLD`` entries)
and feeds the results in order to a ``_Replay`` (``_verify_replay``), reporting progress. Not for:
the checks themselves, nor what a particular verification adds before or after the pass
(``starter_ledger.verify``, ``_verify_incremental``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Protocol

from starter_ledger._verify_chunks import CHUNK, _checked
from starter_ledger._verify_replay import _Replay
from starter_ledger.entry import decode_entry
from starter_ledger.errors import FormatError, LedgerError
from starter_ledger.keys import public_key_bytes, thumbprint
from starter_ledger.trust import SIGNER_EVENT_TYPES

#: Below this many entries verification runs in-process (starting workers costs more).
PARALLEL_THRESHOLD = 20_000

Progress = Callable[[int, int], None]


class Source(Protocol):
    """Where entries and checkpoints come from: a store or a bundle."""

    def iter_entries(self, start: int = 0, chunk: int = ...) -> Iterator[tuple[int, bytes]]: ...

    def iter_checkpoints(self, start_size: int = 0) -> Iterator[tuple[int, str]]: ...


class _Feed:
    """Checkpoints queued by the row reader; empty now does not mean exhausted."""

    def __init__(self) -> None:
        self.items: deque[tuple[int, str]] = deque()
        #: (seq, stored tree nodes) of rows read but not yet replayed.
        self.nodes: deque[tuple[int, bytes]] = deque()

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> tuple[int, str]:
        if self.items:
            return self.items.popleft()
        raise StopIteration


def _split_rows(
    rows: Iterator[tuple[int, bytes, str | None, bytes]], feed: _Feed
) -> Iterator[tuple[int, bytes]]:
    for seq, entry, checkpoint, nodes in rows:
        if checkpoint is not None:
            feed.items.append((seq + 1, checkpoint))
        feed.nodes.append((seq, nodes))
        yield seq, entry


def _seed_keys(source: Source, replay: _Replay) -> dict[str, bytes]:
    """kid -> public key of every signer key the store's index lists, so that workers can check
    signatures from the first chunk on. Safe without trusting the index: a kid is the thumbprint of
    its key, so a key found under the wrong kid is simply never used."""
    signer_events = getattr(source, "entries_of_types", None)
    keys: dict[str, bytes] = {}
    if signer_events is not None:
        rows = signer_events(SIGNER_EVENT_TYPES, end=replay.final_size)
    else:  # a bundle: its first entry names the genesis signer
        try:
            rows = list(islice(source.iter_entries(0), 1))
        except LedgerError:
            rows = []
    for _, raw in rows:
        try:
            payload = decode_entry(raw).envelope.payload
            jwk = payload.get("signer") or payload.get("jwk")
            if isinstance(jwk, dict):
                keys[thumbprint(jwk)] = public_key_bytes(jwk)
        except (FormatError, KeyError, TypeError):
            continue  # the replay reports a bad entry where it stands
    return keys


def _run(
    replay: _Replay,
    source: Source,
    start: int,
    jobs: int | None,
    progress: Progress | None,
) -> None:
    todo = replay.final_size - start
    if jobs is None:
        jobs = (os.cpu_count() or 1) if todo >= PARALLEL_THRESHOLD else 1
    iter_rows = getattr(source, "iter_rows", None)
    if iter_rows is None:
        entries = source.iter_entries(start, chunk=CHUNK)
    else:
        # One pass over the rows: checkpoints are queued as their rows are read (ahead of the
        # replay) and consumed by it in order.
        feed = _Feed()
        replay.checkpoints = feed
        replay.next_cp = None
        replay.stored_nodes = feed.nodes
        entries = _split_rows(iter_rows(start, replay.final_size, CHUNK), feed)
    keys = _seed_keys(source, replay)
    items = _checked(entries, lambda: {**keys, **replay.signers.known}, jobs)
    for done, item in enumerate(items, start=1):
        replay.feed(item)
        if progress is not None and done % CHUNK == 0:
            progress(done, todo)
    replay.finish()
    if progress is not None:
        progress(todo, todo)
