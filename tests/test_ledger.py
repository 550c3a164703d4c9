"""The ledger's write path and trust model, proved by the verifier on both backends.

Every scenario ends with ``verify_store`` reporting ok, so the rules ``Ledger.append`` enforces and
the rules ``verify`` replays are the same rules.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from conftest import ORIGIN, make_signer
from starter_events import PayloadInvalidError, UnknownEventTypeError
from starter_ledger import Ed25519Signer, Event, Ledger, MemoryStore
from starter_ledger.bundle import BundleSource, export_bundle
from starter_ledger.checkpoint import SIGNERS_EXTENSION
from starter_ledger.clock import FixedClock
from starter_ledger.encoding import b64_encode
from starter_ledger.errors import (
    InputRejectedError,
    LedgerExistsError,
    LedgerUnavailableError,
    NotAuthorisedError,
)
from starter_ledger.jws import parse_compact
from starter_ledger.keys import Verifier, public_key_bytes
from starter_ledger.merkle import EMPTY_ROOT, leaf_hash, verify_consistency, verify_inclusion
from starter_ledger.note import parse_checkpoint, parse_note
from starter_ledger.trust import make_proof_of_possession
from starter_ledger.verify import VerifyReport, verify_bundle, verify_from_checkpoint, verify_store


def _snapshot(led: Ledger) -> tuple[object, ...]:
    """Everything stored: entries, checkpoints, root."""
    store = led.store
    return (
        store.size(),
        list(store.iter_entries()),
        list(store.iter_checkpoints()),
        led.root(),
    )


def _ok(led: Ledger, **kwargs: Any) -> VerifyReport:
    report = verify_store(led.store, **kwargs)
    assert report.ok, report.first_failure
    assert report.size == led.size()
    assert report.root_hash == b64_encode(led.root())
    assert report.entries_checked == led.size()
    return report


def _note(led: Ledger, signer: Ed25519Signer, text: str = "hello") -> None:
    led.append("note.recorded", {"text": text}, signer, "tester")


def _add_signer(
    led: Ledger, by: Ed25519Signer, new: Ed25519Signer, *, pop: str | None = None
) -> None:
    payload = {
        "jwk": new.public_jwk,
        "proof_of_possession": pop or make_proof_of_possession(ORIGIN, new),
        "note": "welcome",
    }
    led.append("signer.added", payload, by, "tester")


def _revoke(led: Ledger, by: Ed25519Signer, kid: str) -> None:
    led.append("signer.revoked", {"kid": kid, "reason": "rotated"}, by, "tester")


# -- genesis -------------------------------------------------------------------------------------


def test_genesis_is_self_signed(ledger: Ledger, signer: Ed25519Signer) -> None:
    """The first entry names the origin and the first signer, and is signed by that signer."""
    assert ledger.size() == 1
    genesis = ledger.entry(0)
    env = genesis.envelope
    assert env.type == "ledger.genesis"
    assert env.seq == 0
    assert env.origin == ORIGIN
    assert env.actor == "tester"
    assert env.occurred_at == "2026-11-24T12:00:00.000Z"
    assert env.prev_root == b64_encode(EMPTY_ROOT)
    assert env.payload == {"description": "", "origin": ORIGIN, "signer": signer.public_jwk}
    assert genesis.kid == signer.kid
    verifier = Verifier(public_key_bytes(signer.public_jwk))
    assert verifier.verify(genesis.jws.signing_input, genesis.jws.signature)
    assert ledger.origin() == ORIGIN
    assert set(ledger.signer_set().authorised) == {signer.kid}
    assert ledger.root() == leaf_hash(genesis.raw)
    _ok(ledger)


def test_init_twice_is_refused(ledger: Ledger, signer: Ed25519Signer) -> None:
    """Initialising an existing ledger fails (exit 8) and leaves it as it was."""
    before = _snapshot(ledger)
    with pytest.raises(LedgerExistsError) as info:
        ledger.init(ORIGIN, signer, "tester")
    assert info.value.exit_code == 8
    with pytest.raises(LedgerExistsError):
        ledger.init("example.com/other", make_signer("other"), "tester")
    assert _snapshot(ledger) == before
    _ok(ledger)


def test_append_to_an_empty_ledger_is_refused(signer: Ed25519Signer, clock: FixedClock) -> None:
    """Appending before init fails: a ledger always starts with its genesis."""
    led = Ledger(MemoryStore(), clock=clock)
    with pytest.raises(LedgerUnavailableError, match="empty"):
        _note(led, signer)
    assert led.size() == 0
    assert not verify_store(led.store).ok


def test_invalid_origin_is_refused(signer: Ed25519Signer, clock: FixedClock) -> None:
    """An origin with spaces or '+' (it is the checkpoint key name) cannot start a ledger."""
    led = Ledger(MemoryStore(), clock=clock)
    for origin in ("has space", "a+b", ""):
        with pytest.raises((InputRejectedError, PayloadInvalidError)):
            led.init(origin, signer, "tester")
    assert led.size() == 0


# -- appends and entries -------------------------------------------------------------------------


def test_entries_chain_their_previous_roots(ledger: Ledger, signer: Ed25519Signer) -> None:
    """Each entry commits to the root of every entry before it, so history cannot be reordered."""
    for i in range(5):
        _note(ledger, signer, f"note {i}")
    for seq, entry in ledger.entries():
        assert entry.envelope.seq == seq
        assert entry.envelope.prev_root == b64_encode(ledger.root(seq) if seq else EMPTY_ROOT)
    _ok(ledger)


def test_append_result_and_proofs(ledger: Ledger, signer: Ed25519Signer) -> None:
    """An append reports what it wrote, and the ledger proves it with RFC 9162 proofs."""
    result = ledger.append("note.recorded", {"text": "hi"}, signer, "tester")
    assert result.first_seq == 1
    assert result.size == 2
    assert result.root == ledger.root()
    assert result.entries == (ledger.entry(1).raw,)
    assert result.checkpoint == ledger.latest_checkpoint()
    for seq in range(2):
        proof = ledger.inclusion_proof(seq)
        verify_inclusion(ledger.leaf_hash(seq), seq, 2, proof, ledger.root())
        assert ledger.leaf_hash(seq) == leaf_hash(ledger.entry(seq).raw)
    verify_consistency(1, 2, ledger.consistency_proof(1), ledger.root(1), ledger.root(2))
    with pytest.raises(InputRejectedError):
        ledger.inclusion_proof(0, 3)
    with pytest.raises(InputRejectedError):
        ledger.entry(7)
    _ok(ledger)


def test_append_many_writes_one_checkpoint(ledger: Ledger, signer: Ed25519Signer) -> None:
    """Appending several events at once writes them together under one checkpoint."""
    events = [Event("note.recorded", {"text": f"n{i}"}) for i in range(3)]
    result = ledger.append_many(events, signer, "tester")
    assert (result.first_seq, result.size) == (1, 4)
    assert len(result.entries) == 3
    assert [size for size, _ in ledger.store.iter_checkpoints()] == [1, 4]
    cp = parse_checkpoint(parse_note(ledger.latest_checkpoint()).text)
    assert cp.size == 4
    assert cp.root_hash == b64_encode(result.root)
    with pytest.raises(InputRejectedError, match="nothing"):
        ledger.append_many([], signer, "tester")
    _ok(ledger)


def test_append_many_is_all_or_nothing(ledger: Ledger, signer: Ed25519Signer) -> None:
    """A batch with one bad event writes none of its events."""
    before = _snapshot(ledger)
    events = [
        Event("note.recorded", {"text": "fine"}),
        Event("note.recorded", {"text": ""}),
    ]
    with pytest.raises(PayloadInvalidError):
        ledger.append_many(events, signer, "tester")
    assert _snapshot(ledger) == before
    _ok(ledger)


def test_checkpoint_names_signers_and_verifies(ledger: Ledger, signer: Ed25519Signer) -> None:
    """Each checkpoint is a signed note, by the origin's key name, listing the signers."""
    second = make_signer("second")
    _add_signer(ledger, signer, second)
    note = parse_note(ledger.latest_checkpoint())
    cp = parse_checkpoint(note.text)
    assert cp.origin == ORIGIN
    assert cp.size == 2
    assert cp.root_hash == b64_encode(ledger.root())
    assert cp.extensions == (" ".join([SIGNERS_EXTENSION, *sorted([signer.kid, second.kid])]),)
    assert note.verify(ORIGIN, public_key_bytes(signer.public_jwk))
    genesis_cp = parse_note(ledger.store.checkpoint_at(1) or "")
    assert parse_checkpoint(genesis_cp.text).extensions == (f"{SIGNERS_EXTENSION} {signer.kid}",)
    _ok(ledger)


