"""``key.staged``, ``key.activated``, ``key.retired``, ``key.revoked``, ``key.expired``: the
lifecycle of the token-signing keys whose public halves the JWKS publishes.

For: the payload models. Every event carries the key's public JWK (never a private member: the
models refuse unknown members), its ``kid`` (the RFC 7638 thumbprint, checked by the ledger), the
key set it belongs to, its algorithm and its validity window (``not_before``: when it may start
signing; ``not_after``: when it stops). ``key.staged`` also says where the private half lives (a
key store URL without secrets, and the key's ref in it) and how long a token it signs may live;
``key.retired`` says until when its signatures still verify; ``key.revoked`` says why. Times are
RFC 3339 UTC with a ``Z``. Not for: the transition rules (``starter_events.keyring``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from starter_contracts import PublicJWK, TokenAlg
from starter_contracts.keys import KEY_EVENT_TYPES as CONTRACT_KEY_EVENT_TYPES
from starter_events._registry import register

_KID = r"^[A-Za-z0-9_-]{43}$"
#: RFC 3339 UTC with milliseconds and a ``Z`` suffix (so that times compare as strings).
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
#: A key set name: lowercase letters, digits, ``.``, ``_`` and ``-``.
KEY_SET = r"^[a-z0-9][a-z0-9._-]{0,63}$"

#: Every key lifecycle event type, in lifecycle order.
KEY_EVENT_TYPES = CONTRACT_KEY_EVENT_TYPES


class KeyEventPayload(BaseModel):
    """What every key lifecycle event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_set: str = Field(default="default", pattern=KEY_SET)
    #: RFC 7638 thumbprint of ``jwk``.
    kid: str = Field(pattern=_KID)
    alg: TokenAlg
    #: The public key only.
    jwk: PublicJWK
    #: When the key may start signing (its scheduled activation).
    not_before: str = Field(pattern=TIMESTAMP)
    #: When the key stops signing for good.
    not_after: str = Field(pattern=TIMESTAMP)

    @model_validator(mode="after")
    def _window(self) -> KeyEventPayload:
        if self.not_after <= self.not_before:
            msg = "not_after must be later than not_before"
            raise ValueError(msg)
        expected = "OKP" if self.alg == "EdDSA" else "EC"
        if self.jwk.kty != expected:
            msg = f"alg {self.alg} needs a {expected} key, not {self.jwk.kty}"
            raise ValueError(msg)
        return self


@register("key.staged", 1, "publishes a new token-signing key ahead of its activation")
class KeyStagedPayload(KeyEventPayload):
    """Payload of ``key.staged`` v1."""

    #: The key store holding the private half, as a URL without secrets.
    store: str = Field(min_length=1, max_length=1024, pattern=r"^[^\s@]+$")
    #: Which key in that store (file name, key version, KMS key id...).
    ref: str = Field(min_length=1, max_length=512)
    #: Longest lifetime of a token this key signs, in seconds: a retired key stays in the JWKS
    #: this long after it stops signing.
    token_ttl_seconds: int = Field(ge=1, le=31 * 24 * 3600)


@register("key.activated", 1, "makes a staged key the one that signs tokens")
class KeyActivatedPayload(KeyEventPayload):
    """Payload of ``key.activated`` v1."""


@register("key.retired", 1, "stops a key signing; it still verifies until verify_until")
class KeyRetiredPayload(KeyEventPayload):
    """Payload of ``key.retired`` v1."""

    #: Until when tokens it signed still verify (it stays in the JWKS until then).
    verify_until: str = Field(pattern=TIMESTAMP)


@register("key.revoked", 1, "takes a key out of the JWKS at once (e.g. compromise)")
class KeyRevokedPayload(KeyEventPayload):
    """Payload of ``key.revoked`` v1."""

    reason: str = Field(min_length=1, max_length=1024)
    #: When the key is believed to have been compromised, if it was.
    compromised_since: str | None = Field(default=None, pattern=TIMESTAMP)


@register("key.expired", 1, "records that a retired key's verification window has closed")
class KeyExpiredPayload(KeyEventPayload):
    """Payload of ``key.expired`` v1."""
