"""Verification: replays a ledger from its verbatim bytes and trusts nothing else.

For: ``verify_store`` (a database), ``verify_bundle`` (an export file, offline) and
``verify_from_checkpoint`` (only what was appended since a trusted checkpoint). Each entry is
checked for: canonical encoding, contiguous ``seq``, ``prev_root`` = the recomputed root of all
earlier entries, a payload valid for its type and version, an Ed25519 signature by a key authorised
at that position, and the trust rules; every stored checkpoint must equal the recomputed tree and
name the right key; pins (``genesis_sha256``, a trusted checkpoint) must hold. Parsing and
signature checks run in worker processes; the tree and the trust rules are replayed in order in
this process, so memory stays flat however long the ledger is. The outcome is a ``VerifyReport``: a
failure is a value naming the first bad ``seq`` and check, never an exception. This module is the
public API and the full verifications; the work lives in ``_verify_chunks`` (worker processes),
``_verify_replay`` (the in-order replay and the report), ``_verify_run`` (one pass over a source)
and ``_verify_incremental`` (from a trusted checkpoint). Not for: repairing anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from starter_ledger._verify_chunks import CHUNK, RELEASE_RULE_TYPES
from starter_ledger._verify_incremental import replay_from_checkpoint
from starter_ledger._verify_replay import (
    Failure,
    VerifyReport,
    _Failed,
    _parse_pin,
    _Replay,
    _report,
)
from starter_ledger._verify_run import PARALLEL_THRESHOLD, Progress, Source, _run
from starter_ledger.clock import SystemClock
from starter_ledger.errors import FormatError, LedgerError, ProofError
from starter_ledger.jwks import jwks_bytes, key_ring
from starter_ledger.merkle import (
    Frontier,
    NodeCoord,
    consistency_proof,
    frontier_coords,
    verify_consistency,
)
from starter_ledger.trust import SignerSet

__all__ = [
    "CHUNK",
    "PARALLEL_THRESHOLD",
    "RELEASE_RULE_TYPES",
    "Failure",
    "Progress",
    "Source",
    "VerifyReport",
    "replay_from_checkpoint",
    "replay_store",
    "verify_bundle",
    "verify_from_checkpoint",
    "verify_store",
]


def _check_genesis_pin(replay: _Replay, genesis_sha256: str | None) -> None:
    if genesis_sha256 is not None and replay.genesis_sha256 != genesis_sha256.lower():
        raise _Failed(0, "genesis-pin", "the genesis entry's SHA-256 differs from the pinned one")


def _replay_all(
    source: Source,
    label: str,
    final_size: int,
    *,
    genesis_sha256: str | None,
    checkpoint: str | None,
    jobs: int | None,
    progress: Progress | None,
    after: Callable[[_Replay], None] | None = None,
    live: bool = False,
    now: dt.datetime | None = None,
) -> tuple[VerifyReport, _Replay]:
    replay = _Replay(Frontier(), SignerSet(), iter(()), final_size, None)
    replay.now = now
    if final_size == 0:
        failure = Failure(0, "seq", "the ledger is empty: no genesis entry")
        return _report(replay, label, failure), replay
    try:
        pin = _parse_pin(checkpoint) if checkpoint is not None else None
        replay = _Replay(
            Frontier(), SignerSet(), source.iter_checkpoints(0), final_size, pin, live=live
        )
        replay.now = now
        if pin is not None and pin.size == 0:
            raise _Failed(None, "checkpoint-pin", "a trusted checkpoint of size 0 pins nothing")
        _run(replay, source, 0, jobs, progress)
        _check_genesis_pin(replay, genesis_sha256)
        if after is not None:
            after(replay)
    except _Failed as f:
        return _report(replay, label, f.failure), replay
    except LedgerError as e:
        check = "entry-format" if isinstance(e, FormatError) else "storage"
        return _report(replay, label, Failure(replay.frontier.size, check, e.message)), replay
    return _report(replay, label, None), replay


def verify_store(
    store: Any,
    *,
    genesis_sha256: str | None = None,
    checkpoint: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> VerifyReport:
    """Verify a whole ledger store from its first entry.

    Entries appended while it runs are not part of the verification (it covers the size read at
    the start); they do not make it fail.
    """
    return replay_store(
        store,
        genesis_sha256=genesis_sha256,
        checkpoint=checkpoint,
        jobs=jobs,
        progress=progress,
        now=now,
    )[0]


def replay_store(
    store: Any,
    *,
    genesis_sha256: str | None = None,
    checkpoint: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> tuple[VerifyReport, _Replay]:
    """``verify_store``, also returning the replayed state (for ``follow``)."""
    # The checkpoint first, then the size: an append between the two reads can only grow the size,
    # so a checkpoint beyond it proves that entries were removed.
    latest = store.latest_checkpoint()
    size = store.size()
    if latest is not None and latest[0] > size:
        failure = Failure(
            size,
            "checkpoint",
            f"a checkpoint for size {latest[0]} is stored but the ledger has {size} entries: "
            "entries were removed",
        )
        replay = _Replay(Frontier(), SignerSet(), iter(()), size, None)
        replay.now = now
        return _report(replay, store.url, failure), replay

    def after(replay: _Replay) -> None:
        _check_stored_tree(store, replay)
        _check_jwks_projection(store, replay, size)
        if replay.pin is not None:
            proof = consistency_proof(replay.pin.size, size, store.read_nodes)
            try:
                verify_consistency(
                    replay.pin.size, size, proof, replay.pin.root, replay.frontier.root()
                )
            except ProofError as e:
                raise _Failed(
                    None, "checkpoint-pin", f"consistency proof fails: {e.message}"
                ) from None

    return _replay_all(
        store,
        store.url,
        size,
        genesis_sha256=genesis_sha256,
        checkpoint=checkpoint,
        jobs=jobs,
        progress=progress,
        after=after,
        live=True,
        now=now,
    )


def _check_jwks_projection(store: Any, replay: _Replay, size: int) -> None:
    """The JWKS rebuilt from scratch (the stored key events, read through their index) must be
    byte for byte the one replayed entry by entry."""
    now = replay.now or SystemClock().now()
    try:
        scratch = jwks_bytes(key_ring(store, size), now)
    except LedgerError as e:
        raise _Failed(None, "jwks-projection", e.message) from None
    if scratch != jwks_bytes(replay.keys, now):
        raise _Failed(
            None,
            "jwks-projection",
            "the JWKS rebuilt from the indexed key events differs from the one replayed entry by "
            "entry: the type index hides or invents key events",
        )


def _check_stored_tree(store: Any, replay: _Replay) -> None:
    coords: list[NodeCoord] = frontier_coords(replay.frontier.size)
    if store.read_nodes(coords) != replay.frontier.hashes:
        raise _Failed(None, "tree-nodes", "the stored tree nodes differ from the recomputed tree")


def verify_bundle(
    source: Any,
    *,
    genesis_sha256: str | None = None,
    checkpoint: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> VerifyReport:
    """Verify an export bundle offline (``bundle.BundleSource``)."""

    def after(replay: _Replay) -> None:
        if source.origin != replay.signers.origin:
            raise _Failed(
                None,
                "bundle-format",
                f"bundle header names origin {source.origin!r}, its genesis "
                f"{replay.signers.origin!r}",
            )

    return _replay_all(
        source,
        str(source.path),
        source.size,
        genesis_sha256=genesis_sha256,
        checkpoint=checkpoint,
        jobs=jobs,
        progress=progress,
        after=after,
        now=now,
    )[0]


def verify_from_checkpoint(
    store: Any,
    trusted: str,
    *,
    genesis_sha256: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> VerifyReport:
    """Verify only what was appended after a trusted checkpoint, by consistency proof."""
    return replay_from_checkpoint(
        store, trusted, genesis_sha256=genesis_sha256, jobs=jobs, progress=progress, now=now
    )[0]
