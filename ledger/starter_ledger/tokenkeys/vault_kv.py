"""``vault-kv://HOST:PORT/MOUNT/PATH`` token key store: PKCS#8 PEM in one Vault/OpenBao KV v2
secret per key, ``MOUNT/data/PATH/<kid>``, field ``pkcs8``.

For: teams that already keep secrets in Vault KV and want the token keys there rather than on a
disk, with Vault's access control and audit log. ``create`` writes with check-and-set 0, so an
existing secret is never overwritten (the policy needs only ``create``, not ``update``, on
``MOUNT/data/PATH/*``); ``signer`` reads the secret and signs in this process. The token comes
from ``VAULT_TOKEN`` (or ``BAO_TOKEN``); ``?tls=false`` (plain HTTP) is for a loopback dev server
only; ``?namespace=NS`` selects a Vault Enterprise namespace. Not for: keys that must never leave
the server (use ``vault-transit://``), or KV version 1 mounts.
"""

from __future__ import annotations

import re
from typing import Any

from starter_ledger.errors import KeyStoreError
from starter_ledger.tokenkeys._pkcs8 import LOCAL_ALGS, LocalSigner, generate_pem
from starter_ledger.tokenkeys._vault import VaultConnection, VaultUrl, parse_url
from starter_ledger.tokenkeys.interface import StoredKey

__all__ = ["VaultKvStore", "open_store"]

SCHEME = "vault-kv"
#: The secret's field that holds the PKCS#8 PEM.
FIELD = "pkcs8"
_REF = re.compile(r"[A-Za-z0-9_-]{43}")


def open_store(url: str) -> VaultKvStore:
    """The KV key store at ``url`` (the token is read from the environment now)."""
    return VaultKvStore(parse_url(url, SCHEME, mount_segments=1))


class VaultKvStore:
    """Token keys as PKCS#8 PEM in Vault/OpenBao KV v2 secrets, one per key."""

    algs: tuple[str, ...] = LOCAL_ALGS

    def __init__(self, where: VaultUrl) -> None:
        self._where = where
        self._vault = VaultConnection(where)

    @property
    def url(self) -> str:
        return str(self._where)

    @property
    def _kv(self) -> Any:
        return self._vault.client.secrets.kv.v2

    def _path(self, ref: str) -> str:
        """The secret's path inside the mount (``PATH/<kid>``)."""
        if not _REF.fullmatch(ref):
            raise KeyStoreError(f"{ref!r} is not a key of {self.url} (expected a kid)")
        return f"{self._where.name}/{ref}"

    def create(self, alg: str) -> StoredKey:
        pem = generate_pem(alg)
        signer = LocalSigner(pem, "a new key")
        path = self._path(signer.kid)
        self._vault.call(
            self._kv.create_or_update_secret,
            "create",
            f"{self._where.mount}/data/{path}",
            missing=f"there is no KV v2 mount {self._where.mount} in {self.url}",
            path=path,
            secret={FIELD: pem.decode("ascii")},
            cas=0,
            mount_point=self._where.mount,
        )
        return signer.stored(signer.kid)

    def signer(self, ref: str) -> LocalSigner:
        path = self._path(ref)
        where = f"secret {self._where.mount}/data/{path} in {self.url}"
        answer = self._vault.call(
            self._kv.read_secret_version,
            "read",
            f"{self._where.mount}/data/{path}",
            missing=f"no key {ref} in {self.url}",
            path=path,
            mount_point=self._where.mount,
            raise_on_deleted_version=True,
        )
        outer = answer.get("data")
        fields = outer.get("data") if isinstance(outer, dict) else None
        pem = fields.get(FIELD) if isinstance(fields, dict) else None
        if not isinstance(pem, str) or not pem:
            raise KeyStoreError(f"{where} has no {FIELD!r} field")
        signer = LocalSigner(pem.encode("utf-8", "replace"), where)
        if signer.kid != ref:
            raise KeyStoreError(f"{where} holds key {signer.kid}, not {ref}")
        return signer

    def close(self) -> None:
        self._vault.close()

    def __repr__(self) -> str:
        return f"VaultKvStore({self.url!r})"
