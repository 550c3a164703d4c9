"""Errors of the ledger, its storage and its key stores, each with a CLI exit code.

For: failures that stop a command (bad input, a missing ledger, a conflict, an unusable key). A
failed verification is not an error: it is a ``VerifyReport`` with ``ok = False`` (exit code 1).
Not for: third-party exceptions, which storage and key-store backends translate into these.

Exit codes: 0 ok, 1 verification failed, 2 usage, 3 input rejected, 4 not authorised,
5 ledger missing or unreadable, 6 concurrent-append conflict, 7 key unusable, 8 ledger exists,
9 key store unreachable, 10 invalid key state transition (``starter_events``), 70 internal
error.
"""

from __future__ import annotations

from starter_contracts import StarterError
from starter_events.errors import EXIT_INPUT_REJECTED

EXIT_OK = 0
EXIT_VERIFY_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_AUTHORISED = 4
EXIT_LEDGER_UNAVAILABLE = 5
EXIT_CONFLICT = 6
EXIT_KEY_UNUSABLE = 7
EXIT_LEDGER_EXISTS = 8
EXIT_KEY_STORE_UNREACHABLE = 9
EXIT_INTERNAL = 70

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_INPUT_REJECTED",
    "EXIT_INTERNAL",
    "EXIT_KEY_STORE_UNREACHABLE",
    "EXIT_KEY_UNUSABLE",
    "EXIT_LEDGER_EXISTS",
    "EXIT_LEDGER_UNAVAILABLE",
    "EXIT_NOT_AUTHORISED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_VERIFY_FAILED",
    "ConflictError",
    "FormatError",
    "InputRejectedError",
    "KeyStoreError",
    "KeyStoreUnreachableError",
    "LedgerError",
    "LedgerExistsError",
    "LedgerUnavailableError",
    "NotAuthorisedError",
    "ProofError",
]


class LedgerError(StarterError):
    """Base error of the ledger."""


class InputRejectedError(LedgerError):
    """Input the ledger refuses: malformed JSON, too large, inconsistent with the ledger."""

    exit_code = EXIT_INPUT_REJECTED


class NotAuthorisedError(LedgerError):
    """The signing key is not an authorised signer at this position."""

    exit_code = EXIT_NOT_AUTHORISED


class LedgerUnavailableError(LedgerError):
    """The ledger does not exist, cannot be opened, or its storage failed."""

    exit_code = EXIT_LEDGER_UNAVAILABLE


class LedgerExistsError(LedgerError):
    """``init`` on a ledger that already has entries."""

    exit_code = EXIT_LEDGER_EXISTS


class ConflictError(LedgerError):
    """Another appender moved the ledger on since this one read its size."""

    exit_code = EXIT_CONFLICT


class KeyStoreError(LedgerError):
    """A signing key is missing, unreadable, badly protected or of the wrong kind."""

    exit_code = EXIT_KEY_UNUSABLE


class KeyStoreUnreachableError(KeyStoreError):
    """A remote key store (Vault/OpenBao, AWS, Azure) could not be reached or refused the call."""

    exit_code = EXIT_KEY_STORE_UNREACHABLE


class FormatError(LedgerError):
    """Bytes that do not follow the ledger's wire format (entry, checkpoint, note, bundle)."""

    exit_code = EXIT_INPUT_REJECTED


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not verify."""

    exit_code = EXIT_VERIFY_FAILED
