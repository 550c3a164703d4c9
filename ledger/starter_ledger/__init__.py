"""Starter Ledger: a signed, Merkle-verifiable, append-only event ledger.

For: the library API. ``Ledger`` appends signed entries; ``verify_store``, ``verify_bundle`` and
``verify_from_checkpoint`` prove a ledger's history; ``merkle`` verifies RFC 9162 proofs;
``open_store`` and ``open_keystore`` choose backends by URL. ``docs/ledger-format.md`` is the wire
format. Not for: the CLI (``starter_cli``) or the HTTP service (``starter_backend``).
"""

from starter_ledger.errors import LedgerError
from starter_ledger.keys import Ed25519Signer, Signer
from starter_ledger.keystore import open_keystore
from starter_ledger.ledger import AppendResult, Event, Ledger
from starter_ledger.storage import MemoryStore, open_store
from starter_ledger.verify import (
    Failure,
    VerifyReport,
    verify_bundle,
    verify_from_checkpoint,
    verify_store,
)

__all__ = [
    "AppendResult",
    "Ed25519Signer",
    "Event",
    "Failure",
    "Ledger",
    "LedgerError",
    "MemoryStore",
    "Signer",
    "VerifyReport",
    "open_keystore",
    "open_store",
    "verify_bundle",
    "verify_from_checkpoint",
    "verify_store",
]
