"""The key lifecycle as a pure state machine (``starter_events.keyring``), without a ledger.

Every allowed transition is applied, every refused one raises ``KeyTransitionError`` (exit code
10) and leaves the ring as it was; random operation sequences are checked against an independent
model of the rules; ``plan`` is driven over a whole schedule with a ``FixedClock``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _keys_helpers import DAY, FIXED, HOUR, T0, follow, staged, ts
from starter_events import KeyRing, KeyState, KeyTransitionError, Step
from starter_ledger.clock import FixedClock

MS = dt.timedelta(milliseconds=1)
WARN = 14 * DAY

#: The events that bring a freshly staged key into each state.
_PATHS: dict[KeyState, list[str]] = {
    KeyState.STAGED: [],
    KeyState.ACTIVE: ["key.activated"],
    KeyState.RETIRED: ["key.activated", "key.retired"],
    KeyState.EXPIRED: ["key.activated", "key.retired", "key.expired"],
    KeyState.REVOKED: ["key.revoked"],
}


def _extra(type_: str) -> dict[str, Any]:
    if type_ == "key.retired":
        return {"verify_until": ts(T0 + HOUR)}
    if type_ == "key.revoked":
        return {"reason": "compromised", "compromised_since": ts(T0)}
    return {}


def _ring_with(state: KeyState, name: str = "a") -> tuple[KeyRing, dict[str, Any]]:
    """A ring holding one key, brought to ``state`` through the lifecycle."""
    ring = KeyRing()
    stage = staged(name)
    ring.apply("key.staged", stage, 1)
    for seq, type_ in enumerate(_PATHS[state], start=2):
        ring.apply(type_, follow(type_, stage, **_extra(type_)), seq)
    return ring, stage


def _refused(ring: KeyRing, type_: str, payload: dict[str, Any]) -> KeyTransitionError:
    """Apply an event the rules refuse; the ring must be exactly as before."""
    before = ring.records()
    with pytest.raises(KeyTransitionError) as info:
        ring.apply(type_, payload, 99)
    assert info.value.exit_code == 10
    assert ring.records() == before
    return info.value


# -- transitions -------------------------------------------------------------------------------


def test_a_key_walks_the_whole_lifecycle() -> None:
    """A key is staged, activated, retired (with its verify_until) and expired, in that order."""
    ring = KeyRing()
    stage = staged("a")
    assert ring.apply("key.staged", stage, 1).state is KeyState.STAGED
    assert ring.apply("key.activated", follow("key.activated", stage), 2).state is KeyState.ACTIVE
    assert ring.active("default") == ring.get(stage["kid"])
    retired = ring.apply("key.retired", follow("key.retired", stage, verify_until=ts(T0 + HOUR)), 3)
    assert (retired.state, retired.verify_until) == (KeyState.RETIRED, ts(T0 + HOUR))
    assert ring.active("default") is None
    expired = ring.apply("key.expired", follow("key.expired", stage), 4)
    assert (expired.state, expired.staged_seq, expired.changed_seq) == (KeyState.EXPIRED, 1, 4)
    assert expired.verify_until == ts(T0 + HOUR)


@pytest.mark.parametrize(
    "state", [KeyState.STAGED, KeyState.ACTIVE, KeyState.RETIRED, KeyState.EXPIRED]
)
def test_any_key_but_a_revoked_one_can_be_revoked(state: KeyState) -> None:
    """Revocation is allowed from every state but revoked, and records why and since when."""
    ring, stage = _ring_with(state)
    record = ring.apply("key.revoked", follow("key.revoked", stage, **_extra("key.revoked")), 9)
    assert (record.state, record.reason, record.compromised_since) == (
        KeyState.REVOKED,
        "compromised",
        ts(T0),
    )
    assert ring.active("default") is None


_REFUSED = [
    *[("key.activated", s) for s in ("active", "retired", "expired", "revoked")],
    *[("key.retired", s) for s in ("staged", "retired", "expired", "revoked")],
    *[("key.expired", s) for s in ("staged", "active", "expired", "revoked")],
    ("key.revoked", "revoked"),
]


@pytest.mark.parametrize(("type_", "state"), _REFUSED, ids=str)
def test_a_refused_transition_names_the_current_state(type_: str, state: str) -> None:
    """A transition the lifecycle forbids is refused with a message naming the key's state."""
    ring, stage = _ring_with(KeyState(state))
    error = _refused(ring, type_, follow(type_, stage, **_extra(type_)))
    assert f"key {stage['kid']} is {state}" in error.message
    assert type_ in error.message