def test_payload_over_the_limit_is_refused(ledger: Ledger, signer: Ed25519Signer) -> None:
    """A payload larger than max_payload_bytes (in RFC 8785 form) is refused, up to it accepted."""
    ledger.max_payload_bytes = 100
    before = _snapshot(ledger)
    # '{"text":"' + n characters + '"}' is 11 + n bytes in canonical form.
    with pytest.raises(InputRejectedError, match="over the limit of 100") as info:
        _note(ledger, signer, "x" * 90)
    assert info.value.exit_code == 3
    assert _snapshot(ledger) == before
    _note(ledger, signer, "x" * 89)
    assert ledger.size() == 2
    _ok(ledger)


@pytest.mark.parametrize(
    ("type_", "payload", "error"),
    [
        ("no.such.type", {"text": "x"}, UnknownEventTypeError),
        ("note.recorded", {"text": ""}, PayloadInvalidError),
        ("note.recorded", {"text": "x", "extra": 1}, PayloadInvalidError),
        ("ledger.genesis", {"origin": ORIGIN, "signer": make_signer("x").public_jwk}, None),
    ],
    ids=["unknown-type", "invalid", "extra-field", "second-genesis"],
)
def test_rejected_events_change_nothing(
    ledger: Ledger, signer: Ed25519Signer, type_: str, payload: dict[str, Any], error: Any
) -> None:
    """An unknown type, a bad payload or a second genesis is refused (exit 3), writing nothing."""
    before = _snapshot(ledger)
    with pytest.raises(error or InputRejectedError) as info:
        ledger.append(type_, payload, signer, "tester")
    assert info.value.exit_code == 3
    assert _snapshot(ledger) == before
    _ok(ledger)


