"""The ledger: appends signed entries and answers for its tree, checkpoints and proofs.

For: ``Ledger``, the one write path. An append validates the payload against the event catalog,
checks the trust rules, signs the envelope (which commits to the root of all earlier entries), and
writes the entry, the completed tree nodes and a signed checkpoint in one transaction that expects
the size it built on. It builds first on the head its previous append left; if the store refuses
that (another appender moved the ledger), it takes the write lock, re-reads the head and builds
again, retrying conflicts. Not for: verification, which trusts none of this code's storage
(``verify``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from starter_contracts import Envelope, defaults
from starter_events import (
    KEY_EVENT_TYPES,
    KeyRing,
    latest_version,
    validate_payload,
)
from starter_events.errors import EventError
from starter_ledger.checkpoint import make_checkpoint
from starter_ledger.clock import Clock, SystemClock
from starter_ledger.encoding import b64_encode
from starter_ledger.entry import Entry, decode_entry, encode_entry, format_time
from starter_ledger.errors import (
    ConflictError,
    FormatError,
    InputRejectedError,
    KeyStoreError,
    LedgerError,
    LedgerExistsError,
    LedgerUnavailableError,
    NotAuthorisedError,
)
from starter_ledger.jcs import canonicalize
from starter_ledger.jwks import apply_key_event, key_ring
from starter_ledger.keys import Signer
from starter_ledger.merkle import (
    Frontier,
    consistency_proof,
    frontier_coords,
    inclusion_proof,
    leaf_hash,
)
from starter_ledger.storage import AppendBatch, LedgerStore, NewEntry, open_store
from starter_ledger.trust import SIGNER_EVENT_TYPES, SignerSet, TrustViolation

#: Largest accepted payload (its RFC 8785 form), unless configured otherwise.
DEFAULT_MAX_PAYLOAD_BYTES = defaults.DEFAULT_MAX_PAYLOAD_BYTES
#: How many times ``append`` retries after a concurrent-append conflict.
DEFAULT_RETRIES = 20


@dataclass(frozen=True, slots=True)
class Event:
    """An event to append: its type, payload and (optionally) schema version."""

    type: str
    payload: dict[str, Any]
    schema_version: int | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append wrote."""

    first_seq: int
    size: int
    root: bytes
    checkpoint: str
    entries: tuple[bytes, ...]


#: An event checked against its schema: type, schema version and payload.
_Prepared = tuple[str, int, dict[str, Any]]


@dataclass
class _Head:
    frontier: Frontier
    signers: SignerSet
    root: bytes  # the frontier's root, computed once
    keys: KeyRing
    #: Leaf hash of the last entry (None when empty): the store checks it, so that a head of the
    #: same size but of another history (an append that was rolled back) is never built on.
    last_leaf: bytes | None

    @property
    def size(self) -> int:
        return self.frontier.size


