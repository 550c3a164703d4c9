"""Keys held as PKCS#8 PEM by a store (file, Vault KV, Secrets Manager) and signed with locally.

For: generating an Ed25519 or P-256 key as PKCS#8 PEM, loading one back into a ``LocalSigner``, and
the ``StoredKey`` that describes it. The PEM bytes go only to the store that keeps them. Not for:
stores whose keys never leave the service (Vault transit, KMS, Azure Key Vault).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from starter_ledger.errors import KeyStoreError
from starter_ledger.jwk import der_to_raw_ecdsa, public_jwk_of
from starter_ledger.tokenkeys.interface import PublicKeyParts, StoredKey

#: Algorithms a PKCS#8-holding store can create keys for.
LOCAL_ALGS: tuple[str, ...] = ("EdDSA", "ES256")


def generate_pem(alg: str) -> bytes:
    """A new private key for ``alg`` as unencrypted PKCS#8 PEM."""
    key: Any
    if alg == "EdDSA":
        key = Ed25519PrivateKey.generate()
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise KeyStoreError(f"cannot create a key for algorithm {alg!r}", hint="use EdDSA or ES256")
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


class LocalSigner(PublicKeyParts):
    """Signs with a private key loaded from PKCS#8; ``repr`` shows only the ``kid``."""

    __slots__ = ("_key",)

    def __init__(self, pem: bytes, where: str) -> None:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise KeyStoreError(
                f"{where} does not hold an unencrypted PKCS#8 PEM private key"
            ) from None
        if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyStoreError(f"{where} holds a {type(key).__name__}, not Ed25519 or P-256")
        try:
            self._set_public(public_jwk_of(key))
        except Exception:
            raise KeyStoreError(f"{where} holds a key that is neither Ed25519 nor P-256") from None
        self._key = key

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._key, Ed25519PrivateKey):
            return self._key.sign(message)
        return der_to_raw_ecdsa(self._key.sign(message, ec.ECDSA(hashes.SHA256())))

    def stored(self, ref: str) -> StoredKey:
        return StoredKey(ref=ref, alg=self._alg, public_jwk=self.public_jwk, kid=self._kid)

    def __repr__(self) -> str:
        return f"LocalSigner(kid={self._kid!r})"
