"""``file://DIR`` token key store: one PKCS#8 PEM file per key, ``DIR/<kid>.pem``, mode 0600.

For: the embedded default. The folder is created with mode 0700; each key file with ``O_EXCL``
and mode 0600, written and fsynced before ``create`` returns, and removed again if writing fails.
A key file that group or others may read is refused, naming the ``chmod`` that fixes it. Not for:
keys that must never touch a disk (use ``vault-transit://``, ``aws-kms://`` or
``azure-keyvault://``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from starter_ledger.errors import KeyStoreError
from starter_ledger.keystore.file import read_key_file, write_key_file
from starter_ledger.tokenkeys._pkcs8 import LOCAL_ALGS, LocalSigner, generate_pem
from starter_ledger.tokenkeys.interface import StoredKey

__all__ = ["FileTokenKeyStore"]

_REF = re.compile(r"[A-Za-z0-9_-]{43}")


class FileTokenKeyStore:
    """Token keys as PKCS#8 files in one folder."""

    algs: tuple[str, ...] = LOCAL_ALGS

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    @property
    def url(self) -> str:
        return f"file://{self.folder}"

    def _path(self, ref: str) -> Path:
        if not _REF.fullmatch(ref):
            raise KeyStoreError(f"{ref!r} is not a key of {self.url} (expected a kid)")
        return self.folder / f"{ref}.pem"

    def create(self, alg: str) -> StoredKey:
        pem = generate_pem(alg)
        signer = LocalSigner(pem, "a new key")
        path = self._path(signer.kid)
        write_key_file(path, pem, hint="a key with this kid is stored already")
        return signer.stored(signer.kid)

    def signer(self, ref: str) -> LocalSigner:
        path = self._path(ref)
        pem = read_key_file(
            path,
            KeyStoreError(
                f"no key {ref} in {self.url}",
                hint="check --store: the key lives where 'keys rotate' created it",
            ),
        )
        signer = LocalSigner(pem, f"key file {path}")
        if signer.kid != ref:
            raise KeyStoreError(f"key file {path} holds key {signer.kid}, not {ref}")
        return signer

    def close(self) -> None:
        return None
