"""Public JWKs of token-signing keys (Ed25519 and P-256) and JWS signature checks with them.

For: turning a ``cryptography`` public key into its JWK (RFC 8037 OKP, RFC 7518 EC), the ``alg``
each key type signs with, converting ECDSA signatures between DER (what KMS and OpenSSL return)
and the JWS ``r || s`` form (RFC 7518 section 3.4), and verifying a JWS signature with a public
JWK. Not for: private keys (the token key stores) or the ledger's own Ed25519 entries (``keys``).
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from starter_ledger.encoding import b64url_decode, b64url_encode
from starter_ledger.errors import FormatError
from starter_ledger.keys import thumbprint

__all__ = [
    "ALG_OF",
    "alg_of_jwk",
    "der_to_raw_ecdsa",
    "public_jwk_of",
    "raw_to_der_ecdsa",
    "thumbprint",
    "verify_signature",
]

#: The JWS algorithm of each key type (``kty/crv``).
ALG_OF = {"OKP/Ed25519": "EdDSA", "EC/P-256": "ES256"}


def public_jwk_of(key: Any) -> dict[str, str]:
    """The public JWK of an Ed25519 or P-256 public (or private) ``cryptography`` key."""
    if hasattr(key, "public_key"):
        key = key.public_key()
    if isinstance(key, Ed25519PublicKey):
        from cryptography.hazmat.primitives import serialization

        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw)}
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        numbers = key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url_encode(numbers.x.to_bytes(32, "big")),
            "y": b64url_encode(numbers.y.to_bytes(32, "big")),
        }
    raise FormatError(f"a {type(key).__name__} is neither an Ed25519 nor a P-256 key")


def alg_of_jwk(jwk: dict[str, Any]) -> str:
    """``EdDSA`` for an OKP Ed25519 JWK, ``ES256`` for an EC P-256 one."""
    alg = ALG_OF.get(f"{jwk.get('kty')}/{jwk.get('crv')}")
    if alg is None:
        raise FormatError("only OKP/Ed25519 and EC/P-256 keys sign tokens")
    return alg


def _public_key(jwk: dict[str, Any]) -> Ed25519PublicKey | ec.EllipticCurvePublicKey:
    alg = alg_of_jwk(jwk)
    if alg == "EdDSA":
        return Ed25519PublicKey.from_public_bytes(b64url_decode(str(jwk["x"])))
    x = int.from_bytes(b64url_decode(str(jwk["x"])), "big")
    y = int.from_bytes(b64url_decode(str(jwk["y"])), "big")
    try:
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except ValueError:
        raise FormatError("EC JWK is not a point on P-256") from None


def der_to_raw_ecdsa(der: bytes) -> bytes:
    """An ECDSA P-256 signature in DER (KMS, OpenSSL) as the 64-byte JWS form ``r || s``."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        raise FormatError("ECDSA signature is not DER") from None
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_to_der_ecdsa(raw: bytes) -> bytes:
    """The JWS ``r || s`` form of a P-256 signature as DER."""
    if len(raw) != 64:
        raise FormatError("an ES256 signature has 64 bytes")
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def verify_signature(jwk: dict[str, Any], message: bytes, signature: bytes) -> bool:
    """True when ``signature`` (JWS form) over ``message`` verifies under ``jwk``."""
    key = _public_key(jwk)
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(raw_to_der_ecdsa(signature), message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, FormatError):
        return False
    return True
