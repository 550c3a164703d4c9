"""Ledger storage chosen by URL scheme.

For: ``open_store(url, create=...)``, mapping ``sqlite:///PATH``, ``postgresql://...`` and
``memory://NAME`` to their backends; an unknown scheme fails naming the known ones.
Not for: the ledger's rules.
"""

from __future__ import annotations

from collections.abc import Callable

from starter_ledger.errors import LedgerUnavailableError
from starter_ledger.storage.interface import AppendBatch, LedgerStore, NewEntry
from starter_ledger.storage.memory import MemoryStore

__all__ = [
    "AppendBatch",
    "LedgerStore",
    "MemoryStore",
    "NewEntry",
    "known_schemes",
    "open_store",
]

_MEMORY: dict[str, MemoryStore] = {}


def _sqlite(url: str, create: bool, read_only: bool) -> LedgerStore:
    from starter_ledger.storage.sqlite import SQLiteStore  # SQLAlchemy only when used

    return SQLiteStore(url, create=create, read_only=read_only)


def _postgresql(url: str, create: bool, read_only: bool) -> LedgerStore:
    from starter_ledger.storage.postgresql import PostgresStore  # psycopg only when used

    return PostgresStore(url, create=create, read_only=read_only)


def _memory(url: str, create: bool, read_only: bool) -> LedgerStore:
    name = url[len("memory://") :]
    if name not in _MEMORY:
        if not create:
            raise LedgerUnavailableError(
                f"no in-memory ledger named {name!r} in this process",
                hint="create it first with create=True",
            )
        _MEMORY[name] = MemoryStore(name)
    return _MEMORY[name]


_SCHEMES: dict[str, Callable[[str, bool, bool], LedgerStore]] = {
    "memory": _memory,
    "postgresql": _postgresql,
    "sqlite": _sqlite,
}


def known_schemes() -> list[str]:
    """The URL schemes a ledger can be opened with."""
    return sorted(_SCHEMES)


def open_store(url: str, *, create: bool = False, read_only: bool = False) -> LedgerStore:
    """Open the ledger store at ``url``; ``create`` makes a new empty one where none exists;
    ``read_only`` (for readers such as the backend) never migrates and refuses appends."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    factory = _SCHEMES.get(scheme)
    if factory is None:
        raise LedgerUnavailableError(
            f"unknown ledger URL scheme {scheme!r} in {url!r}",
            hint="known: "
            + ", ".join(f"{s}://" for s in known_schemes())
            + " (e.g. sqlite:///.ledger/ledger.db)",
        )
    if create and read_only:
        raise ValueError("a read-only store cannot be created")
    return factory(url, create, read_only)
