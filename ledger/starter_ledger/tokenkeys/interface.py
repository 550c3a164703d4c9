"""The token-key-store family: where the private halves of the JWKS keys live.

For: the ``TokenKeyStore`` protocol every backend implements, its value types (``StoredKey``) and
the signer it hands out (``TokenSigner``). A store holds many keys of one key set; ``create`` makes
a new one (a new file, a new Vault transit key version, a new KMS key...), ``signer(ref)`` signs
with an existing one. Private material never leaves a store's module: not in a return value, a log
line or an exception message. Third-party errors become ``KeyStoreError`` (the key is missing or
unusable) or ``KeyStoreUnreachableError`` (the service could not be reached or refused the call).
Not for: the ledger's own signer key (``starter_ledger.keystore``) or key states (the ledger).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.jwk import alg_of_jwk, thumbprint

__all__ = [
    "KeyStoreError",
    "KeyStoreUnreachableError",
    "PublicKeyParts",
    "StoredKey",
    "TokenKeyStore",
    "TokenSigner",
]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key a store holds: its public JWK, its ``kid`` and where the store keeps it."""

    #: Which key in the store (file name, transit key version, KMS key id, secret name, Azure
    #: key version): enough, with the store URL, to sign with it again. Never secret.
    ref: str
    #: ``EdDSA`` (Ed25519) or ``ES256`` (P-256).
    alg: str
    #: Public members only: ``{"crv", "kty", "x"}`` or ``{"crv", "kty", "x", "y"}``.
    public_jwk: dict[str, str]
    #: RFC 7638 thumbprint of ``public_jwk``.
    kid: str


class TokenSigner(Protocol):
    """Signs JWS signing inputs with one stored key."""

    @property
    def kid(self) -> str: ...

    @property
    def alg(self) -> str: ...

    @property
    def public_jwk(self) -> dict[str, str]: ...

    def sign(self, message: bytes) -> bytes:
        """The JWS signature over ``message``: 64 bytes for EdDSA, ``r || s`` for ES256."""
        ...


class PublicKeyParts:
    """The public side every signer shares: its JWK, the ``kid`` (RFC 7638 thumbprint) and the
    ``alg`` the key type implies. Backends' signers inherit it and call ``_set_public``."""

    __slots__ = ("_alg", "_jwk", "_kid")

    def _set_public(self, jwk: dict[str, str]) -> None:
        self._jwk = dict(jwk)
        self._alg = alg_of_jwk(jwk)
        self._kid = thumbprint(jwk)

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def alg(self) -> str:
        return self._alg

    @property
    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)


class TokenKeyStore(Protocol):
    """A place that keeps the private keys of one key set."""

    @property
    def url(self) -> str:
        """Where the store is, as a URL without secrets (it is written into ledger events)."""
        ...

    #: The JWS algorithms this store can create keys for.
    algs: tuple[str, ...]

    def create(self, alg: str) -> StoredKey:
        """Make a new key; raises ``KeyStoreError`` for an algorithm the store cannot hold."""
        ...

    def signer(self, ref: str) -> TokenSigner:
        """A signer for the key ``ref``; raises ``KeyStoreError`` when there is no such key."""
        ...

    def close(self) -> None:
        """Release connections (nothing to do for most stores)."""
        ...