# -- authorisation -------------------------------------------------------------------------------


def test_unauthorised_key_cannot_append(ledger: Ledger) -> None:
    """A key that was never authorised cannot append (exit 4) and nothing is written."""
    mallory = make_signer("mallory")
    before = _snapshot(ledger)
    with pytest.raises(NotAuthorisedError) as info:
        _note(ledger, mallory)
    assert info.value.exit_code == 4
    assert mallory.kid in info.value.message
    assert _snapshot(ledger) == before
    with pytest.raises(NotAuthorisedError):
        _add_signer(ledger, mallory, mallory)
    assert _snapshot(ledger) == before
    _ok(ledger)


def test_added_signer_can_append(ledger: Ledger, signer: Ed25519Signer) -> None:
    """signer.added with a valid proof of possession authorises the new key."""
    second = make_signer("second")
    _add_signer(ledger, signer, second)
    assert set(ledger.signer_set().authorised) == {signer.kid, second.kid}
    _note(ledger, second, "from the second signer")
    assert ledger.entry(2).kid == second.kid
    _add_signer(ledger, second, make_signer("third"))
    report = _ok(ledger)
    assert set(report.signers) == {signer.kid, second.kid, make_signer("third").kid}


def test_adding_an_existing_signer_is_refused(ledger: Ledger, signer: Ed25519Signer) -> None:
    """A key that is already a signer cannot be added twice."""
    before = _snapshot(ledger)
    with pytest.raises(InputRejectedError, match="already a signer"):
        _add_signer(ledger, signer, signer)
    assert _snapshot(ledger) == before


