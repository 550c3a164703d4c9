"""Key-state and provider literals: the vocabulary the CLI, the backend and the ledger share.

For: ``KeyState`` (the lifecycle states of a token-signing key), ``KeyEventType``,
``TokenKeyStoreScheme`` and ``LedgerScheme`` (the URL schemes each plug-in family knows).
Not for: the state machine (``starter_events.keyring``) or opening stores (``starter_ledger``).
"""

from __future__ import annotations

import enum
from typing import Literal, get_args

__all__ = [
    "KEY_EVENT_TYPES",
    "LEDGER_SCHEMES",
    "TOKEN_KEY_STORE_SCHEMES",
    "KeyEventType",
    "KeyState",
    "LedgerScheme",
    "TokenKeyStoreScheme",
]


class KeyState(enum.StrEnum):
    """Where a token-signing key is in its lifecycle: staged -> active -> retired -> expired,
    and revoked from any state."""

    STAGED = "staged"
    ACTIVE = "active"
    RETIRED = "retired"
    EXPIRED = "expired"
    REVOKED = "revoked"


#: The ledger event types that change a key's state.
KeyEventType = Literal["key.staged", "key.activated", "key.retired", "key.revoked", "key.expired"]
KEY_EVENT_TYPES: tuple[str, ...] = get_args(KeyEventType)

#: URL schemes of the token key stores (where the private halves of JWKS keys live).
TokenKeyStoreScheme = Literal[
    "file", "vault-transit", "vault-kv", "aws-kms", "aws-secretsmanager", "azure-keyvault"
]
TOKEN_KEY_STORE_SCHEMES: tuple[str, ...] = get_args(TokenKeyStoreScheme)

#: URL schemes of the ledger stores.
LedgerScheme = Literal["sqlite", "postgresql", "memory"]
LEDGER_SCHEMES: tuple[str, ...] = get_args(LedgerScheme)