class Ledger:
    """One ledger over one store."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        clock: Clock | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.max_payload_bytes = max_payload_bytes
        self.retries = retries
        self._head: _Head | None = None
        self._valid_envelope_parts: set[tuple[str, str]] = set()
        #: Called with each durable append's result, in order (e.g. to notify replicas). A hook
        #: must not raise: the append is already committed when it runs.
        self.on_append: list[Callable[[Ledger, AppendResult], None]] = []

    @classmethod
    def open(cls, url: str, *, create: bool = False, **kwargs: Any) -> Ledger:
        """Open the ledger at ``url`` (``create`` makes an empty store where none exists)."""
        return cls(open_store(url, create=create), **kwargs)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------

    def size(self) -> int:
        return self.store.size()

    def frontier(self, size: int | None = None) -> Frontier:
        """The stored compact range of the tree at ``size`` (default: now)."""
        n = self.store.size() if size is None else size
        return Frontier(n, self.store.read_nodes(frontier_coords(n)))

    def root(self, size: int | None = None) -> bytes:
        return self.frontier(size).root()

    def key_ring(self, size: int | None = None) -> KeyRing:
        """The state of every token-signing key after the first ``size`` entries (default: all)."""
        return key_ring(self.store, size)

    def signer_set(self, size: int | None = None) -> SignerSet:
        """Authorised signers after the first ``size`` entries, from the stored signer events."""
        n = self.store.size() if size is None else size
        signers = SignerSet()
        for seq, raw in self.store.entries_of_types(SIGNER_EVENT_TYPES, end=n):
            entry = decode_entry(raw)
            env = entry.envelope
            signers.size = seq
            try:
                signers.apply(seq, env.origin, env.type, env.payload, entry.kid)
            except TrustViolation as e:
                raise LedgerUnavailableError(
                    f"stored entry {seq} breaks the trust rules: {e.message}",
                    hint="run 'starter-cli ledger verify'",
                ) from None
        signers.size = n
        return signers

    def origin(self) -> str:
        origin = self.signer_set(1).origin
        if origin is None:
            raise LedgerUnavailableError(
                f"ledger {self.store.url} is empty", hint="run 'starter-cli ledger init'"
            )
        return origin

    def entry(self, seq: int) -> Entry:
        for _, raw in self.store.iter_entries(seq, seq + 1):
            return decode_entry(raw)
        raise InputRejectedError(f"no entry {seq}: the ledger has {self.store.size()} entries")

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, Entry]]:
        for seq, raw in self.store.iter_entries(start, end):
            yield seq, decode_entry(raw)

    def latest_checkpoint(self) -> str:
        found = self.store.latest_checkpoint()
        if found is None:
            raise LedgerUnavailableError(
                f"ledger {self.store.url} has no checkpoint", hint="run 'starter-cli ledger init'"
            )
        return found[1]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        n = self._size_arg(size)
        return inclusion_proof(index, n, self.store.read_nodes)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        n = self._size_arg(new)
        return consistency_proof(old, n, self.store.read_nodes)

    def leaf_hash(self, seq: int) -> bytes:
        return self.store.read_nodes([(0, seq)])[0]

    def _size_arg(self, size: int | None) -> int:
        current = self.store.size()
        if size is None:
            return current
        if not 1 <= size <= current:
            raise InputRejectedError(
                f"tree size {size} is outside 1..{current}", hint=f"use a size up to {current}"
            )
        return size

    # -- writing -------------------------------------------------------------------------

    def init(
        self, origin: str, signer: Signer, actor: str, *, description: str = ""
    ) -> AppendResult:
        """Append the genesis entry naming ``origin`` and ``signer`` as first signer."""
        if self.store.size():
            raise LedgerExistsError(
                f"ledger {self.store.url} already has {self.store.size()} entries",
                hint="use it as it is, or choose another --ledger",
            )
        payload = {"description": description, "origin": origin, "signer": signer.public_jwk}
        return self._append([Event("ledger.genesis", payload)], signer, actor, origin=origin)

    def append(
        self,
        type_: str,
        payload: dict[str, Any],
        signer: Signer,
        actor: str,
        *,
        schema_version: int | None = None,
    ) -> AppendResult:
        """Append one event, retrying on conflicts with concurrent appenders."""
        return self.append_many([Event(type_, payload, schema_version)], signer, actor)

    def append_many(self, events: Sequence[Event], signer: Signer, actor: str) -> AppendResult:
        """Append several events in one transaction (one checkpoint at the end)."""
        if not events:
            raise InputRejectedError("nothing to append")
        return self._append(events, signer, actor, origin=None)

    def _load_head(self) -> _Head:
        """The head (tree and signers) as of now; call with the write lock held."""
        size = self.store.size()
        coords = frontier_coords(size)
        hashes = self.store.read_nodes([*coords, (0, size - 1)] if size else coords)
        frontier = Frontier(size, hashes[: len(coords)])
        self._head = _Head(
            frontier,
            self.signer_set(size),
            frontier.root(),
            key_ring(self.store, size),
            hashes[-1] if size else None,
        )
        return self._head

    def _append(
        self, events: Sequence[Event], signer: Signer, actor: str, origin: str | None
    ) -> AppendResult:
        result = self._commit([self._prepare(e) for e in events], signer, actor, origin)
        for hook in self.on_append:
            hook(self, result)
        return result

    def _commit(
        self, prepared: list[_Prepared], signer: Signer, actor: str, origin: str | None
    ) -> AppendResult:
        kept, self._head = self._head, None
        if kept is not None:
            done = self._append_on_kept(kept, prepared, signer, actor, origin)
            if done is not None:
                return done
        for attempt in range(self.retries + 1):
            try:
                # Lock first, then read: a busy writer elsewhere cannot make this one's view stale.
                with self.store.writing():
                    batch, head, result = self._build(
                        self._load_head(), prepared, signer, actor, origin
                    )
                    self.store.append(batch)
                self._head = head
                return result
            except ConflictError:
                self._head = None
                if attempt == self.retries:
                    raise
                time.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
            except BaseException:
                self._head = None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_on_kept(
        self,
        kept: _Head,
        prepared: list[_Prepared],
        signer: Signer,
        actor: str,
        origin: str | None,
    ) -> AppendResult | None:
        """Optimistic: build on the head this object's last append left, without the lock; the
        store writes the batch only if the ledger still ends where that head does (its size and
        last entry). None when the head was stale: nothing was written, and what failed on it
        (the store's refusal, or a trust or key rule that another appender's entries change) is
        decided again on a head read under the lock."""
        try:
            batch, head, result = self._build(kept, prepared, signer, actor, origin)
        except KeyStoreError:
            raise  # the signer failed, not the view: asking it again would not help
        except (LedgerError, EventError):
            return None
        try:
            self.store.append(batch)
        except ConflictError:
            return None
        self._head = head
        return result

    def _prepare(self, event: Event) -> _Prepared:
        version = (
            latest_version(event.type) if event.schema_version is None else event.schema_version
        )
        model = validate_payload(event.type, version, event.payload)
        payload = model.model_dump(mode="json")
        size = len(canonicalize(payload))
        if size > self.max_payload_bytes:
            raise InputRejectedError(
                f"payload of {event.type} is {size} bytes, over the limit of "
                f"{self.max_payload_bytes}",
                hint="shrink it, or raise the limit with --max-payload-bytes / "
                "STARTER_MAX_PAYLOAD_BYTES",
            )
        return event.type, version, payload

    def _build(
        self,
        head: _Head,
        prepared: Sequence[_Prepared],
        signer: Signer,
        actor: str,
        origin: str | None,
    ) -> tuple[AppendBatch, _Head, AppendResult]:
        """Sign the entries and the checkpoint that follow ``head``; writes nothing."""
        if origin is not None and head.size:
            raise LedgerExistsError(
                f"ledger {self.store.url} already has {head.size} entries",
                hint="use it as it is, or choose another --ledger",
            )
        frontier = head.frontier.copy()
        signers = head.signers.copy()
        keys = head.keys
        ledger_origin = origin if head.size == 0 else signers.origin
        if ledger_origin is None:
            raise LedgerUnavailableError(
                f"ledger {self.store.url} is empty", hint="run 'starter-cli ledger init' first"
            )
        start = frontier.size
        now = format_time(self.clock.now())
        new_entries: list[NewEntry] = []
        nodes: list[tuple[int, int, bytes]] = []
        root = head.root
        for i, (type_, version, payload) in enumerate(prepared):
            seq = frontier.size
            envelope = {
                "actor": actor,
                "occurred_at": now,
                "origin": ledger_origin,
                "payload": payload,
                "prev_root": b64_encode(root),
                "schema_version": version,
                "seq": seq,
                "type": type_,
            }
            if i == 0 and (actor, ledger_origin) not in self._valid_envelope_parts:
                # Envelopes differ only in fields that are valid by construction (seq, prev_root,
                # a registered type and version, a payload its model accepted, our own clock's
                # time) and in actor and origin: one full validation per actor and origin covers
                # every envelope this ledger object builds with them.
                try:
                    Envelope.model_validate(envelope)
                except ValidationError as e:
                    err = e.errors(include_url=False)[0]
                    raise InputRejectedError(
                        f"entry field {'.'.join(map(str, err['loc']))} is invalid: {err['msg']}"
                    ) from None
                self._valid_envelope_parts.add((actor, ledger_origin))
            try:
                signers.apply(seq, ledger_origin, type_, payload, signer.kid)
            except TrustViolation as e:
                if e.check == "authorisation":
                    raise NotAuthorisedError(
                        f"key {signer.kid} may not sign entry {seq}: {e.message}",
                        hint="sign with an authorised signer's key (see 'starter-cli ledger "
                        "signer list')",
                    ) from None
                raise InputRejectedError(
                    e.message, hint="see the trust rules in docs/ledger-format.md, section 9"
                ) from None
            except FormatError as e:
                raise InputRejectedError(e.message) from None
            if type_ in KEY_EVENT_TYPES:
                if keys is head.keys:
                    keys = keys.copy()
                apply_key_event(keys, seq, type_, payload)  # KeyTransitionError: nothing written
            raw = encode_entry(envelope, signer)
            new_entries.append(NewEntry(seq, raw, type_, signer.kid))
            leaf = leaf_hash(raw)
            nodes.extend(frontier.append(leaf))
            root = frontier.root()
        note = make_checkpoint(
            ledger_origin, frontier.size, root, signers.authorised.keys(), signer
        )
        batch = AppendBatch(start, new_entries, nodes, (frontier.size, note), head.last_leaf)
        result = AppendResult(
            first_seq=start,
            size=frontier.size,
            root=root,
            checkpoint=note,
            entries=tuple(e.entry for e in new_entries),
        )
        return batch, _Head(frontier, signers, root, keys, leaf), result


def parse_payload_json(data: bytes, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Parse a payload given as JSON bytes (a file or stdin), refusing oversize or non-objects."""
    if len(data) > max_bytes:
        raise InputRejectedError(
            f"payload is {len(data)} bytes, over the limit of {max_bytes}",
            hint="shrink it, or raise the limit with --max-payload-bytes / "
            "STARTER_MAX_PAYLOAD_BYTES",
        )
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, huge integers, deep nesting
        raise InputRejectedError(
            f"payload is not valid JSON: {str(e)[:160]}",
            hint='pass a JSON object, e.g. \'{"text": "hi"}\'',
        ) from None
    if not isinstance(value, dict):
        raise InputRejectedError(
            f"payload must be a JSON object, not {type(value).__name__}",
            hint='wrap it in an object, e.g. \'{"text": "hi"}\'',
        )
    return value