@pytest.mark.parametrize(
    "pop",
    [
        lambda new: make_proof_of_possession("example.com/another-ledger", new),
        lambda new: make_proof_of_possession(ORIGIN, make_signer("impostor")),
        lambda new: make_proof_of_possession(ORIGIN, new)[:-4] + "AAAA",
        lambda new: "not a jws",
    ],
    ids=["other-origin", "other-key", "bad-signature", "garbage"],
)
def test_bad_proof_of_possession_is_refused(
    ledger: Ledger, signer: Ed25519Signer, pop: Any
) -> None:
    """A proof of possession for another ledger, by another key, or forged is refused (exit 3)."""
    new = make_signer("second")
    before = _snapshot(ledger)
    with pytest.raises(InputRejectedError) as info:
        _add_signer(ledger, signer, new, pop=pop(new))
    assert info.value.exit_code == 3
    assert _snapshot(ledger) == before
    with pytest.raises(NotAuthorisedError):
        _note(ledger, new)
    _ok(ledger)


def test_pop_by_another_key_names_the_new_key(ledger: Ledger, signer: Ed25519Signer) -> None:
    """A proof made by another key is refused with a message naming the key being added."""
    new = make_signer("second")
    impostor_pop = make_proof_of_possession(ORIGIN, make_signer("impostor"))
    assert parse_compact(impostor_pop, "starter-ledger-pop+jws").kid != new.kid
    with pytest.raises(InputRejectedError, match=new.kid):
        _add_signer(ledger, signer, new, pop=impostor_pop)


def test_private_jwk_is_refused_in_signer_added(ledger: Ledger, signer: Ed25519Signer) -> None:
    """A signer.added that carries a private key member is refused before it can be stored."""
    new = make_signer("second")
    payload = {
        "jwk": {**new.public_jwk, "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"},
        "proof_of_possession": make_proof_of_possession(ORIGIN, new),
    }
    before = _snapshot(ledger)
    with pytest.raises(PayloadInvalidError, match=r"jwk\.d"):
        ledger.append("signer.added", payload, signer, "tester")
    assert _snapshot(ledger) == before


def test_revoked_signer_can_no_longer_append(ledger: Ledger, signer: Ed25519Signer) -> None:
    """signer.revoked removes a key: its later appends are refused, its old entries still verify."""
    second = make_signer("second")
    _add_signer(ledger, signer, second)
    _note(ledger, second, "before revocation")
    _revoke(ledger, signer, second.kid)
    assert set(ledger.signer_set().authorised) == {signer.kid}
    before = _snapshot(ledger)
    with pytest.raises(NotAuthorisedError, match="revoked"):
        _note(ledger, second, "after revocation")
    assert _snapshot(ledger) == before
    report = _ok(ledger)
    assert report.signers == [signer.kid]
    cp = parse_checkpoint(parse_note(ledger.latest_checkpoint()).text)
    assert cp.extensions == (f"{SIGNERS_EXTENSION} {signer.kid}",)


def test_a_signer_can_revoke_the_first_signer(ledger: Ledger, signer: Ed25519Signer) -> None:
    """Key rotation: a new signer can revoke the genesis key, which then cannot append."""
    second = make_signer("second")
    _add_signer(ledger, signer, second)
    _revoke(ledger, second, signer.kid)
    with pytest.raises(NotAuthorisedError):
        _note(ledger, signer)
    _note(ledger, second)
    assert _ok(ledger).signers == [second.kid]


def test_revoking_the_last_signer_is_refused(ledger: Ledger, signer: Ed25519Signer) -> None:
    """The last authorised signer cannot be revoked, so a ledger can never lock itself out."""
    before = _snapshot(ledger)
    with pytest.raises(InputRejectedError, match="last authorised signer"):
        _revoke(ledger, signer, signer.kid)
    assert _snapshot(ledger) == before
    second = make_signer("second")
    _add_signer(ledger, signer, second)
    _revoke(ledger, second, signer.kid)
    with pytest.raises(InputRejectedError, match="last authorised signer"):
        _revoke(ledger, second, second.kid)
    _ok(ledger)