@pytest.mark.parametrize("state", list(KeyState), ids=str)
def test_a_kid_cannot_be_staged_twice(state: KeyState) -> None:
    """Staging a kid the ring already holds is refused, whatever that key's state."""
    ring, stage = _ring_with(state)
    error = _refused(ring, "key.staged", stage)
    assert f"key {stage['kid']} cannot be staged again: it is {state}" in error.message


@pytest.mark.parametrize("type_", ["key.activated", "key.retired", "key.expired", "key.revoked"])
def test_an_event_for_a_key_never_staged_is_refused(type_: str) -> None:
    """An event naming a kid that was never staged is refused, saying so."""
    ring, _ = _ring_with(KeyState.ACTIVE)
    error = _refused(ring, type_, follow(type_, staged("stranger"), **_extra(type_)))
    assert "never staged" in error.message


def test_a_non_key_event_is_refused() -> None:
    """The ring only applies key lifecycle events."""
    ring, stage = _ring_with(KeyState.STAGED)
    error = _refused(ring, "note.recorded", stage)
    assert "not a key lifecycle event" in error.message


def _changed(stage: dict[str, Any], member: str) -> dict[str, Any]:
    other = staged("other", key_set="other", not_before=T0 + HOUR, lifetime=30 * DAY)
    return follow("key.activated", {**stage, member: other[member]})


@pytest.mark.parametrize("member", ["key_set", "jwk", "not_before", "not_after"])
def test_an_event_cannot_change_what_key_staged_fixed(member: str) -> None:
    """A later event that changes the key set, JWK or window of an existing key is refused."""
    ring, stage = _ring_with(KeyState.STAGED)
    error = _refused(ring, "key.activated", _changed(stage, member))
    assert f"changes {member}" in error.message
    assert stage["kid"] in error.message


def test_a_changed_fixed_member_refusal_names_the_current_state() -> None:
    """The refusal of an event changing a fixed member also says which state the key is in."""
    ring, stage = _ring_with(KeyState.ACTIVE)
    changed = {**_changed(stage, "not_before"), "verify_until": ts(T0 + HOUR)}
    error = _refused(ring, "key.retired", changed)
    assert f"key {stage['kid']} is active" in error.message


def test_at_most_one_active_key_per_key_set() -> None:
    """A second key of the same set cannot be activated while the first is active."""
    ring, first = _ring_with(KeyState.ACTIVE, "a")
    second = staged("b", not_before=T0 + HOUR)
    ring.apply("key.staged", second, 5)
    error = _refused(ring, "key.activated", follow("key.activated", second))
    assert "already has an active key" in error.message
    assert first["kid"] in error.message
    ring.apply("key.retired", follow("key.retired", first, verify_until=ts(T0 + 2 * HOUR)), 6)
    assert ring.apply("key.activated", follow("key.activated", second), 7).state is KeyState.ACTIVE


def test_two_key_sets_may_each_have_an_active_key() -> None:
    """The one-active-key rule is per key set."""
    ring = KeyRing()
    for seq, (name, key_set) in enumerate([("a", "default"), ("b", "internal")]):
        stage = staged(name, key_set=key_set)
        ring.apply("key.staged", stage, 2 * seq)
        ring.apply("key.activated", follow("key.activated", stage), 2 * seq + 1)
    assert ring.key_sets() == ["default", "internal"]
    assert ring.active("default") is not None
    assert ring.active("internal") is not None
    assert ring.active("default") != ring.active("internal")


# -- random operation sequences against a model of the rules ----------------------------------

_NAMES = [("p0", "default"), ("p1", "default"), ("p2", "default"), ("p3", "other")]
_TYPES = ["key.staged", "key.activated", "key.retired", "key.expired", "key.revoked"]
_FROM = {
    "key.activated": {KeyState.STAGED},
    "key.retired": {KeyState.ACTIVE},
    "key.expired": {KeyState.RETIRED},
    "key.revoked": {KeyState.STAGED, KeyState.ACTIVE, KeyState.RETIRED, KeyState.EXPIRED},
}
_TARGET = dict(zip(_TYPES, list(KeyState), strict=True))
_RANK = {KeyState.ACTIVE: 0, KeyState.STAGED: 1, KeyState.RETIRED: 2}

