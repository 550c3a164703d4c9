"""Token key stores chosen by URL scheme: where the private halves of the JWKS keys live.

For: ``open_token_keystore(url)``, which maps a scheme to its backend module, imported only when
used (so ``boto3``, ``hvac`` or the Azure SDK load only for their own scheme). A bare path means
``file://``. An unknown scheme fails naming the known ones. Not for: key states (the ledger).

Schemes:

- ``file://DIR`` (default): PKCS#8 files, mode 0600.
- ``vault-transit://HOST:PORT/MOUNT/KEY``: Vault/OpenBao transit; the key never leaves the server.
- ``vault-kv://HOST:PORT/MOUNT/PATH``: PKCS#8 in a KV v2 secret per key.
- ``aws-kms://REGION``: one asymmetric KMS key per key; the key never leaves KMS.
- ``aws-secretsmanager://REGION/PREFIX``: PKCS#8 in one secret per key.
- ``azure-keyvault://VAULT-HOST/KEY``: an Azure Key Vault EC P-256 key, one version per key.
"""

from __future__ import annotations

import importlib
from urllib.parse import unquote

from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.tokenkeys.file import FileTokenKeyStore
from starter_ledger.tokenkeys.interface import StoredKey, TokenKeyStore, TokenSigner

__all__ = [
    "FileTokenKeyStore",
    "KeyStoreError",
    "KeyStoreUnreachableError",
    "StoredKey",
    "TokenKeyStore",
    "TokenSigner",
    "known_schemes",
    "open_token_keystore",
]

#: scheme -> module (under starter_ledger.tokenkeys) whose ``open_store(url)`` opens it.
_SCHEMES = {
    "file": "file",
    "vault-transit": "vault_transit",
    "vault-kv": "vault_kv",
    "aws-kms": "aws_kms",
    "aws-secretsmanager": "aws_secretsmanager",
    "azure-keyvault": "azure_keyvault",
}


def known_schemes() -> list[str]:
    """The URL schemes a token key store can be opened with."""
    return sorted(_SCHEMES)


def open_token_keystore(url: str) -> TokenKeyStore:
    """The token key store at ``url``."""
    if "://" not in url:
        return FileTokenKeyStore(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "file":
        path = unquote(url[len("file://") :])
        if not path:
            raise KeyStoreError(f"key store URL {url!r} names no folder", hint="use file://DIR")
        return FileTokenKeyStore(path)
    module = _SCHEMES.get(scheme)
    if module is None:
        raise KeyStoreError(
            f"unknown key store scheme {scheme!r} in {url!r}",
            hint="known schemes: " + ", ".join(f"{s}://" for s in known_schemes()),
        )
    opener = importlib.import_module(f"starter_ledger.tokenkeys.{module}").open_store
    store: TokenKeyStore = opener(url)
    return store