def test_revoking_an_unknown_signer_is_refused(ledger: Ledger, signer: Ed25519Signer) -> None:
    """Revoking a key that is not a signer is refused."""
    with pytest.raises(InputRejectedError, match="not a signer"):
        _revoke(ledger, signer, make_signer("stranger").kid)
    _ok(ledger)


def test_fresh_ledger_object_sees_the_same_signers(
    ledger: Ledger, signer: Ed25519Signer, clock: FixedClock
) -> None:
    """A second Ledger over the same store enforces the same signer set as the first."""
    second = make_signer("second")
    _add_signer(ledger, signer, second)
    _revoke(ledger, signer, second.kid)
    other = Ledger(ledger.store, clock=clock)
    with pytest.raises(NotAuthorisedError):
        _note(other, second)
    _note(other, signer, "via the second object")
    _note(ledger, signer, "and again via the first")  # it re-reads after the conflict
    assert ledger.size() == 5
    assert ledger.entry(4).envelope.payload == {"text": "and again via the first"}
    _ok(ledger)


def test_a_stale_ledger_object_sees_a_signer_added_elsewhere(
    ledger: Ledger, signer: Ed25519Signer, clock: FixedClock
) -> None:
    """A Ledger object that appended before keeps no stale view: after another object adds a
    signer, the first one accepts that signer's key and appends at the next position."""
    other = Ledger(ledger.store, clock=clock)
    _note(ledger, signer, "the first object appends, and keeps its view")
    second = make_signer("second")
    _add_signer(other, signer, second)
    _note(other, signer, "the other object appends again")
    _note(ledger, second, "signed by the key the other object added")
    assert ledger.size() == 5
    assert ledger.entry(4).kid == second.kid
    assert ledger.entry(4).envelope.prev_root == b64_encode(ledger.root(4))
    _ok(ledger)


def test_an_append_rolled_back_by_its_caller_is_not_built_on(
    sql_ledger: Ledger, signer: Ed25519Signer, clock: FixedClock
) -> None:
    """An append made inside the caller's own transaction that the caller then rolls back
    leaves no trace: after another object appends (the ledger has the same size again), the
    first object's next append lands after the other's entry and the ledger verifies."""
    ledger = sql_ledger
    _note(ledger, signer, "kept")

    def give_up_after_an_append() -> None:
        with ledger.store.writing():
            _note(ledger, signer, "rolled back")
            raise RuntimeError("the caller gives up")

    with pytest.raises(RuntimeError):
        give_up_after_an_append()
    assert ledger.size() == 2
    other = Ledger(ledger.store, clock=clock)
    _note(other, signer, "from the other object")
    _note(ledger, signer, "after the rollback")
    assert [ledger.entry(i).envelope.payload["text"] for i in (1, 2, 3)] == [
        "kept",
        "from the other object",
        "after the rollback",
    ]
    _ok(ledger)


# -- verification: bundles, incremental, pins ----------------------------------------------------


def _grow(ledger: Ledger, signer: Ed25519Signer) -> None:
    second = make_signer("second")
    _note(ledger, signer, "one")
    _add_signer(ledger, signer, second)
    ledger.append_many(
        [Event("note.recorded", {"text": "two"}), Event("note.recorded", {"text": "three"})],
        second,
        "tester",
    )
    _revoke(ledger, second, signer.kid)


def test_export_bundle_verifies_offline(
    ledger: Ledger, signer: Ed25519Signer, tmp_path: Path
) -> None:
    """An exported bundle verifies without the database, to the same size and root."""
    _grow(ledger, signer)
    out = tmp_path / "bundle.jsonl"
    assert export_bundle(ledger.store, out, origin=ORIGIN) == ledger.size()
    source = BundleSource(out)
    assert source.size == ledger.size()
    assert source.origin == ORIGIN
    report = verify_bundle(source)
    assert report.ok, report.first_failure
    assert report.size == ledger.size()
    assert report.root_hash == b64_encode(ledger.root())
    assert report.checkpoints_checked == len(list(ledger.store.iter_checkpoints()))
    genesis = hashlib.sha256(ledger.entry(0).raw).hexdigest()
    assert report.genesis_sha256 == genesis
    assert verify_bundle(source, genesis_sha256=genesis).ok
    assert verify_bundle(source, checkpoint=ledger.store.checkpoint_at(2)).ok
    _ok(ledger)