#: The event that moves a key on from each state (None: not staged yet), so that random
#: sequences reach every state often, not only the first few.
_NEXT = {
    None: "key.staged",
    KeyState.STAGED: "key.activated",
    KeyState.ACTIVE: "key.retired",
    KeyState.RETIRED: "key.expired",
    KeyState.EXPIRED: "key.revoked",
    KeyState.REVOKED: "key.revoked",
}

_op = st.tuples(
    st.one_of(st.just("next"), st.sampled_from(_TYPES)),
    st.integers(0, len(_NAMES) - 1),
    st.integers(0, 48),  # hours after T0: a not_before or a verify_until
    st.integers(0, 7).map(lambda n: n == 0),  # change not_before (a fixed member) in a follow-up
)


def _payload(op: tuple[str, int, int, bool], stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    type_, index, hours, mutate = op
    name, key_set = _NAMES[index]
    fresh = staged(name, key_set=key_set, not_before=T0 + hours * HOUR, lifetime=DAY)
    if type_ == "key.staged":
        return fresh
    stage = stages.get(fresh["kid"], fresh)
    if mutate:
        stage = {**stage, "not_before": ts(T0 - HOUR)}
    extra = {"verify_until": ts(T0 + hours * HOUR)} if type_ == "key.retired" else {}
    return follow(type_, stage, **({"reason": "r"} if type_ == "key.revoked" else extra))


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_op, max_size=30), probes=st.lists(st.integers(-2, 80), min_size=1))
def test_random_operations_keep_the_invariants(
    ops: list[tuple[str, int, int, bool]], probes: list[int]
) -> None:
    """Whatever is attempted, the ring accepts exactly what the rules allow, never has two active
    keys in a set, never publishes a revoked or expired key, and replays to the same state."""
    ring = KeyRing()
    model: dict[str, tuple[KeyState, str]] = {}
    stages: dict[str, dict[str, Any]] = {}
    accepted: list[tuple[str, dict[str, Any], int]] = []
    for seq, (choice, index, hours, mutate) in enumerate(ops):
        kid = staged(_NAMES[index][0]).get("kid")
        type_ = _NEXT[model[kid][0] if kid in model else None] if choice == "next" else choice
        payload = _payload((type_, index, hours, mutate), stages)
        kid, key_set = payload["kid"], payload["key_set"]
        if type_ == "key.staged":
            allowed = kid not in model
        else:
            allowed = (
                kid in model
                and model[kid][0] in _FROM[type_]
                and not (mutate and kid in stages)
                and not (
                    type_ == "key.activated"
                    and any(s is KeyState.ACTIVE and ks == key_set for s, ks in model.values())
                )
            )
        try:
            ring.apply(type_, payload, seq)
        except KeyTransitionError:
            assert not allowed, (type_, model.get(kid))
            continue
        assert allowed, (type_, model.get(kid))
        model[kid] = (_TARGET[type_], key_set)
        stages.setdefault(kid, payload)
        accepted.append((type_, payload, seq))

    assert {k.kid: (k.state, k.key_set) for k in ring.records()} == model
    for key_set in ring.key_sets():
        assert len(ring.in_state(key_set, KeyState.ACTIVE)) <= 1
    rebuilt = KeyRing()
    for type_, payload, seq in accepted:
        rebuilt.apply(type_, payload, seq)
    assert rebuilt.records() == ring.records()
    for hours in probes:
        now = T0 + hours * HOUR
        published = ring.published(now)
        for k in published:
            assert k.state in _RANK, k.state
            assert k.state is not KeyState.RETIRED or (k.verify_until or "") > ts(now)
        assert published == rebuilt.published(now)
        assert published == sorted(
            published, key=lambda k: (k.key_set, _RANK[k.state], k.not_before, k.kid)
        )
        assert len({k.kid for k in published}) == len(published)
        kids = {k.kid for k in published}
        for k in ring.records():
            if k.kid not in kids:
                assert k.state in (KeyState.REVOKED, KeyState.EXPIRED, KeyState.RETIRED)
                assert k.state is not KeyState.RETIRED or (k.verify_until or "") <= ts(now)


