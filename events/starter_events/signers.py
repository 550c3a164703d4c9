"""``signer.added`` and ``signer.revoked``: changes to the set of authorised signers.

For: the payload models. Not for: the trust rules (proof of possession, never revoking the last
signer), which ``starter_ledger.trust`` applies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from starter_contracts import Ed25519PublicJWK
from starter_events._registry import register

_KID = r"^[A-Za-z0-9_-]{43}$"


@register("signer.added", 1, "authorises a new signer, with its proof of possession")
class SignerAddedPayload(BaseModel):
    """Payload of ``signer.added`` v1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jwk: Ed25519PublicJWK
    #: Compact JWS by the new key over ``{"kid", "origin", "purpose": "signer.added"}``.
    proof_of_possession: str = Field(max_length=1024)
    note: str = Field(default="", max_length=1024)


@register("signer.revoked", 1, "removes an authorised signer (never the last one)")
class SignerRevokedPayload(BaseModel):
    """Payload of ``signer.revoked`` v1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: RFC 7638 thumbprint of the revoked signer's JWK.
    kid: str = Field(pattern=_KID)
    reason: str = Field(min_length=1, max_length=1024)
