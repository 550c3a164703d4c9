"""The key-store family: where a signer's private key lives and how it is used.

For: the ``KeyStore`` protocol every backend implements, chosen by URL scheme in
``starter_ledger.keystore``. A key store hands out a ``Signer``; private material never leaves it
in a log line, an exception message or a ledger entry. Not for: public-key handling (``keys``).
"""

from __future__ import annotations

from typing import Protocol

from starter_ledger.errors import KeyStoreError
from starter_ledger.keys import Signer

__all__ = ["KeyStore", "KeyStoreError"]


class KeyStore(Protocol):
    """One signing key at one location."""

    @property
    def url(self) -> str:
        """Where the key lives, as a URL without secrets."""
        ...

    def exists(self) -> bool:
        """True when a key is present at this location."""
        ...

    def load(self) -> Signer:
        """The stored key; raises ``KeyStoreError`` when missing, unreadable or unsafe."""
        ...

    def create(self) -> Signer:
        """Generate and store a new key; raises ``KeyStoreError`` if one exists already."""
        ...