def test_verify_from_checkpoint_checks_only_new_entries(
    ledger: Ledger, signer: Ed25519Signer
) -> None:
    """Verifying from a trusted checkpoint checks only the entries appended since."""
    early = ledger.latest_checkpoint()
    _grow(ledger, signer)
    report = verify_from_checkpoint(ledger.store, early)
    assert report.ok, report.first_failure
    assert report.verified_from == 1
    assert report.entries_checked == ledger.size() - 1
    assert report.size == ledger.size()
    assert report.root_hash == b64_encode(ledger.root())
    middle = ledger.store.checkpoint_at(3)
    assert middle is not None
    report = verify_from_checkpoint(ledger.store, middle)
    assert report.ok, report.first_failure
    assert (report.verified_from, report.entries_checked) == (3, ledger.size() - 3)
    latest = verify_from_checkpoint(ledger.store, ledger.latest_checkpoint())
    assert latest.ok, latest.first_failure
    assert latest.entries_checked == 0


def test_full_verification_with_pins(ledger: Ledger, signer: Ed25519Signer) -> None:
    """The right genesis hash and an earlier checkpoint of this ledger both pin successfully."""
    early = ledger.latest_checkpoint()
    _grow(ledger, signer)
    genesis = hashlib.sha256(ledger.entry(0).raw).hexdigest()
    report = _ok(ledger, genesis_sha256=genesis, checkpoint=early)
    assert report.genesis_sha256 == genesis
    _ok(ledger, genesis_sha256=genesis.upper())
    assert verify_from_checkpoint(ledger.store, early, genesis_sha256=genesis).ok


def test_wrong_genesis_pin_fails(ledger: Ledger, signer: Ed25519Signer) -> None:
    """A genesis pin that does not match fails verification at entry 0, check genesis-pin."""
    early = ledger.latest_checkpoint()
    _grow(ledger, signer)
    for report in (
        verify_store(ledger.store, genesis_sha256="0" * 64),
        verify_from_checkpoint(ledger.store, early, genesis_sha256="0" * 64),
    ):
        assert not report.ok
        assert report.first_failure is not None
        assert (report.first_failure.seq, report.first_failure.check) == (0, "genesis-pin")


def test_checkpoint_of_another_ledger_fails_as_pin(
    ledger: Ledger, signer: Ed25519Signer, clock: FixedClock
) -> None:
    """A checkpoint from another ledger with the same origin but another key is not a valid pin."""
    _grow(ledger, signer)
    other = Ledger(MemoryStore(), clock=clock)
    impostor = make_signer("impostor")
    other.init(ORIGIN, impostor, "tester")
    for i in range(2):
        _note(other, impostor, f"other {i}")
    foreign = other.latest_checkpoint()
    assert parse_checkpoint(parse_note(foreign).text).origin == ORIGIN
    for report in (
        verify_store(ledger.store, checkpoint=foreign),
        verify_from_checkpoint(ledger.store, foreign),
    ):
        assert not report.ok
        assert report.first_failure is not None
        assert report.first_failure.check == "checkpoint-pin"
    assert verify_store(other.store).ok


def test_checkpoint_ahead_of_the_ledger_fails_as_pin(
    ledger: Ledger, signer: Ed25519Signer, clock: FixedClock
) -> None:
    """A trusted checkpoint larger than the ledger means it was truncated: check checkpoint-pin."""
    copy = Ledger(MemoryStore(), clock=clock)
    copy.init(ORIGIN, signer, "tester")
    for i in range(3):
        _note(copy, signer, f"n{i}")
    ahead = copy.latest_checkpoint()
    for report in (
        verify_store(ledger.store, checkpoint=ahead),
        verify_from_checkpoint(ledger.store, ahead),
    ):
        assert not report.ok
        assert report.first_failure is not None
        assert report.first_failure.check == "checkpoint-pin"
