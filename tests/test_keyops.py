"""Key operations (``KeyManager``) over a real ledger on every backend, with a frozen clock.

A whole rotation schedule is driven with ``rotate``, ``tick`` and ``revoke``; the JWKS they imply
is checked member by member and byte for byte; every change leaves a receipt that verifies offline
and stops verifying when any character changes; the ledger verifies afterwards, and an invalid
transition is refused by the ledger itself without writing anything.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from _keys_helpers import HOUR, follow, store_contents, store_files, ts
from conftest import make_signer
from starter_events import KeyState, KeyTransitionError
from starter_ledger import Ledger
from starter_ledger.clock import FixedClock
from starter_ledger.errors import InputRejectedError
from starter_ledger.jwk import public_jwk_of
from starter_ledger.jwks import jwks_bytes, jwks_digest, key_ring
from starter_ledger.keyops import KeyManager, KeyPolicy
from starter_ledger.keys import Ed25519Signer, thumbprint
from starter_ledger.receipts import verify_receipt
from starter_ledger.tokenkeys import FileTokenKeyStore
from starter_ledger.verify import verify_store

MS = dt.timedelta(milliseconds=1)
ACTOR = "tester"


@pytest.fixture
def store(tmp_path: Path) -> FileTokenKeyStore:
    return FileTokenKeyStore(tmp_path / "token-keys")


@pytest.fixture
def manager(ledger: Ledger, clock: FixedClock) -> KeyManager:
    return KeyManager(ledger, clock=clock)


def _published(manager: KeyManager) -> list[str]:
    return [k["kid"] for k in json.loads(manager.jwks())["keys"]]


def _kid(action: Any, type_: str = "key.staged") -> str:
    (kid,) = [s.kid for s in action.steps if s.type == type_]
    return kid


# -- rotate, tick, revoke ------------------------------------------------------------------------


def test_rotate_stages_a_key_one_cache_lifetime_ahead(
    manager: KeyManager, ledger: Ledger, clock: FixedClock, store: FileTokenKeyStore, signer: Any
) -> None:
    """By default a new key is published now and activates exactly one JWKS cache lifetime later."""
    now = clock.now()
    before = manager.jwks()
    action = manager.rotate(store, signer, ACTOR)
    assert [s.type for s in action.steps] == ["key.staged"]
    record = ledger.key_ring().get(_kid(action))
    assert record is not None
    assert record.state is KeyState.STAGED
    assert record.not_before == ts(now + KeyPolicy().cache_lifetime)
    assert record.not_after == ts(now + HOUR + dt.timedelta(days=90))
    assert (record.token_ttl_seconds, record.store, record.ref) == (3600, store.url, record.kid)
    assert (store.folder / f"{record.kid}.pem").is_file()
    assert action.result is not None
    assert (action.result.first_seq, action.result.size) == (1, 2)
    assert action.jwks_before == jwks_digest(before)
    assert action.jwks_after == jwks_digest(manager.jwks())
    assert _published(manager) == [record.kid]


def test_activation_sooner_than_the_cache_lifetime_is_refused(
    manager: KeyManager, ledger: Ledger, clock: FixedClock, store: FileTokenKeyStore, signer: Any
) -> None:
    """A key cannot be scheduled before every cached JWKS has seen it; nothing is written."""
    before = store_contents(ledger)
    too_soon = clock.now() + HOUR - MS
    with pytest.raises(InputRejectedError, match="sooner than clients") as info:
        manager.rotate(store, signer, ACTOR, activate_at=too_soon)
    assert info.value.exit_code == 3
    assert store_contents(ledger) == before
    assert not store.folder.exists()  # no key was even created
    action = manager.rotate(store, signer, ACTOR, activate_at=clock.now() + HOUR)
    assert action.changed


def test_activate_now_switches_keys_in_one_append(
    manager: KeyManager, ledger: Ledger, clock: FixedClock, store: FileTokenKeyStore, signer: Any
) -> None:
    """An emergency rotation stages, retires the old key (verifying one token lifetime more) and
    activates the new one in a single append with a single checkpoint."""
    old = _kid(manager.rotate(store, signer, ACTOR, activate_now=True))
    clock.advance(dt.timedelta(days=3))
    checkpoints = len(list(ledger.store.iter_checkpoints()))
    action = manager.rotate(store, signer, ACTOR, alg="ES256", activate_now=True)
    new = _kid(action)
    assert [(s.type, s.kid) for s in action.steps] == [
        ("key.staged", new),
        ("key.retired", old),
        ("key.activated", new),
    ]
    assert action.result is not None
    assert (action.result.first_seq, action.result.size) == (3, 6)
    assert len(list(ledger.store.iter_checkpoints())) == checkpoints + 1
    assert ledger.store.latest_checkpoint() == (6, action.result.checkpoint)
    ring = ledger.key_ring()
    assert ring.active("default") == ring.get(new)
    assert ring.get(new).not_before == ts(clock.now())  # type: ignore[union-attr]
    assert ring.get(old).verify_until == ts(clock.now() + HOUR)  # type: ignore[union-attr]
    assert _published(manager) == [new, old]


def test_tick_follows_the_schedule_and_is_idempotent(
    manager: KeyManager, ledger: Ledger, clock: FixedClock, store: FileTokenKeyStore, signer: Any
) -> None:
    """tick does nothing before a key is due, switches keys when it is, expires the old key at
    verify_until, and a second tick at the same time appends nothing."""
    start = clock.now()
    old = _kid(manager.rotate(store, signer, ACTOR, activate_now=True))
    new = _kid(manager.rotate(store, signer, ACTOR))
    clock.moment = start + HOUR - MS
    size = ledger.size()
    idle = manager.tick(signer, ACTOR)
    assert (idle.changed, idle.steps, idle.receipt, ledger.size()) == (False, [], None, size)
    assert idle.jwks_before == idle.jwks_after == jwks_digest(manager.jwks())

    clock.moment = start + HOUR
    switch = manager.tick(signer, ACTOR)
    assert [(s.type, s.kid) for s in switch.steps] == [
        ("key.retired", old),
        ("key.activated", new),
    ]
    assert ledger.size() == size + 2
    assert manager.tick(signer, ACTOR).changed is False
    assert ledger.size() == size + 2
    assert _published(manager) == [new, old]

    clock.moment = start + 2 * HOUR
    assert [(s.type, s.kid) for s in manager.tick(signer, ACTOR).steps] == [("key.expired", old)]
    assert _published(manager) == [new]
    assert manager.tick(signer, ACTOR).steps == []


def test_revoke_takes_a_key_out_of_the_jwks_at_once(
    manager: KeyManager, ledger: Ledger, store: FileTokenKeyStore, signer: Any
) -> None:
    """A revoked key leaves the JWKS in the same append, whatever its state; revoking the active
    key warns that none is left; an unknown or already revoked key is refused."""
    active = _kid(manager.rotate(store, signer, ACTOR, activate_now=True))
    staged = _kid(manager.rotate(store, signer, ACTOR))
    assert _published(manager) == [active, staged]
    gone = manager.revoke(staged, "lost laptop", signer, ACTOR)
    assert gone.warnings == []
    assert _published(manager) == [active]
    cut = manager.revoke(active, "leaked", signer, ACTOR, compromised_since=manager.clock.now())
    assert _published(manager) == []
    assert "no active key now" in cut.warnings[0]
    record = ledger.key_ring().get(active)
    assert record is not None
    assert (record.state, record.reason) == (KeyState.REVOKED, "leaked")

    before = store_contents(ledger)
    with pytest.raises(InputRejectedError, match=f"no key {'A' * 43} in this ledger") as unknown:
        manager.revoke("A" * 43, "x", signer, ACTOR)
    assert active in unknown.value.message
    with pytest.raises(KeyTransitionError, match=f"key {active} is revoked") as again:
        manager.revoke(active, "again", signer, ACTOR)
    assert again.value.exit_code == 10
    assert store_contents(ledger) == before


def test_a_concurrent_switch_cannot_slip_through(
    ledger: Ledger, clock: FixedClock, store: FileTokenKeyStore, signer: Any
) -> None:
    """When another writer switches keys while a rotation is being prepared, the ledger re-checks
    the transitions under its write lock and refuses the stale one, writing nothing."""
    old = _kid(KeyManager(ledger, clock=clock).rotate(store, signer, ACTOR, activate_now=True))
    rival = KeyManager(Ledger(ledger.store, clock=clock), clock=clock)

    class Racing(FileTokenKeyStore):
        def create(self, alg: str) -> Any:
            rival.rotate(store, signer, ACTOR, activate_now=True)  # lands first
            return super().create(alg)

    with pytest.raises(KeyTransitionError, match=f"key {old} is retired"):
        KeyManager(ledger, clock=clock).rotate(
            Racing(store.folder), signer, ACTOR, activate_now=True
        )
    ring = ledger.key_ring()
    assert len(ring.records()) == 2
    assert ring.get(old).state is KeyState.RETIRED  # type: ignore[union-attr]


# -- the JWKS ------------------------------------------------------------------------------------


def test_jwks_publishes_exactly_the_usable_public_keys(
    manager: KeyManager, ledger: Ledger, clock: FixedClock, store: FileTokenKeyStore, signer: Any
) -> None:
    """The JWKS holds the active, staged and still-verifying retired keys (public members, kid =
    thumbprint, alg, use), never revoked or expired ones, and the same bytes however rebuilt."""
    start = clock.now()
    expired = _kid(manager.rotate(store, signer, ACTOR, activate_now=True))
    retired = _kid(manager.rotate(store, signer, ACTOR, activate_now=True))
    active = _kid(manager.rotate(store, signer, ACTOR, alg="ES256"))
    clock.moment = start + HOUR
    manager.tick(signer, ACTOR)
    revoked = _kid(manager.rotate(store, signer, ACTOR))
    manager.revoke(revoked, "test", signer, ACTOR)
    staged = _kid(manager.rotate(store, signer, ACTOR, alg="ES256"))
    ring = ledger.key_ring()
    states = {kid: ring.get(kid).state for kid in (expired, retired, active, revoked, staged)}  # type: ignore[union-attr]
    assert list(states.values()) == [
        KeyState.EXPIRED,
        KeyState.RETIRED,
        KeyState.ACTIVE,
        KeyState.REVOKED,
        KeyState.STAGED,
    ]

    body = manager.jwks()
    keys = json.loads(body)["keys"]
    assert [k["kid"] for k in keys] == [active, staged, retired]
    for key in keys:
        pem = (store.folder / f"{key['kid']}.pem").read_bytes()
        public = public_jwk_of(serialization.load_pem_private_key(pem, password=None))
        assert {m: v for m, v in key.items() if m not in ("kid", "alg", "use")} == public
        assert "d" not in key
        assert key["kid"] == thumbprint(public)
        assert key["use"] == "sig"
        assert key["alg"] == ("ES256" if public["kty"] == "EC" else "EdDSA")
    assert manager.jwks() == body
    assert jwks_bytes(key_ring(ledger.store), clock.now()) == body
    assert KeyManager(Ledger(ledger.store), clock=clock).jwks() == body
    assert json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() == body


# -- receipts ------------------------------------------------------------------------------------


def _receipt(manager: KeyManager, store: FileTokenKeyStore, signer: Any) -> tuple[Any, str]:
    manager.rotate(store, signer, ACTOR, activate_now=True)
    action = manager.rotate(store, signer, ACTOR, activate_now=True)
    assert action.receipt is not None
    return action, action.receipt


def test_a_receipt_verifies_offline_and_says_what_changed(
    manager: KeyManager, ledger: Ledger, store: FileTokenKeyStore, signer: Any
) -> None:
    """A receipt verifies with nothing but itself, pinned to the ledger signer, and records the
    change, its JWKS digests and its entries."""
    action, receipt = _receipt(manager, store, signer)
    check = verify_receipt(receipt, trusted_kids={signer.kid})
    assert check.ok, check.failure
    assert check.signer_kid == signer.kid
    doc = check.document
    assert (doc["action"], doc["key_set"], doc["actor"]) == ("rotate", "default", ACTOR)
    assert doc["kids"] == {
        "staged": [_kid(action)],
        "retired": [_kid(action, "key.retired")],
        "activated": [_kid(action)],
    }
    assert (doc["jwks_before"], doc["jwks_after"]) == (action.jwks_before, action.jwks_after)
    assert [e["seq"] for e in doc["ledger"]["entries"]] == [3, 4, 5]
    assert [e["entry"].encode() for e in doc["ledger"]["entries"]] == list(action.result.entries)
    assert doc["ledger"]["checkpoint"] == ledger.latest_checkpoint()
    assert verify_receipt(receipt.encode() + b"\n").ok


def test_a_receipt_fails_when_any_character_changes(
    manager: KeyManager, store: FileTokenKeyStore, signer: Any
) -> None:
    """Changing any single character of a receipt (header, document or signature) makes it fail."""
    _, receipt = _receipt(manager, store, signer)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    dots = [i for i, c in enumerate(receipt) if c == "."]
    edges = {0, len(receipt) - 1, *dots, *(d - 1 for d in dots), *(d + 1 for d in dots)}
    rng = random.Random(20261124)
    positions = sorted(edges | set(rng.sample(range(len(receipt)), 150)))
    for i in positions:
        new = rng.choice(alphabet.replace(receipt[i], ""))
        tampered = receipt[:i] + new + receipt[i + 1 :]
        check = verify_receipt(tampered)
        assert not check.ok, (i, receipt[i], new)
        assert check.failure


def test_a_receipt_pinned_to_another_signer_fails(
    manager: KeyManager, store: FileTokenKeyStore, signer: Any
) -> None:
    """A receipt is refused when its signer is not among the trusted ledger signers."""
    _, receipt = _receipt(manager, store, signer)
    check = verify_receipt(receipt, trusted_kids={make_signer("someone else").kid})
    assert not check.ok
    assert f"signed by {signer.kid}, which is not a trusted signer" in (check.failure or "")


# -- verification ---------------------------------------------------------------------------------


def test_the_ledger_verifies_after_a_whole_schedule(
    ledger: Ledger, store: FileTokenKeyStore, signer: Any
) -> None:
    """After rotations, ticks and revocations the ledger verifies, and its JWKS digest is the one
    the key manager publishes at the same time."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    clock = FixedClock(now - 150 * dt.timedelta(minutes=1))
    manager = KeyManager(ledger, clock=clock)
    first = _kid(manager.rotate(store, signer, ACTOR, activate_now=True))
    second = _kid(manager.rotate(store, signer, ACTOR, alg="ES256"))
    clock.advance(HOUR)
    assert len(manager.tick(signer, ACTOR).steps) == 2
    clock.moment = now
    assert [s.kid for s in manager.tick(signer, ACTOR).steps] == [first]
    manager.revoke(_kid(manager.rotate(store, signer, ACTOR)), "test", signer, ACTOR)
    staged = _kid(manager.rotate(store, signer, ACTOR))
    # No key changes state within an hour of now: the system clock verify reads sees this JWKS.
    assert ledger.key_ring().next_change(now) == now + HOUR
    assert _published(manager) == [second, staged]

    report = verify_store(ledger.store)
    assert report.ok, report.first_failure
    assert report.size == ledger.size() == 10
    assert report.jwks_digest == jwks_digest(manager.jwks())


