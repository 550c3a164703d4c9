"""``StoreCase``: what each token key store backend's fixture hands the contract suite."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from starter_ledger.tokenkeys import TokenKeyStore


@dataclass
class StoreCase:
    """An open store, how to reopen it from its URL, and what to exercise."""

    store: TokenKeyStore
    reopen: Callable[[], TokenKeyStore]
    algs: tuple[str, ...]
    #: A ref the store does not hold (in the backend's own ref format).
    missing_ref: str
    #: Credentials the store was given; none may appear in its URL, reprs or errors.
    secrets: tuple[str, ...] = ()
    #: A store of the same kind whose service cannot be reached (None for the file store).
    unreachable: Callable[[], TokenKeyStore] | None = field(default=None)


def free_port() -> int:
    """A loopback TCP port nobody listens on (bound once by the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