def test_published_order_and_window() -> None:
    """The JWKS keys come active, staged, retired per key set; a retired key leaves at
    verify_until; revoked and expired keys never appear."""
    ring = KeyRing()
    a, b, c = staged("a"), staged("b", not_before=T0 + HOUR), staged("c", key_set="aux")
    gone, dead = staged("gone"), staged("dead")
    for stage in (a, b, c, gone, dead):
        ring.apply("key.staged", stage)
    ring.apply("key.activated", follow("key.activated", gone))
    ring.apply("key.retired", follow("key.retired", gone, verify_until=ts(T0 + HOUR)))
    ring.apply("key.activated", follow("key.activated", a))
    ring.apply("key.revoked", follow("key.revoked", dead, reason="leaked"))
    ring.apply("key.activated", follow("key.activated", c))
    kids = [k.kid for k in ring.published(T0 + HOUR - MS)]
    assert kids == [c["kid"], a["kid"], b["kid"], gone["kid"]]
    assert [k.kid for k in ring.published(T0 + HOUR)] == [c["kid"], a["kid"], b["kid"]]
    assert ring.next_change(T0) == T0 + HOUR
    assert ring.next_change(T0 + HOUR) == T0 + 90 * DAY


# -- the schedule --------------------------------------------------------------------------------


def _scheduled() -> tuple[KeyRing, dict[str, Any], dict[str, Any]]:
    """Key ``a`` active since T0 (90 days, 1 h tokens); key ``b`` staged for T0 + 30 days."""
    ring, a = _ring_with(KeyState.ACTIVE, "a")
    b = staged("b", not_before=T0 + 30 * DAY)
    ring.apply("key.staged", b)
    return ring, a, b


def _fixed(stage: dict[str, Any]) -> dict[str, Any]:
    return {k: stage[k] for k in FIXED}


def _run(ring: KeyRing, at: dt.datetime) -> list[Step]:
    """Plan at ``at``, apply the steps, and check that planning again finds nothing."""
    clock = FixedClock(at)
    plan = ring.plan(clock, WARN)
    for step in plan.steps:
        ring.apply(step.type, step.payload)
    assert ring.plan(clock, WARN).steps == []
    return plan.steps


def test_plan_over_a_whole_schedule() -> None:
    """Nothing is due before not_before; at it the old key retires (verifying one token lifetime
    longer) and the new one activates; at verify_until the old key expires."""
    ring, a, b = _scheduled()
    before = ring.records()
    assert ring.plan(FixedClock(T0 + 30 * DAY - MS), WARN).steps == []
    assert ring.records() == before  # planning changes nothing
    switch = T0 + 30 * DAY
    assert _run(ring, switch) == [
        Step("key.retired", {**_fixed(a), "verify_until": ts(switch + HOUR)}),
        Step("key.activated", _fixed(b)),
    ]
    assert _run(ring, switch + HOUR - MS) == []
    assert [k.kid for k in ring.published(switch + HOUR - MS)] == [b["kid"], a["kid"]]
    assert _run(ring, switch + HOUR) == [Step("key.expired", _fixed(a))]
    assert [k.kid for k in ring.published(switch + HOUR)] == [b["kid"]]
    assert ring.get(a["kid"]).state is KeyState.EXPIRED  # type: ignore[union-attr]


def test_a_late_tick_keeps_the_old_keys_tokens_verifiable() -> None:
    """When tick runs after the new key's not_before, the old key signed until then: it stays
    verifiable one token lifetime after the tick, not after the missed time."""
    ring, a, _ = _scheduled()
    late = T0 + 30 * DAY + 10 * dt.timedelta(minutes=1)
    steps = _run(ring, late)
    assert steps[0] == Step("key.retired", {**_fixed(a), "verify_until": ts(late + HOUR)})
    assert [k.kid for k in ring.published(late + HOUR - MS)][-1] == a["kid"]


