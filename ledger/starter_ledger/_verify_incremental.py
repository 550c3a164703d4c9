"""Verification, part 4: incremental verification from a trusted checkpoint.

For: ``replay_from_checkpoint`` (behind ``verify_from_checkpoint``), which checks the store's tree
against the trusted checkpoint, rebuilds the signer set and key states at that size from entries
proved by inclusion proofs against its root, proves consistency with the current tree, and then
replays only the entries appended since. Not for: a full verification from the first entry
(``starter_ledger.verify``), nor the per-entry checks (``_verify_chunks``, ``_verify_replay``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from starter_events import KEY_EVENT_TYPES, KeyRing, KeyTransitionError
from starter_ledger._verify_replay import (
    Failure,
    VerifyReport,
    _Failed,
    _parse_pin,
    _Pin,
    _Replay,
    _report,
)
from starter_ledger._verify_run import Progress, _run
from starter_ledger.checkpoint import expected_body
from starter_ledger.entry import decode_entry
from starter_ledger.errors import FormatError, LedgerError, ProofError
from starter_ledger.jwks import apply_key_event
from starter_ledger.keys import public_key_bytes, thumbprint
from starter_ledger.merkle import (
    Frontier,
    consistency_proof,
    frontier_coords,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from starter_ledger.note import parse_note
from starter_ledger.trust import SIGNER_EVENT_TYPES, SignerSet


def replay_from_checkpoint(
    store: Any,
    trusted: str,
    *,
    genesis_sha256: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> tuple[VerifyReport, _Replay]:
    """``verify_from_checkpoint``, also returning the replayed state (for ``follow``)."""
    size = store.size()
    replay = _Replay(Frontier(), SignerSet(), iter(()), size, None)
    replay.now = now
    start: int | None = None
    try:
        pin = _parse_pin(trusted)
        start = pin.size
        if pin.size < 1:
            raise _Failed(None, "checkpoint-pin", "a trusted checkpoint of size 0 pins nothing")
        if size < pin.size:
            raise _Failed(
                size,
                "checkpoint-pin",
                f"the ledger has {size} entries, fewer than the trusted checkpoint's {pin.size}: "
                "it was truncated",
            )
        frontier = Frontier(pin.size, store.read_nodes(frontier_coords(pin.size)))
        if frontier.root() != pin.root:
            raise _Failed(
                pin.size - 1,
                "checkpoint-pin",
                f"the ledger's tree at size {pin.size} differs from the trusted checkpoint: "
                "history was rewritten",
            )
        signers, genesis, last_key = _signers_at(store, pin, genesis_sha256)
        replay = _Replay(
            frontier, signers, store.iter_checkpoints(pin.size + 1), size, None, live=True
        )
        replay.genesis_sha256 = genesis
        replay.now = now
        replay.check_releases = False
        replay.keys = _keys_at(store, pin)
        replay.final_checked = size == pin.size
        if size == pin.size:
            _check_stored_newest(store, pin, signers.origin or "", last_key)
            replay.last_checkpoint = pin.note
        new_root = Frontier(size, store.read_nodes(frontier_coords(size))).root()
        proof = consistency_proof(pin.size, size, store.read_nodes)
        try:
            verify_consistency(pin.size, size, proof, pin.root, new_root)
        except ProofError as e:
            raise _Failed(None, "checkpoint-pin", f"consistency proof fails: {e.message}") from None
        _run(replay, store, pin.size, jobs, progress)
        if replay.frontier.root() != new_root:
            raise _Failed(
                None, "tree-nodes", "the stored tree nodes differ from the recomputed tree"
            )
        latest = store.latest_checkpoint()
        if latest is None or latest[0] < size:
            raise _Failed(
                size - 1, "checkpoint", f"no checkpoint is stored for the ledger's size {size}"
            )
    except _Failed as f:
        return _report(replay, store.url, f.failure, verified_from=start), replay
    except LedgerError as e:
        failure = Failure(None, "storage", e.message)
        return _report(replay, store.url, failure, verified_from=start), replay
    return _report(replay, store.url, None, verified_from=start), replay


def _proved_entry(store: Any, seq: int, pin: _Pin) -> bytes:
    """Entry ``seq`` (< pin.size), proved by an inclusion proof against the trusted root."""
    raw = next(iter(store.iter_entries(seq, seq + 1)), (None, b""))[1]
    lh = hashlib.sha256(b"\x00" + raw).digest()
    try:
        proof = inclusion_proof(seq, pin.size, store.read_nodes)
        verify_inclusion(lh, seq, pin.size, proof, pin.root)
    except ProofError:
        raise _Failed(
            seq, "checkpoint-pin", f"entry {seq} is not the one the trusted checkpoint covers"
        ) from None
    return raw


def _check_stored_newest(store: Any, pin: _Pin, origin: str, public_key: bytes) -> None:
    """With nothing new, the stored newest checkpoint (the one handed out) must be the pin's
    statement, signed by the signer of the last entry."""
    note = store.checkpoint_at(pin.size)
    try:
        signed = parse_note(note) if note is not None else None
    except FormatError:
        signed = None
    if (
        signed is None
        or signed.text != parse_note(pin.note).text
        or not signed.verify(origin, public_key)
    ):
        raise _Failed(
            pin.size - 1,
            "checkpoint",
            f"the stored checkpoint for size {pin.size} is missing, differs from the trusted one "
            "or is not signed by the signer of the last entry",
        )


def _keys_at(store: Any, pin: _Pin) -> KeyRing:
    """The key states at the trusted checkpoint, from key events proved against its root."""
    ring = KeyRing()
    for seq, _ in store.entries_of_types(KEY_EVENT_TYPES, end=pin.size):
        raw = _proved_entry(store, seq, pin)
        try:
            env = decode_entry(raw).envelope
            apply_key_event(ring, seq, env.type, env.payload)
        except FormatError as e:
            raise _Failed(seq, "entry-format", e.message) from None
        except KeyTransitionError as e:
            raise _Failed(seq, "key-lifecycle", e.message) from None
    return ring


def _signers_at(
    store: Any, pin: _Pin, genesis_sha256: str | None
) -> tuple[SignerSet, str | None, bytes]:
    """The signer set at the trusted checkpoint, from proved signer events and the pin itself.

    Returns it with the genesis entry's SHA-256 and the public key of the last entry's signer.
    Entries are proved by inclusion proofs against the trusted root, so a tampered database cannot
    change them; the ``type`` index may hide signer events, but the authorised set comes from the
    pin's signers line, which its signature covers.
    """
    signers = SignerSet(size=pin.size)
    genesis: str | None = None
    rows: Iterable[tuple[int, bytes]] = store.entries_of_types(SIGNER_EVENT_TYPES, end=pin.size)
    for seq in [0, *(seq for seq, _ in rows if seq != 0)]:
        raw = _proved_entry(store, seq, pin)
        try:
            entry = decode_entry(raw)
        except FormatError as e:
            raise _Failed(seq, "entry-format", e.message) from None
        env = entry.envelope
        if seq == 0:
            if env.type != "ledger.genesis":
                raise _Failed(0, "trust", f"entry 0 is {env.type}, not ledger.genesis")
            signers.origin = env.origin
            genesis = hashlib.sha256(raw).hexdigest()
            if genesis_sha256 is not None and genesis != genesis_sha256.lower():
                raise _Failed(
                    0, "genesis-pin", "the genesis entry's SHA-256 differs from the pinned one"
                )
        jwk = env.payload.get("signer") if env.type == "ledger.genesis" else env.payload.get("jwk")
        if jwk is not None and env.type in ("ledger.genesis", "signer.added"):
            signers.known[thumbprint(jwk)] = public_key_bytes(jwk)
    origin = signers.origin or ""
    if pin.signers is None:
        raise _Failed(None, "checkpoint-pin", "trusted checkpoint has no signers extension line")
    for kid in pin.signers:
        if kid not in signers.known:
            raise _Failed(None, "checkpoint-pin", f"trusted checkpoint names unknown signer {kid}")
        signers.authorised[kid] = signers.known[kid]
    signed = parse_note(pin.note)
    if signed.text != expected_body(origin, pin.size, pin.root, pin.signers):
        raise _Failed(
            None,
            "checkpoint-pin",
            "trusted checkpoint's origin or signers line is not this ledger's",
        )
    last = decode_entry(_proved_entry(store, pin.size - 1, pin))
    public_key = signers.known.get(last.kid)
    if public_key is None or not signed.verify(origin, public_key):
        raise _Failed(
            pin.size - 1,
            "checkpoint-pin",
            f"trusted checkpoint is not signed by the signer of entry {pin.size - 1}",
        )
    return signers, genesis, public_key