def _flip(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with a kid that is not its JWK's thumbprint."""
    return {**payload, "kid": make_signer("not this key").kid}


_INVALID = {
    "activate-active": lambda stage: ("key.activated", follow("key.activated", stage)),
    "stage-twice": lambda stage: ("key.staged", stage),
    "expire-active": lambda stage: ("key.expired", follow("key.expired", stage)),
    "kid-not-thumbprint": lambda stage: (
        "key.revoked",
        _flip(follow("key.revoked", stage, reason="x")),
    ),
}


@pytest.mark.parametrize("case", list(_INVALID))
def test_an_invalid_transition_is_refused_and_nothing_is_written(
    manager: KeyManager,
    ledger: Ledger,
    store: FileTokenKeyStore,
    signer: Ed25519Signer,
    case: str,
) -> None:
    """An append that breaks the key lifecycle raises KeyTransitionError and leaves the store
    byte for byte as it was."""
    action = manager.rotate(store, signer, ACTOR, activate_now=True)
    stage = action.steps[0].payload
    files = store_files(ledger)
    before = store_contents(ledger)
    type_, payload = _INVALID[case](stage)
    with pytest.raises(KeyTransitionError, match="entry 3: ") as info:
        ledger.append(type_, payload, signer, ACTOR)
    assert info.value.exit_code == 10
    assert store_contents(ledger) == before
    assert store_files(ledger) == files
    assert verify_store(ledger.store).ok


def test_verify_names_a_stored_event_that_breaks_the_lifecycle(
    manager: KeyManager,
    ledger: Ledger,
    store: FileTokenKeyStore,
    signer: Ed25519Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key event written past the ledger's checks (here: with them switched off) is caught by
    verify as a key-lifecycle failure at its entry."""
    stage = manager.rotate(store, signer, ACTOR, activate_now=True).steps[0].payload
    with monkeypatch.context() as patch:
        patch.setattr("starter_ledger.ledger.apply_key_event", lambda *args: None)
        ledger.append("key.activated", follow("key.activated", stage), signer, ACTOR)
    report = verify_store(ledger.store)
    assert not report.ok
    assert report.first_failure is not None
    assert (report.first_failure.seq, report.first_failure.check) == (3, "key-lifecycle")
    assert "is active" in report.first_failure.message