def test_plan_catches_up_in_time_order() -> None:
    """A tick long overdue applies every missed transition, in the order they fell due."""
    ring, a, b = _scheduled()
    end_b = T0 + 120 * DAY
    steps = _run(ring, end_b + DAY)
    assert [(s.type, s.kid) for s in steps] == [
        ("key.retired", a["kid"]),
        ("key.activated", b["kid"]),
        ("key.expired", a["kid"]),
        ("key.retired", b["kid"]),
        ("key.expired", b["kid"]),
    ]
    assert steps[3].payload["verify_until"] == ts(end_b + HOUR)
    assert ring.published(end_b + DAY) == []


def test_plan_retires_an_active_key_past_not_after() -> None:
    """An active key with no successor retires at not_after and verifies one token lifetime on."""
    ring, a = _ring_with(KeyState.ACTIVE, "a")
    end = T0 + 90 * DAY
    assert _run(ring, end) == [Step("key.retired", {**_fixed(a), "verify_until": ts(end + HOUR)})]
    warnings = ring.plan(FixedClock(end), WARN).warnings
    assert len(warnings) == 1
    assert "no active key and none staged" in warnings[0]


_schedules = st.lists(
    st.tuples(st.integers(0, 200), st.integers(1, 100), st.integers(60, 7200), st.booleans()),
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(keys=_schedules, times=st.lists(st.integers(0, 400), max_size=6), start=st.booleans())
def test_plan_is_idempotent_and_valid(
    keys: list[tuple[int, int, int, bool]], times: list[int], start: bool
) -> None:
    """Whatever the schedule, the plan's steps apply cleanly and planning again at the same time
    finds nothing due; no key stays due and no key set gets two active keys."""
    ring = KeyRing()
    for i, (hours, life, ttl, aux) in enumerate(keys):
        stage = staged(
            f"k{i}",
            key_set="aux" if aux else "default",
            not_before=T0 + hours * HOUR,
            lifetime=life * HOUR,
            ttl_seconds=ttl,
        )
        ring.apply("key.staged", stage)
        if start and i == 0:
            ring.apply("key.activated", follow("key.activated", stage))
    for hours in sorted(times):
        now = T0 + hours * HOUR
        _run(ring, now)  # asserts the second plan is empty
        for key_set in ring.key_sets():
            assert len(ring.in_state(key_set, KeyState.ACTIVE)) <= 1
        for k in ring.records():
            due = {KeyState.STAGED: k.not_before, KeyState.ACTIVE: k.not_after}.get(k.state)
            if k.state is KeyState.RETIRED:
                due = k.verify_until
            assert due is None or due > ts(now), k


def test_warning_when_the_active_key_expires_soon_with_nothing_staged() -> None:
    """tick warns once the active key's end is within the window and no key follows it."""
    ring, a = _ring_with(KeyState.ACTIVE, "a")
    end = T0 + 90 * DAY
    assert ring.plan(FixedClock(end - WARN - MS), WARN).warnings == []
    (warning,) = ring.plan(FixedClock(end - WARN), WARN).warnings
    assert a["kid"] in warning
    assert ts(end) in warning
    assert "keys rotate" in warning
    ring.apply("key.staged", staged("b", not_before=end - DAY))
    assert ring.plan(FixedClock(end - WARN), WARN).warnings == []


def test_no_warning_for_a_key_staged_exactly_at_not_after() -> None:
    """A key staged to activate exactly when the active key stops counts as its successor."""
    ring, _ = _ring_with(KeyState.ACTIVE, "a")
    end = T0 + 90 * DAY
    ring.apply("key.staged", staged("b", not_before=end))
    assert ring.plan(FixedClock(end - DAY), WARN).warnings == []


def test_warning_when_no_key_is_active() -> None:
    """A key set without an active key is reported, with the time a staged key takes over."""
    ring, _ = _ring_with(KeyState.REVOKED, "a")
    (warning,) = ring.plan(FixedClock(T0), WARN).warnings
    assert "'default' has no active key and none staged" in warning
    assert "--activate-now" in warning
    ring.apply("key.staged", staged("b", not_before=T0 + DAY))
    (warning,) = ring.plan(FixedClock(T0), WARN).warnings
    assert warning == f"key set 'default' has no active key until {ts(T0 + DAY)}"
    assert KeyRing().plan(FixedClock(T0), WARN).warnings == []
