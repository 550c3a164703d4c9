"""``vault-transit://HOST:PORT/MOUNT/KEY`` token key store: one Vault/OpenBao transit key, one
version per token key.

For: keys that must never leave the server. The URL names one transit key; ``create`` makes it
(type ``ed25519`` for EdDSA, ``ecdsa-p256`` for ES256) the first time and rotates it afterwards,
so each token key is a key version and its ``ref`` is that version as a decimal string. Signing
sends the JWS signing input to ``MOUNT/sign/KEY`` with that version; the public key comes from
``MOUNT/keys/KEY``. One URL holds one key type: to move a key set from EdDSA to ES256, use another
key name. The token comes from ``VAULT_TOKEN`` (or ``BAO_TOKEN``); ``?tls=false`` (plain HTTP) is
for a loopback dev server only; ``?namespace=NS`` selects a Vault Enterprise namespace. Not for:
keys a process must sign with while Vault is down (every signature is a call to Vault), or
trimmed versions (``min_available_version``), which can no longer sign.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.jwk import public_jwk_of, thumbprint
from starter_ledger.tokenkeys._vault import VaultConnection, VaultUrl, parse_url
from starter_ledger.tokenkeys.interface import PublicKeyParts, StoredKey

__all__ = ["TransitSigner", "VaultTransitStore", "open_store"]

SCHEME = "vault-transit"
#: JWS algorithm -> transit key type, and back.
KEY_TYPES = {"EdDSA": "ed25519", "ES256": "ecdsa-p256"}
_ALGS = {key_type: alg for alg, key_type in KEY_TYPES.items()}
_REF = re.compile(r"[1-9][0-9]{0,9}")


def open_store(url: str) -> VaultTransitStore:
    """The transit key store at ``url`` (the token is read from the environment now)."""
    return VaultTransitStore(parse_url(url, SCHEME, mount_segments=None))


def _public_jwk(key_type: str, public_key: Any, where: str) -> dict[str, str]:
    """The JWK of a transit key version's ``public_key`` (base64 raw Ed25519, or PEM P-256)."""
    try:
        if key_type == "ed25519":
            raw = base64.b64decode(str(public_key), validate=True)
            return public_jwk_of(Ed25519PublicKey.from_public_bytes(raw))
        key = serialization.load_pem_public_key(str(public_key).encode("ascii"))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("not an EC key")
        return public_jwk_of(key)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise KeyStoreError(f"{where} has a public key that is not a {key_type} key") from None


class TransitSigner(PublicKeyParts):
    """Signs with one version of a transit key; ``repr`` shows only the key and version."""

    __slots__ = ("_store", "_version")

    def __init__(
        self, store: VaultTransitStore, version: int, alg: str, jwk: dict[str, str]
    ) -> None:
        self._store = store
        self._version = version
        self._set_public(jwk)
        if self._alg != alg:
            raise KeyStoreError(f"transit key version {version} is not an {alg} key")

    def sign(self, message: bytes) -> bytes:
        return self._store.sign(self._version, self._alg, message)

    def __repr__(self) -> str:
        return f"TransitSigner({self._store.url!r}, version={self._version}, kid={self._kid!r})"


