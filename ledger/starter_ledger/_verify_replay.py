"""Verification, part 2: the in-order replay of checked entries, and its outcome.

For: ``_Replay``, which applies the entries checked by the workers (``_verify_chunks``) one by one
in this process: contiguous ``seq``, ``prev_root``, deferred signatures, the trust rules, the key
lifecycle, the release rules, the tree and its stored nodes, stored checkpoints and a trusted pin;
``_parse_pin``; and the value types of the outcome (``Failure``, ``VerifyReport``) with
``_report``, which builds one from a replay. A failed check raises ``_Failed`` inside the replay
and becomes a ``Failure`` value in the report. Not for: reading a source or driving the workers
(``_verify_run``), nor the public API (``starter_ledger.verify``).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from starter_events import KEY_EVENT_TYPES, KeyRing, KeyTransitionError
from starter_events.releases import ReleaseState
from starter_ledger._verify_chunks import RELEASE_RULE_TYPES, _Checked, _verifier
from starter_ledger.checkpoint import expected_body, signers_from_extensions
from starter_ledger.clock import SystemClock
from starter_ledger.encoding import b64_decode, b64_encode
from starter_ledger.errors import FormatError
from starter_ledger.jwks import apply_key_event, jwks_bytes, jwks_digest
from starter_ledger.keys import public_key_bytes
from starter_ledger.merkle import Frontier
from starter_ledger.note import parse_checkpoint, parse_note
from starter_ledger.trust import SignerSet, TrustViolation


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
