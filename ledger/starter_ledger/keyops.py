"""Key operations: rotate, tick, revoke, each one atomic ledger append with a signed receipt.

For: ``KeyManager``, the application service behind ``starter-cli keys``. It reads the key states
from the ledger, decides what to append (with ``KeyPolicy``: the JWKS cache lifetime that a staged
key must be published ahead of its use, key lifetime, token lifetime, warning window), creates new
private keys in a token key store, appends the ``key.*`` events in one transaction (the ledger
re-checks every transition against the history the store then accepts, so a concurrent change
cannot slip through),
and returns what changed with its audit receipt. The clock is injected. Not for: the lifecycle
rules themselves (``starter_events.keyring``) or serving the JWKS (the backend).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from starter_contracts import defaults
from starter_events import KeyRing, KeyState, KeyTransitionError, Step
from starter_events.keyring import format_timestamp
from starter_ledger.clock import Clock, SystemClock
from starter_ledger.errors import InputRejectedError, KeyStoreError
from starter_ledger.jwks import jwks_bytes, jwks_digest
from starter_ledger.keys import Signer
from starter_ledger.ledger import AppendResult, Event, Ledger
from starter_ledger.receipts import make_receipt
from starter_ledger.tokenkeys import TokenKeyStore

__all__ = ["KeyAction", "KeyManager", "KeyPolicy"]


@dataclass(frozen=True)
class KeyPolicy:
    """How keys are scheduled."""

    #: How long clients may cache the JWKS: a staged key is published at least this long
    #: before it signs anything, so every client has seen it.
    cache_lifetime: dt.timedelta = dt.timedelta(seconds=defaults.DEFAULT_JWKS_MAX_AGE_S)
    #: How long a key signs, from its activation (``not_after - not_before``).
    key_lifetime: dt.timedelta = dt.timedelta(seconds=defaults.DEFAULT_KEY_LIFETIME_S)
    #: Longest lifetime of a token: a retired key stays in the JWKS this long.
    token_ttl: dt.timedelta = dt.timedelta(seconds=defaults.DEFAULT_TOKEN_TTL_S)
    #: ``tick`` warns when the active key expires within this and no key is staged.
    warn_within: dt.timedelta = dt.timedelta(seconds=defaults.DEFAULT_KEY_WARN_WITHIN_S)


@dataclass
class KeyAction:
    """What a key operation did."""

    action: str
    steps: list[Step]
    result: AppendResult | None
    jwks_before: str
    jwks_after: str
    receipt: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.result is not None


class KeyManager:
    """Key operations on one ledger."""

    def __init__(
        self, ledger: Ledger, *, clock: Clock | None = None, policy: KeyPolicy | None = None
    ) -> None:
        self.ledger = ledger
        self.clock: Clock = clock or SystemClock()
        self.policy = policy or KeyPolicy()

    def ring(self) -> KeyRing:
        return self.ledger.key_ring()

    def jwks(self) -> bytes:
        """The JWKS published now."""
        return jwks_bytes(self.ring(), self.clock.now())

    # -- operations ----------------------------------------------------------------------

    def rotate(
        self,
        store: TokenKeyStore,
        signer: Signer,
        actor: str,
        *,
        key_set: str = "default",
        alg: str = "EdDSA",
        activate_at: dt.datetime | None = None,
        activate_now: bool = False,
    ) -> KeyAction:
        """Stage a new key (activating at ``activate_at``, by default as soon as the JWKS cache
        lifetime allows); with ``activate_now``, also retire the active key and activate the new
        one in the same append (an emergency: clients that cached the JWKS may reject tokens
        until they refetch it)."""
        ring = self.ring()
        now = self.clock.now()
        staged = ring.in_state(key_set, KeyState.STAGED)
        if staged:
            raise InputRejectedError(
                f"key set {key_set!r} already has a staged key, {staged[0].kid}, activating at "
                f"{staged[0].not_before}",
                hint="let 'keys tick' activate it when due, or 'keys revoke' it first",
            )
        if alg not in store.algs:
            raise KeyStoreError(
                f"key store {store.url} cannot hold {alg} keys",
                hint="use --alg " + " or --alg ".join(store.algs),
            )
        earliest = now + self.policy.cache_lifetime
        if activate_now:
            if activate_at is not None:
                raise InputRejectedError("--activate-now and --activate-at exclude each other")
            not_before = now
        else:
            not_before = activate_at or earliest
            if not_before < earliest:
                raise InputRejectedError(
                    f"activation at {format_timestamp(not_before)} is sooner than clients "
                    f"caching the JWKS for {self.policy.cache_lifetime} can see the key "
                    f"(earliest {format_timestamp(earliest)})",
                    hint="choose a later --activate-at, or --activate-now in an emergency",
                )
        stored = store.create(alg)  # a key the append below fails to record stays unused
        fixed = {
            "alg": stored.alg,
            "jwk": stored.public_jwk,
            "key_set": key_set,
            "kid": stored.kid,
            "not_after": format_timestamp(not_before + self.policy.key_lifetime),
            "not_before": format_timestamp(not_before),
        }
        steps = [
            Step(
                "key.staged",
                {
                    **fixed,
                    "ref": stored.ref,
                    "store": store.url,
                    "token_ttl_seconds": int(self.policy.token_ttl.total_seconds()),
                },
            )
        ]
        if activate_now:
            old = ring.active(key_set)
            if old is not None:
                until = min(
                    now + dt.timedelta(seconds=old.token_ttl_seconds),
                    _at(old.not_after) + dt.timedelta(seconds=old.token_ttl_seconds),
                )
                steps.append(
                    Step("key.retired", {**old.fixed(), "verify_until": format_timestamp(until)})
                )
            steps.append(Step("key.activated", fixed))
        return self._commit("rotate", key_set, ring=ring, steps=steps, signer=signer, actor=actor)

    def revoke(
        self,
        kid: str,
        reason: str,
        signer: Signer,
        actor: str,
        *,
        compromised_since: dt.datetime | None = None,
    ) -> KeyAction:
        """Revoke ``kid``: it leaves the JWKS at once, whatever its state."""
        ring = self.ring()
        record = ring.get(kid)
        if record is None:
            known = ", ".join(k.kid for k in ring.records()) or "none"
            raise InputRejectedError(
                f"no key {kid} in this ledger (known: {known})",
                hint="see 'starter-cli keys status'",
            )
        if record.state is KeyState.REVOKED:
            raise KeyTransitionError(
                f"key {kid} is revoked already (reason: {record.reason})",
                hint="see 'starter-cli keys status'",
            )
        payload = {**record.fixed(), "reason": reason}
        if compromised_since is not None:
            payload["compromised_since"] = format_timestamp(compromised_since)
        steps = [Step("key.revoked", payload)]
        action = self._commit(
            "revoke", record.key_set, ring=ring, steps=steps, signer=signer, actor=actor
        )
        if record.state is KeyState.ACTIVE:
            action.warnings.append(
                f"key set {record.key_set!r} has no active key now: "
                "run 'starter-cli keys rotate --activate-now'"
            )
        return action

    def tick(self, signer: Signer, actor: str) -> KeyAction:
        """Append every transition due now (idempotent: nothing due, nothing appended)."""
        ring = self.ring()
        plan = ring.plan(self.clock, self.policy.warn_within)
        if not plan.steps:
            digest = jwks_digest(jwks_bytes(ring, self.clock.now()))
            return KeyAction("tick", [], None, digest, digest, warnings=plan.warnings)
        key_sets = sorted({str(s.payload["key_set"]) for s in plan.steps})
        action = self._commit(
            "tick", ",".join(key_sets), ring=ring, steps=plan.steps, signer=signer, actor=actor
        )
        action.warnings = plan.warnings
        return action

    # -- committing ----------------------------------------------------------------------

    def _commit(
        self,
        action: str,
        key_set: str,
        *,
        ring: KeyRing,
        steps: list[Step],
        signer: Signer,
        actor: str,
    ) -> KeyAction:
        now = self.clock.now()
        before = jwks_digest(jwks_bytes(ring, now))
        result = self.ledger.append_many([Event(s.type, s.payload) for s in steps], signer, actor)
        after = jwks_digest(jwks_bytes(self.ledger.key_ring(result.size), now))
        kids: dict[str, list[str]] = {}
        for step in steps:
            kids.setdefault(step.type.removeprefix("key."), []).append(step.kid)
        entries = [
            (seq, raw, self.ledger.inclusion_proof(seq, result.size))
            for seq, raw in zip(range(result.first_seq, result.size), result.entries, strict=True)
        ]
        receipt = make_receipt(
            action=action,
            key_set=key_set,
            kids=kids,
            jwks_before=before,
            jwks_after=after,
            actor=actor,
            time=format_timestamp(now),
            origin=self.ledger.origin(),
            checkpoint=result.checkpoint,
            entries=entries,
            signer=signer,
        )
        return KeyAction(action, steps, result, before, after, receipt)


def _at(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
