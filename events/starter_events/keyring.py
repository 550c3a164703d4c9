"""The key lifecycle as a pure state machine, and the schedule of what is due.

For: ``KeyRing``, the projection of the ``key.*`` events into the state of every token-signing key
(staged -> active -> retired -> expired; revoked from any state but revoked; at most one active
key per key set), which refuses any other transition with a ``KeyTransitionError`` naming the
key's current state; and ``KeyRing.plan``, which lists the transitions due at the time an
injected clock gives (activate a staged key whose time has come, retiring the active one; retire
an active key past ``not_after``; expire a retired key past ``verify_until``) plus warnings. No
I/O and no clock reads of its own. Not for: signing, key stores or the JWKS bytes (the ledger).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from starter_contracts.keys import KeyState
from starter_events.errors import KeyTransitionError
from starter_events.keys import KEY_EVENT_TYPES

__all__ = [
    "KeyRecord",
    "KeyRing",
    "KeyState",
    "Plan",
    "Step",
    "format_timestamp",
    "parse_timestamp",
]


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


#: The state each event moves a key to, and the states it may move it from.
_TARGET = {
    "key.staged": KeyState.STAGED,
    "key.activated": KeyState.ACTIVE,
    "key.retired": KeyState.RETIRED,
    "key.expired": KeyState.EXPIRED,
    "key.revoked": KeyState.REVOKED,
}
_FROM: dict[str, frozenset[KeyState]] = {
    "key.activated": frozenset({KeyState.STAGED}),
    "key.retired": frozenset({KeyState.ACTIVE}),
    "key.expired": frozenset({KeyState.RETIRED}),
    "key.revoked": frozenset(
        {KeyState.STAGED, KeyState.ACTIVE, KeyState.RETIRED, KeyState.EXPIRED}
    ),
}
#: Members every event of one key must repeat unchanged from its ``key.staged``.
_FIXED = ("key_set", "alg", "jwk", "not_before", "not_after")


def format_timestamp(moment: dt.datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z`` (the form the key events carry)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key's current state and everything its events said about it."""

    kid: str
    key_set: str
    alg: str
    jwk: dict[str, str]
    not_before: str
    not_after: str
    store: str
    ref: str
    token_ttl_seconds: int
    state: KeyState
    staged_seq: int | None
    changed_seq: int | None
    verify_until: str | None = None
    reason: str | None = None
    compromised_since: str | None = None

    def fixed(self) -> dict[str, Any]:
        """The members every event of this key repeats."""
        return {
            "alg": self.alg,
            "jwk": dict(self.jwk),
            "key_set": self.key_set,
            "kid": self.kid,
            "not_after": self.not_after,
            "not_before": self.not_before,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """A transition due now: the event type and its payload."""

    type: str
    payload: dict[str, Any]

    @property
    def kid(self) -> str:
        return str(self.payload["kid"])


@dataclass
class Plan:
    """What ``tick`` would append, in order, and what it should warn about."""

    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class KeyRing:
    """The state of every token-signing key, from the ``key.*`` events in ledger order."""

    def __init__(self) -> None:
        self._keys: dict[str, KeyRecord] = {}

    def copy(self) -> KeyRing:
        ring = KeyRing()
        ring._keys = dict(self._keys)
        return ring

    # -- applying events -----------------------------------------------------------------

    def apply(self, type_: str, payload: dict[str, Any], seq: int | None = None) -> KeyRecord:
        """Apply one ``key.*`` event (already valid against its model); raises
        ``KeyTransitionError`` for a transition the lifecycle does not allow."""
        if type_ not in _TARGET:
            raise KeyTransitionError(f"{type_} is not a key lifecycle event ({KEY_EVENT_TYPES})")
        kid = str(payload["kid"])
        current = self._keys.get(kid)
        if type_ == "key.staged":
            if current is not None:
                raise KeyTransitionError(f"key {kid} cannot be staged again: it is {current.state}")
            record = KeyRecord(
                kid=kid,
                key_set=payload["key_set"],
                alg=payload["alg"],
                jwk=dict(payload["jwk"]),
                not_before=payload["not_before"],
                not_after=payload["not_after"],
                store=payload["store"],
                ref=payload["ref"],
                token_ttl_seconds=int(payload["token_ttl_seconds"]),
                state=KeyState.STAGED,
                staged_seq=seq,
                changed_seq=seq,
            )
            self._keys[kid] = record
            return record
        if current is None:
            raise KeyTransitionError(
                f"{type_} names key {kid}, which was never staged",
                hint="check the kid with 'starter-cli keys status'",
            )
        target = _TARGET[type_]
        if current.state not in _FROM[type_]:
            raise KeyTransitionError(
                f"key {kid} is {current.state}; {type_} needs a key that is "
                + " or ".join(sorted(_FROM[type_])),
                hint="see 'starter-cli keys status' for each key's state",
            )
        fixed = current.fixed()
        for name in _FIXED:
            if payload.get(name) != fixed[name]:
                raise KeyTransitionError(
                    f"key {kid} is {current.state}; {type_} changes {name}, "
                    "which its key.staged fixed"
                )
        if target is KeyState.ACTIVE:
            other = self.active(current.key_set)
            if other is not None:
                raise KeyTransitionError(
                    f"key set {current.key_set!r} already has an active key, {other.kid}; "
                    "retire it first",
                    hint="'starter-cli keys rotate' and 'keys tick' retire it for you",
                )
        record = replace(
            current,
            state=target,
            changed_seq=seq,
            verify_until=payload.get("verify_until", current.verify_until),
            reason=payload.get("reason", current.reason),
            compromised_since=payload.get("compromised_since", current.compromised_since),
        )
        self._keys[kid] = record
        return record

    # -- reading -------------------------------------------------------------------------

    def get(self, kid: str) -> KeyRecord | None:
        return self._keys.get(kid)

    def records(self, key_set: str | None = None) -> list[KeyRecord]:
        """Every key (of ``key_set``, or of all sets), in the order they were staged."""
        return [k for k in self._keys.values() if key_set is None or k.key_set == key_set]

    def key_sets(self) -> list[str]:
        return sorted({k.key_set for k in self._keys.values()})

    def active(self, key_set: str) -> KeyRecord | None:
        for k in self._keys.values():
            if k.key_set == key_set and k.state is KeyState.ACTIVE:
                return k
        return None

    def in_state(self, key_set: str, state: KeyState) -> list[KeyRecord]:
        return [k for k in self.records(key_set) if k.state is state]

    def published(self, now: dt.datetime) -> list[KeyRecord]:
        """Keys a JWKS publishes at ``now``: staged, active, and retired ones still within
        ``verify_until``; never revoked or expired ones. Active first, then staged, then
        retired; within each by ``not_before`` then ``kid``."""
        at = format_timestamp(now)
        rank = {KeyState.ACTIVE: 0, KeyState.STAGED: 1, KeyState.RETIRED: 2}
        out = [
            k
            for k in self._keys.values()
            if k.state in rank
            and not (k.state is KeyState.RETIRED and (k.verify_until or "") <= at)
        ]
        return sorted(out, key=lambda k: (k.key_set, rank[k.state], k.not_before, k.kid))

    def next_change(self, now: dt.datetime) -> dt.datetime | None:
        """The next time after ``now`` at which a key is due to change state (or to leave the
        JWKS): a staged key's ``not_before``, an active key's ``not_after``, a retired key's
        ``verify_until``."""
        at = format_timestamp(now)
        times = [t for k in self._keys.values() for t in _due_times(k) if t > at]
        return parse_timestamp(min(times)) if times else None

    # -- the schedule --------------------------------------------------------------------

    def plan(self, clock: Clock, warn_within: dt.timedelta) -> Plan:
        """The transitions due at ``clock.now()`` in time order, and the warnings: an active
        key expiring within ``warn_within`` with no key staged to follow it, or a key set with
        no active key."""
        now = clock.now()
        at = format_timestamp(now)
        ring = self.copy()
        plan = Plan()
        while True:
            due = sorted(
                (time, order, kid)
                for k in ring._keys.values()
                for time, order, kid in _due(k)
                if time <= at
            )
            if not due:
                break
            _, order, kid = due[0]
            for step in ring._steps_for(order, kid, at):
                ring.apply(step.type, step.payload)
                plan.steps.append(step)
        plan.warnings = ring.warnings(now, warn_within)
        return plan

    def _steps_for(self, order: int, kid: str, at: str) -> Iterable[Step]:
        key = self._keys[kid]
        if order == 0:  # a staged key's time has come: retire the active key, activate it
            old = self.active(key.key_set)
            if old is not None:
                # The old key signed until this tick (``at``), however late it runs; it never
                # signs past its not_after, so its tokens are all expired by _ttl_end(old).
                switch = max(key.not_before, at)
                until = min(_plus(switch, old.token_ttl_seconds), _ttl_end(old))
                yield Step("key.retired", {**old.fixed(), "verify_until": until})
            yield Step("key.activated", key.fixed())
        elif order == 1:  # an active key reached not_after
            yield Step("key.retired", {**key.fixed(), "verify_until": _ttl_end(key)})
        else:  # a retired key's verification window closed
            yield Step("key.expired", key.fixed())

    def warnings(self, now: dt.datetime, warn_within: dt.timedelta) -> list[str]:
        out = []
        for key_set in self.key_sets():
            active = self.active(key_set)
            staged = self.in_state(key_set, KeyState.STAGED)
            if active is None:
                if staged:
                    first = min(k.not_before for k in staged)
                    out.append(f"key set {key_set!r} has no active key until {first}")
                else:
                    out.append(
                        f"key set {key_set!r} has no active key and none staged: "
                        "run 'starter-cli keys rotate --activate-now'"
                    )
                continue
            horizon = format_timestamp(now + warn_within)
            if active.not_after <= horizon and not any(
                k.not_before <= active.not_after for k in staged
            ):
                out.append(
                    f"active key {active.kid} of key set {key_set!r} expires at "
                    f"{active.not_after} and no key is staged to follow it: "
                    "run 'starter-cli keys rotate'"
                )
        return out


def _plus(timestamp: str, seconds: int) -> str:
    return format_timestamp(parse_timestamp(timestamp) + dt.timedelta(seconds=seconds))


def _ttl_end(key: KeyRecord) -> str:
    """The last moment a token signed by ``key`` before its ``not_after`` can still be valid."""
    return _plus(key.not_after, key.token_ttl_seconds)


def _due(key: KeyRecord) -> list[tuple[str, int, str]]:
    """(time, kind, kid) of the transition ``key`` is waiting for: 0 activate, 1 retire,
    2 expire."""
    if key.state is KeyState.STAGED:
        return [(key.not_before, 0, key.kid)]
    if key.state is KeyState.ACTIVE:
        return [(key.not_after, 1, key.kid)]
    if key.state is KeyState.RETIRED and key.verify_until is not None:
        return [(key.verify_until, 2, key.kid)]
    return []


def _due_times(key: KeyRecord) -> list[str]:
    return [time for time, _, _ in _due(key)]
