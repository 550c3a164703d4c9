"""``file://PATH`` key store: an unencrypted PKCS#8 PEM file with mode 0600.

For: the embedded default. A new key file is created with ``O_EXCL`` and mode 0600 (never
world- or group-readable, never overwritten); an existing file that group or others can read is
refused. Not for: keys that must never touch a disk (use a KMS or Vault transit store).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from starter_ledger.errors import KeyStoreError
from starter_ledger.keys import Ed25519Signer

__all__ = ["FileKeyStore", "read_key_file", "write_key_file"]


class FileKeyStore:
    """An Ed25519 private key in a PKCS#8 PEM file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> Ed25519Signer:
        data = read_key_file(
            self.path,
            KeyStoreError(
                f"no key file at {self.path}",
                hint="create one with 'starter-cli ledger init' or pass --key file://PATH",
            ),
        )
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise KeyStoreError(
                f"key file {self.path} is not an unencrypted PKCS#8 PEM private key",
                hint="point --key at the file 'ledger init' created",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"key file {self.path} holds a {type(key).__name__}, not Ed25519")
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return Ed25519Signer(seed)

    def create(self) -> Ed25519Signer:
        signer = Ed25519Signer.generate()
        self.store(signer)
        return signer

    def store(self, signer: Ed25519Signer) -> None:
        """Write ``signer`` to a new file with mode 0600; never overwrites."""
        pem = Ed25519PrivateKey.from_private_bytes(signer.private_seed()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_key_file(self.path, pem, hint="use it with --key, or choose another path")


def read_key_file(path: Path, missing: KeyStoreError) -> bytes:
    """The bytes of a private key file; ``missing`` is raised when there is none, and a file that
    group or others may read is refused, naming the ``chmod`` that fixes it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise missing from None
    except OSError as e:
        raise KeyStoreError(f"cannot read key file {path}: {e.strerror}") from None
    if st.st_mode & 0o077:
        raise KeyStoreError(
            f"key file {path} is readable by group or others (mode {stat.filemode(st.st_mode)})",
            hint=f"run 'chmod 600 {path}'",
        )
    try:
        return path.read_bytes()
    except OSError as e:
        raise KeyStoreError(f"cannot read key file {path}: {e.strerror}") from None


def write_key_file(path: Path, pem: bytes, *, hint: str) -> None:
    """Create ``path`` with mode 0600 (folder 0700) holding ``pem``, fsynced; never overwrites
    (``hint`` says what to do when it exists); removed again if writing fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError(
            f"key file {path} exists already; refusing to overwrite it", hint=hint
        ) from None
    except OSError as e:
        raise KeyStoreError(f"cannot create key file {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        path.unlink(missing_ok=True)
        raise KeyStoreError(f"cannot write key file {path}: {e.strerror}") from None
