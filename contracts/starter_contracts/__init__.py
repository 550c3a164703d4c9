"""Shared, import-safe schemas of the Starter platform.

For: the value types that cross a boundary between the ledger, the CLI and the backend (the signed
entry envelope, the checkpoint, the public JWK, the backend's API bodies and settings) and the
base error every Starter package raises.
Not for: behaviour. Nothing here reads the environment, opens a file or socket, or imports a server,
database or cloud SDK. Names are loaded on first use, so importing the package (for example to
reach ``StarterError``) does not import pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starter_contracts.api import (
        ConsistencyProofBody,
        EntriesPage,
        EntryItem,
        ErrorBody,
        HealthBody,
        InclusionProofBody,
        ReadyBody,
    )
    from starter_contracts.errors import StarterError
    from starter_contracts.jwk import (
        JWKS,
        TOKEN_ALGS,
        Ed25519PublicJWK,
        P256PublicJWK,
        PublicJWK,
        PublishedJWK,
        TokenAlg,
    )
    from starter_contracts.keys import KeyState
    from starter_contracts.ledger import ENTRY_MEDIA_TYPE, ORIGIN_PATTERN, Checkpoint, Envelope
    from starter_contracts.providers import AwsStoreConfig, AzureStoreConfig, VaultStoreConfig
    from starter_contracts.settings import BackendSettings, CliSettings

    __version__: str

_WHERE = {
    "AwsStoreConfig": "starter_contracts.providers",
    "AzureStoreConfig": "starter_contracts.providers",
    "CliSettings": "starter_contracts.settings",
    "KeyState": "starter_contracts.keys",
    "VaultStoreConfig": "starter_contracts.providers",
    "BackendSettings": "starter_contracts.settings",
    "ConsistencyProofBody": "starter_contracts.api",
    "EntriesPage": "starter_contracts.api",
    "EntryItem": "starter_contracts.api",
    "ErrorBody": "starter_contracts.api",
    "HealthBody": "starter_contracts.api",
    "InclusionProofBody": "starter_contracts.api",
    "ReadyBody": "starter_contracts.api",
    "ENTRY_MEDIA_TYPE": "starter_contracts.ledger",
    "ORIGIN_PATTERN": "starter_contracts.ledger",
    "Checkpoint": "starter_contracts.ledger",
    "Ed25519PublicJWK": "starter_contracts.jwk",
    "JWKS": "starter_contracts.jwk",
    "P256PublicJWK": "starter_contracts.jwk",
    "PublicJWK": "starter_contracts.jwk",
    "PublishedJWK": "starter_contracts.jwk",
    "TOKEN_ALGS": "starter_contracts.jwk",
    "TokenAlg": "starter_contracts.jwk",
    "Envelope": "starter_contracts.ledger",
    "StarterError": "starter_contracts.errors",
}

__all__ = [
    "ENTRY_MEDIA_TYPE",
    "JWKS",
    "ORIGIN_PATTERN",
    "TOKEN_ALGS",
    "AwsStoreConfig",
    "AzureStoreConfig",
    "BackendSettings",
    "Checkpoint",
    "CliSettings",
    "ConsistencyProofBody",
    "Ed25519PublicJWK",
    "EntriesPage",
    "EntryItem",
    "Envelope",
    "ErrorBody",
    "HealthBody",
    "InclusionProofBody",
    "KeyState",
    "P256PublicJWK",
    "PublicJWK",
    "PublishedJWK",
    "ReadyBody",
    "StarterError",
    "TokenAlg",
    "VaultStoreConfig",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # not cached: ``starter-cli release bump`` updates it in-process
        return importlib.import_module("starter_contracts._version").__version__
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'starter_contracts' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
