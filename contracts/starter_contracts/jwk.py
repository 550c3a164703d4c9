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


class P256PublicJWK(BaseModel):
    """A NIST P-256 public key as an EC JWK (RFC 7518 section 6.2): crv, kty, x and y."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kty: Literal["EC"]
    crv: Literal["P-256"]
    #: base64url (no padding) of the 32-byte coordinates: always 43 characters.
    x: str = Field(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")
    y: str = Field(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")


#: The public key of a token-signing key: Ed25519 (EdDSA) or P-256 (ES256).
PublicJWK = Ed25519PublicJWK | P256PublicJWK

#: JWS algorithms of token-signing keys, and the JWK each uses.
TOKEN_ALGS: dict[str, str] = {"EdDSA": "OKP/Ed25519", "ES256": "EC/P-256"}

#: The JWS algorithms a token-signing key may use: Ed25519 (RFC 8037) or P-256 (RFC 7518).
TokenAlg = Literal["EdDSA", "ES256"]


class PublishedJWK(BaseModel):
    """One key of a published JWKS: the public members plus ``kid``, ``alg`` and ``use``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kty: Literal["OKP", "EC"]
    crv: Literal["Ed25519", "P-256"]
    x: str
    y: str | None = None
    kid: str = Field(pattern=r"^[A-Za-z0-9_-]{43}$")
    alg: TokenAlg
    use: Literal["sig"] = "sig"


class JWKS(BaseModel):
    """A JWK Set (RFC 7517 section 5) as the backend serves it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: tuple[PublishedJWK, ...]
