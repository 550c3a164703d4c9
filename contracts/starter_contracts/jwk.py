"""Public JSON Web Key models (RFC 7517, RFC 8037).

For: validating the public half of a signer's key as it is written into the ledger. The model
refuses any member it does not know, so a private member (``d``) can never be accepted into an
event. Not for: key generation, thumbprints or signatures (see ``starter_ledger``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Ed25519PublicJWK(BaseModel):
    """An Ed25519 public key as an OKP JWK: ``{"crv": "Ed25519", "kty": "OKP", "x": ...}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    #: base64url (no padding) of the 32-byte public key: always 43 characters.
    x: str = Field(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")