class VaultTransitStore:
    """Token keys as versions of one Vault/OpenBao transit key."""

    algs: tuple[str, ...] = ("EdDSA", "ES256")

    def __init__(self, where: VaultUrl) -> None:
        self._where = where
        self._vault = VaultConnection(where)
        self._keys_path = f"{where.mount}/keys/{where.name}"

    @property
    def url(self) -> str:
        return str(self._where)

    @property
    def _transit(self) -> Any:
        return self._vault.client.secrets.transit

    def _find(self) -> dict[str, Any] | None:
        """The transit key's description (``type``, ``keys``, ``latest_version``...), or None."""
        answer = self._vault.find(
            self._transit.read_key,
            "read",
            self._keys_path,
            name=self._where.name,
            mount_point=self._where.mount,
        )
        return None if answer is None else self._data(answer, self._keys_path)

    def _read(self, missing: str) -> dict[str, Any]:
        """The transit key's description; a ``KeyStoreError`` saying ``missing`` if it is gone."""
        answer = self._vault.call(
            self._transit.read_key,
            "read",
            self._keys_path,
            missing=missing,
            name=self._where.name,
            mount_point=self._where.mount,
        )
        return self._data(answer, self._keys_path)

    def _data(self, answer: dict[str, Any], path: str) -> dict[str, Any]:
        data = answer.get("data")
        if not isinstance(data, dict):
            raise KeyStoreUnreachableError(f"{self.url} gave no data for {path}")
        return data

    def _check_type(self, info: dict[str, Any], wanted: str, alg: str) -> None:
        found = str(info.get("type"))
        if found != wanted:
            raise KeyStoreError(
                f"transit key {self._keys_path} of {self.url} is of type {found}, "
                f"not {wanted}, which {alg} needs",
                hint=f"use another key name for {alg} keys: "
                f"{SCHEME}://HOST:PORT/{self._where.mount}/NEW-KEY",
            )

    def create(self, alg: str) -> StoredKey:
        wanted = KEY_TYPES.get(alg)
        if wanted is None:
            raise KeyStoreError(
                f"cannot create a key for algorithm {alg!r} in {self.url}",
                hint="use EdDSA or ES256",
            )
        info = self._find()
        common = {"name": self._where.name, "mount_point": self._where.mount}
        if info is None:
            call, path = self._transit.create_key, self._keys_path
            common["key_type"] = wanted
        else:
            self._check_type(info, wanted, alg)
            call, path = self._transit.rotate_key, f"{self._keys_path}/rotate"
        where = f"there is no transit engine at {self._where.mount} in {self.url}"
        answer = self._vault.call(call, "update", path, missing=where, **common)
        # Newer servers answer with the key's description; the version is then exactly ours.
        data = answer.get("data")
        if not isinstance(data, dict) or "latest_version" not in data:
            data = self._read(f"transit key {self._keys_path} vanished from {self.url}")
        self._check_type(data, wanted, alg)
        version = data.get("latest_version")
        if not isinstance(version, int) or version < 1:
            raise KeyStoreUnreachableError(f"{self.url} gave no version for {self._keys_path}")
        jwk = self._version_jwk(data, version)
        return StoredKey(ref=str(version), alg=alg, public_jwk=jwk, kid=thumbprint(jwk))

    def _version_jwk(self, info: dict[str, Any], version: int) -> dict[str, str]:
        key_type = str(info.get("type"))
        if key_type not in _ALGS:
            raise KeyStoreError(
                f"transit key {self._keys_path} of {self.url} is of type {key_type}, "
                "neither ed25519 nor ecdsa-p256",
            )
        keys = info.get("keys")
        entry = keys.get(str(version)) if isinstance(keys, dict) else None
        if not isinstance(entry, dict):
            latest = info.get("latest_version")
            raise KeyStoreError(
                f"no key {version} in {self.url}: transit key {self._keys_path} "
                f"has versions up to {latest} (older ones may have been trimmed)",
            )
        where = f"version {version} of transit key {self._keys_path} in {self.url}"
        return _public_jwk(key_type, entry.get("public_key"), where)

    def signer(self, ref: str) -> TransitSigner:
        if not _REF.fullmatch(ref):
            raise KeyStoreError(
                f"{ref!r} is not a key of {self.url} (expected a key version, like 1)"
            )
        info = self._read(f"no key {ref} in {self.url}: there is no transit key {self._keys_path}")
        jwk = self._version_jwk(info, int(ref))
        return TransitSigner(self, int(ref), _ALGS[str(info["type"])], jwk)

    def sign(self, version: int, alg: str, message: bytes) -> bytes:
        """The JWS signature of ``message`` by ``version`` (use ``signer(ref).sign``)."""
        path = f"{self._where.mount}/sign/{self._where.name}"
        options = {"hash_algorithm": "sha2-256", "marshaling_algorithm": "jws"}
        answer = self._vault.call(
            self._transit.sign_data,
            "update",
            path,
            missing=f"no transit key {self._keys_path} in {self.url}",
            name=self._where.name,
            mount_point=self._where.mount,
            hash_input=base64.b64encode(message).decode("ascii"),
            key_version=version,
            **(options if alg == "ES256" else {}),
        )
        text = self._data(answer, path).get("signature")
        prefix = f"vault:v{version}:"
        bad = KeyStoreUnreachableError(
            f"{self.url} answered {path} with no {alg} signature by version {version}"
        )
        if not isinstance(text, str) or not text.startswith(prefix):
            raise bad
        body = text[len(prefix) :]
        try:
            if alg == "ES256":  # JWS marshaling: base64url without padding, r || s
                signature = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            else:
                signature = base64.b64decode(body, validate=True)
        except (ValueError, binascii.Error):
            raise bad from None
        if len(signature) != 64:
            raise bad
        return signature

    def close(self) -> None:
        self._vault.close()

    def __repr__(self) -> str:
        return f"VaultTransitStore({self.url!r})"
