"""Key stores chosen by URL scheme.

For: ``open_keystore(url)``, which maps a scheme to its backend; a bare path means ``file://``.
An unknown scheme fails naming the known ones. Not for: the keys' public side (``keys``).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from starter_ledger.errors import KeyStoreError
from starter_ledger.keystore.file import FileKeyStore
from starter_ledger.keystore.interface import KeyStore

__all__ = ["FileKeyStore", "KeyStore", "KeyStoreError", "known_schemes", "open_keystore"]


def _file(url: str) -> KeyStore:
    # file:///abs/path is absolute; file://rel/path keeps a path relative to the working folder.
    path = unquote(url[len("file://") :])
    if not path:
        raise KeyStoreError(f"key store URL {url!r} names no file", hint="use file://PATH")
    return FileKeyStore(path)


_SCHEMES: dict[str, Callable[[str], KeyStore]] = {"file": _file}


def known_schemes() -> list[str]:
    """The URL schemes a key store can be opened with."""
    return sorted(_SCHEMES)


def open_keystore(url: str) -> KeyStore:
    """The key store at ``url`` (``file://PATH`` or a bare path)."""
    if "://" not in url:
        return FileKeyStore(url)
    scheme = url.split("://", 1)[0].lower()
    factory = _SCHEMES.get(scheme)
    if factory is None:
        raise KeyStoreError(
            f"unknown key store scheme {scheme!r} in {url!r}",
            hint="known schemes: " + ", ".join(f"{s}://" for s in known_schemes()),
        )
    return factory(url)
