"""Ed25519 keys as JWKs: RFC 8037 OKP keys, RFC 7638 thumbprints, signing and verification.

For: turning a public key into its JWK and ``kid`` (the RFC 7638 thumbprint), and one ``Signer``
abstraction that key stores return. Signing and verification use libsodium (PyNaCl), which is
faster than OpenSSL for Ed25519 and enforces canonical signatures. Not for: loading keys from
storage (see ``starter_ledger.keystore``).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import nacl.bindings
import nacl.exceptions
import nacl.signing

from starter_ledger.encoding import b64url_decode, b64url_encode
from starter_ledger.errors import FormatError
from starter_ledger.jcs import canonicalize


class Signer(Protocol):
    """A key that can sign ledger entries. Private material never leaves it."""

    @property
    def kid(self) -> str:
        """RFC 7638 thumbprint of the public JWK."""
        ...

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public JWK (``kty``, ``crv``, ``x``)."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``message``."""
        ...


def public_jwk(public_key: bytes) -> dict[str, str]:
    """The OKP JWK of a 32-byte Ed25519 public key (RFC 8037 section 2)."""
    if len(public_key) != 32:
        raise FormatError(f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(public_key)}


def public_key_bytes(jwk: dict[str, Any]) -> bytes:
    """The raw 32-byte public key of an OKP Ed25519 JWK; refuses any private member."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise FormatError("not an OKP Ed25519 JWK (kty must be OKP, crv Ed25519)")
    if "d" in jwk:
        raise FormatError("JWK holds a private member 'd'; only public keys are accepted")
    raw = b64url_decode(str(jwk.get("x", "")))
    if len(raw) != 32:
        raise FormatError("JWK member x is not a 32-byte Ed25519 public key")
    return raw


#: RFC 7638 section 3.2: the required members hashed for each key type.
_THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an OKP or EC JWK: its ``kid`` here."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise FormatError("a thumbprint needs an OKP (crv, x) or EC (crv, x, y) JWK")
    required = {m: jwk[m] for m in members}
    return b64url_encode(hashlib.sha256(canonicalize(required)).digest())


class Ed25519Signer:
    """An in-memory Ed25519 key. ``repr`` and ``str`` show only the ``kid``."""

    __slots__ = ("_jwk", "_key", "_kid", "_secret")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise FormatError("an Ed25519 private key seed has 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self._secret = nacl.bindings.crypto_sign_seed_keypair(seed)[1]
        self._jwk = public_jwk(bytes(self._key.verify_key))
        self._kid = thumbprint(self._jwk)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        """A fresh random key."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    def sign(self, message: bytes) -> bytes:
        # libsodium's combined form is signature || message; the detached signature is its head.
        return nacl.bindings.crypto_sign(message, self._secret)[:64]

    def private_seed(self) -> bytes:
        """The 32-byte private seed, for a key store that must persist it."""
        return bytes(self._key)

    def __repr__(self) -> str:
        return f"Ed25519Signer(kid={self._kid!r})"


class Verifier:
    """Verifies Ed25519 signatures for one public key."""

    __slots__ = ("_key", "kid", "public_key")

    def __init__(self, public_key: bytes) -> None:
        self.public_key = public_key
        self._key = nacl.signing.VerifyKey(public_key)
        self.kid = thumbprint(public_jwk(public_key))

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            self._key.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError):
            return False
        return True
