"""Verification: replays a ledger from its verbatim bytes and trusts nothing else.

For: ``verify_store`` (a database), ``verify_bundle`` (an export file, offline) and
``verify_from_checkpoint`` (only what was appended since a trusted checkpoint). Each entry is
checked for: canonical encoding, contiguous ``seq``, ``prev_root`` = the recomputed root of all
earlier entries, a payload valid for its type and version, an Ed25519 signature by a key authorised
at that position, and the trust rules; every stored checkpoint must equal the recomputed tree and
name the right key; pins (``genesis_sha256``, a trusted checkpoint) must hold. Parsing and
signature checks run in worker processes; the tree and the trust rules are replayed in order in
this process, so memory stays flat however long the ledger is. The outcome is a ``VerifyReport``: a
failure is a value naming the first bad ``seq`` and check, never an exception. Not for: repairing
anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any, Protocol

from starter_events import (
    KEY_EVENT_TYPES,
    EventError,
    KeyRing,
    KeyTransitionError,
    validate_payload,
)
from starter_events.releases import ReleaseState
from starter_ledger.checkpoint import expected_body, signers_from_extensions
from starter_ledger.clock import SystemClock
from starter_ledger.encoding import b64_decode, b64_encode
from starter_ledger.entry import decode_entry
from starter_ledger.errors import FormatError, LedgerError, ProofError
from starter_ledger.jwks import apply_key_event, jwks_bytes, jwks_digest, key_ring
from starter_ledger.keys import Verifier, public_key_bytes, thumbprint
from starter_ledger.merkle import (
    Frontier,
    NodeCoord,
    consistency_proof,
    frontier_coords,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from starter_ledger.note import parse_checkpoint, parse_note
from starter_ledger.trust import SIGNER_EVENT_TYPES, SignerSet, TrustViolation

#: Release events whose order the replay checks: versions and tags only go up, and a tag names
#: only artifacts published before it for its version.
RELEASE_RULE_TYPES = frozenset({"version.bumped", "artifact.published", "release.tagged"})

#: Entries per unit of work sent to a worker process.
CHUNK = 2048
#: Below this many entries verification runs in-process (starting workers costs more).
PARALLEL_THRESHOLD = 20_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Failure:
    """The first check that failed: at which entry (or None), which check, and why."""

    seq: int | None
    check: str
    message: str


@dataclass
class VerifyReport:
    """The outcome of a verification."""

    ok: bool
    size: int
    root_hash: str
    origin: str | None
    source: str
    genesis_sha256: str | None = None
    #: Entries checked one by one (all of them, or those after ``verified_from``).
    entries_checked: int = 0
    checkpoints_checked: int = 0
    #: Size of the trusted checkpoint an incremental verification started from.
    verified_from: int | None = None
    signers: list[str] = field(default_factory=list)
    #: ``sha256:<hex>`` of the JWKS the key events imply now (replayed entry by entry).
    jwks_digest: str | None = None
    first_failure: Failure | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Failed(Exception):
    def __init__(self, seq: int | None, check: str, message: str) -> None:
        super().__init__(message)
        self.failure = Failure(seq, check, message)


class Source(Protocol):
    """Where entries and checkpoints come from: a store or a bundle."""

    def iter_entries(self, start: int = 0, chunk: int = ...) -> Iterator[tuple[int, bytes]]: ...

    def iter_checkpoints(self, start_size: int = 0) -> Iterator[tuple[int, str]]: ...


# -- work done in worker processes ---------------------------------------------------------

_verifiers: dict[bytes, Verifier] = {}


def _verifier(public_key: bytes) -> Verifier:
    v = _verifiers.get(public_key)
    if v is None:
        if len(_verifiers) > 4096:
            _verifiers.clear()
        v = _verifiers[public_key] = Verifier(public_key)
    return v


# One checked entry: (row seq, leaf hash, info or None, (check, message) or None).
_Checked = tuple[int, bytes, tuple[Any, ...] | None, tuple[str, str] | None]


def check_chunk(rows: list[tuple[int, bytes]], keys: dict[str, bytes]) -> list[_Checked]:
    """Decode, validate and signature-check entries; keys maps kid -> public key."""
    sha256 = hashlib.sha256
    out: list[_Checked] = []
    local = dict(keys)
    for seq, raw in rows:
        lh = sha256(b"\x00" + raw).digest()
        try:
            entry = decode_entry(raw)
            env = entry.envelope
            validate_payload(env.type, env.schema_version, env.payload)
        except FormatError as e:
            out.append((seq, lh, None, ("entry-format", e.message)))
            continue
        except EventError as e:
            out.append((seq, lh, None, ("payload", e.message)))
            continue
        except (ValueError, TypeError, RecursionError) as e:  # hostile bytes must not crash
            out.append((seq, lh, None, ("entry-format", f"entry cannot be decoded: {e!s:.120}")))
            continue
        kid = entry.kid
        payload = env.payload
        if env.type == "ledger.genesis":
            local.setdefault(thumbprint(payload["signer"]), public_key_bytes(payload["signer"]))
        public_key = local.get(kid)
        sig: bool | None = None
        if public_key is not None:
            sig = _verifier(public_key).verify(entry.jws.signing_input, entry.jws.signature)
        if env.type == "signer.added":
            local.setdefault(thumbprint(payload["jwk"]), public_key_bytes(payload["jwk"]))
        deferred = (entry.jws.signing_input, entry.jws.signature) if sig is None else None
        genesis = sha256(raw).hexdigest() if env.seq == 0 else None
        # Only the payloads the in-order replay needs travel back from the workers.
        rule_payload = (
            payload
            if env.type in SIGNER_EVENT_TYPES
            or env.type in KEY_EVENT_TYPES
            or env.type in RELEASE_RULE_TYPES
            else None
        )
        info = (
            env.seq,
            env.origin,
            env.type,
            env.prev_root,
            kid,
            rule_payload,
            sig,
            deferred,
            genesis,
        )
        out.append((seq, lh, info, None))
    return out


def _check_chunk_job(args: tuple[list[tuple[int, bytes]], dict[str, bytes]]) -> list[_Checked]:
    return check_chunk(*args)


def _chunks(it: Iterator[tuple[int, bytes]], n: int) -> Iterator[list[tuple[int, bytes]]]:
    """Chunks of ``n`` entries; on a read error, the entries read so far come first."""
    while True:
        chunk: list[tuple[int, bytes]] = []
        try:
            chunk.extend(islice(it, n))
        except LedgerError:
            if chunk:
                yield chunk
            raise
        if not chunk:
            return
        yield chunk


def _checked(
    entries: Iterator[tuple[int, bytes]], keys: Callable[[], dict[str, bytes]], jobs: int
) -> Iterator[_Checked]:
    chunks = _chunks(entries, CHUNK)
    if jobs <= 1:
        for chunk in chunks:
            yield from check_chunk(chunk, keys())
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method))
    pending: deque[Future[list[_Checked]]] = deque()
    try:
        try:
            for chunk in chunks:
                pending.append(pool.submit(_check_chunk_job, (chunk, keys())))
                if len(pending) >= 2 * jobs:
                    yield from pending.popleft().result()
        except LedgerError:
            while pending:  # entries read before the error are checked (and may fail) first
                yield from pending.popleft().result()
            raise
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- replay in order in this process -------------------------------------------------------


@dataclass
class _Pin:
    size: int
    root: bytes
    note: str
    signers: list[str] | None


class _Replay:
    """Applies checked entries in order: tree, trust rules, checkpoints, pins."""

    def __init__(
        self,
        frontier: Frontier,
        signers: SignerSet,
        checkpoints: Iterator[tuple[int, str]],
        final_size: int,
        pin: _Pin | None,
        *,
        live: bool = False,
    ) -> None:
        self.frontier = frontier
        self.signers = signers
        # A live store may gain entries and checkpoints while it is verified: only checkpoints up
        # to the size read at the start belong to this verification.
        if live:
            checkpoints = (c for c in checkpoints if c[0] <= final_size)
        self.checkpoints = checkpoints
        self.next_cp: tuple[int, str] | None = None  # fetched when first needed
        self.final_size = final_size
        self.final_checked = False
        #: Stored tree nodes to compare with the recomputed ones, when the source has them.
        self.stored_nodes: deque[tuple[int, bytes]] | None = None
        self.pin = pin
        self.genesis_sha256: str | None = None
        self.checkpoints_checked = 0
        self.entries_checked = 0
        self.last_kid: str | None = None
        self.keys = KeyRing()
        #: The newest stored checkpoint note checked so far (the final one, once finished).
        self.last_checkpoint: str | None = None
        #: The moment the JWKS projection is taken at (None: the system clock's now).
        self.now: dt.datetime | None = None
        self.releases = ReleaseState()
        #: False when the replay starts after a trusted checkpoint: the release rules need the
        #: whole history (a full verification checks them).
        self.check_releases = True
        #: (version, file) -> sha256 of every artifact.published so far.
        self.published: dict[tuple[str, str], str] = {}
        self._prev_root = b64_encode(frontier.root())

    def feed(self, item: _Checked) -> None:
        seq, lh, info, err = item
        expected = self.frontier.size
        if seq != expected:
            if seq > expected:
                raise _Failed(
                    expected, "seq", f"entry {expected} is missing (next stored is {seq})"
                )
            raise _Failed(seq, "seq", f"entry {seq} appears twice or out of order")
        if err is not None or info is None:
            raise _Failed(seq, *(err or ("entry-format", "entry could not be decoded")))
        env_seq, origin, type_, prev_root, kid, payload, sig, deferred, genesis = info
        if env_seq != seq:
            raise _Failed(seq, "seq", f"entry at position {seq} says it is entry {env_seq}")
        if genesis is not None:
            self.genesis_sha256 = genesis
        if seq == 0 and type_ != "ledger.genesis":
            raise _Failed(0, "trust", f"entry 0 is {type_}, not ledger.genesis")
        if prev_root != self._prev_root:
            raise _Failed(
                seq, "prev-root", f"entry {seq} commits to a history other than the one stored"
            )
        if sig is None:
            if seq == 0 and type_ == "ledger.genesis" and payload is not None:
                public_key: bytes | None = public_key_bytes(payload["signer"])
            else:
                public_key = self.signers.known.get(kid)
            if public_key is None:
                raise _Failed(seq, "authorisation", f"entry {seq} is signed by unknown key {kid}")
            sig = _verifier(public_key).verify(*deferred)
        if not sig:
            raise _Failed(seq, "signature", f"signature of entry {seq} (key {kid}) does not verify")
        try:
            self.signers.apply(seq, origin, type_, payload or {}, kid)
        except TrustViolation as e:
            raise _Failed(seq, e.check, e.message) from None
        except FormatError as e:
            raise _Failed(seq, "payload", e.message) from None
        if type_ in KEY_EVENT_TYPES:
            try:
                apply_key_event(self.keys, seq, type_, payload or {})
            except KeyTransitionError as e:
                raise _Failed(seq, "key-lifecycle", e.message) from None
        if type_ in RELEASE_RULE_TYPES and self.check_releases:
            self._check_release(seq, type_, payload or {})
        created = self.frontier.append(lh)
        if self.stored_nodes is not None:
            while self.stored_nodes and self.stored_nodes[0][0] < seq:
                self.stored_nodes.popleft()
            stored = self.stored_nodes.popleft()[1] if self.stored_nodes else b""
            if stored != b"".join(h for _, _, h in created):
                raise _Failed(
                    seq, "tree-nodes", f"the tree nodes stored with entry {seq} are not its own"
                )
        root = self.frontier.root()
        self._prev_root = b64_encode(root)
        self.last_kid = kid
        self.entries_checked += 1
        size = self.frontier.size
        if self.next_cp is None:
            self.next_cp = next(self.checkpoints, None)
        while self.next_cp is not None and self.next_cp[0] <= size:
            cp_size, note = self.next_cp
            if cp_size < size:
                raise _Failed(
                    None, "checkpoint", f"stored checkpoint for size {cp_size} is out of order"
                )
            self._check_checkpoint(note, root, full=cp_size == self.final_size)
            self.final_checked = self.final_checked or cp_size == self.final_size
            self.next_cp = next(self.checkpoints, None)
        if self.pin is not None and self.pin.size == size:
            self._check_pin(root)

    def _check_release(self, seq: int, type_: str, payload: dict[str, Any]) -> None:
        """Versions and release tags only go up; a tag names only published artifacts."""
        if type_ == "artifact.published":
            self.published[(payload["version"], payload["file"])] = payload["sha256"]
        elif type_ == "release.tagged":
            for artifact in payload["artifacts"]:
                sha = self.published.get((payload["version"], artifact["file"]))
                if sha != artifact["sha256"]:
                    raise _Failed(
                        seq,
                        "release-projection",
                        f"release {payload['version']} names artifact {artifact['file']} "
                        "that no earlier artifact.published records with that digest",
                    )
        before = len(self.releases.problems)
        self.releases.apply(seq, "", type_, payload)
        if len(self.releases.problems) > before:
            raise _Failed(seq, "release-projection", self.releases.problems[-1])

    def _check_checkpoint(self, note: str, root: bytes, *, full: bool) -> None:
        size = self.frontier.size
        origin = self.signers.origin or ""
        body = expected_body(origin, size, root, self.signers.authorised)
        public_key = self.signers.known[self.last_kid or ""]
        prefix = f"{body}\n\u2014 {origin} "
        if not note.startswith(prefix):
            raise _Failed(
                size - 1, "checkpoint", f"stored checkpoint for size {size} differs from the tree"
            )
        try:
            signed = parse_note(note)
        except FormatError as e:
            raise _Failed(
                size - 1, "checkpoint", f"checkpoint for size {size}: {e.message}"
            ) from None
        if signed.text != body:
            raise _Failed(
                size - 1, "checkpoint", f"stored checkpoint for size {size} differs from the tree"
            )
        # The newest checkpoint's signature is verified; older ones must name the right key (each
        # entry already signs the root before it: docs/adr/0005-checkpoint-signature-checks.md).
        ok = signed.verify(origin, public_key) if full else signed.has_key(origin, public_key)
        if not ok:
            raise _Failed(
                size - 1,
                "checkpoint",
                f"checkpoint for size {size} is not signed by the signer of entry {size - 1}",
            )
        self.checkpoints_checked += 1
        self.last_checkpoint = note

    def _check_pin(self, root: bytes) -> None:
        if self.pin is None:
            return
        size = self.pin.size
        if root != self.pin.root:
            raise _Failed(
                size - 1,
                "checkpoint-pin",
                f"the ledger's tree at size {size} differs from the trusted checkpoint: "
                "history was rewritten",
            )
        origin = self.signers.origin or ""
        expected = expected_body(origin, size, root, self.signers.authorised)
        signed = parse_note(self.pin.note)
        if signed.text != expected:
            raise _Failed(
                size - 1,
                "checkpoint-pin",
                f"trusted checkpoint's origin or signers differ from the ledger's at size {size}",
            )
        pub = self.signers.known[self.last_kid or ""]
        if not signed.verify(origin, pub):
            raise _Failed(
                size - 1,
                "checkpoint-pin",
                f"trusted checkpoint is not signed by the signer of entry {size - 1}",
            )

    def finish(self) -> None:
        size = self.frontier.size
        if self.next_cp is None:
            self.next_cp = next(self.checkpoints, None)
        if self.next_cp is not None:
            raise _Failed(
                size,
                "checkpoint",
                f"a checkpoint for size {self.next_cp[0]} is stored but the ledger has {size} "
                "entries: entries were removed",
            )
        if self.pin is not None and size < self.pin.size:
            raise _Failed(
                size,
                "checkpoint-pin",
                f"the ledger has {size} entries, fewer than the trusted checkpoint's "
                f"{self.pin.size}: it was truncated",
            )
        if size != self.final_size:
            raise _Failed(
                size, "seq", f"the ledger claims {self.final_size} entries but holds {size}"
            )
        if not self.final_checked and size > 0:
            raise _Failed(
                size - 1, "checkpoint", f"no checkpoint is stored for the ledger's size {size}"
            )


def _parse_pin(note: str) -> _Pin:
    try:
        signed = parse_note(note)
        cp = parse_checkpoint(signed.text)
    except FormatError as e:
        raise _Failed(
            None, "checkpoint-pin", f"trusted checkpoint is malformed: {e.message}"
        ) from None
    return _Pin(cp.size, b64_decode(cp.root_hash), note, signers_from_extensions(cp.extensions))


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


def _report(replay: _Replay, source: str, failure: Failure | None, **extra: Any) -> VerifyReport:
    now = replay.now or SystemClock().now()
    jwks = jwks_digest(jwks_bytes(replay.keys, now)) if replay.keys.records() else None
    return VerifyReport(
        ok=failure is None,
        size=replay.frontier.size,
        root_hash=b64_encode(replay.frontier.root()),
        origin=replay.signers.origin,
        source=source,
        genesis_sha256=replay.genesis_sha256,
        entries_checked=replay.entries_checked,
        checkpoints_checked=replay.checkpoints_checked,
        signers=sorted(replay.signers.authorised),
        jwks_digest=jwks,
        first_failure=failure,
        **extra,
    )


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
