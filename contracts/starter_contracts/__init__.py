"""Shared, import-safe schemas of the Starter platform.

For: the value types that cross a boundary between the ledger, the CLI and the backend (the signed
entry envelope, the checkpoint, the public JWK) and the base error every Starter package raises.
Not for: behaviour. Nothing here reads the environment, opens a file or socket, or imports a server,
database or cloud SDK, so any process can import it at no cost.
"""

from starter_contracts.errors import StarterError
from starter_contracts.jwk import Ed25519PublicJWK
from starter_contracts.ledger import (
    ENTRY_MEDIA_TYPE,
    ORIGIN_PATTERN,
    Checkpoint,
    Envelope,
)

__all__ = [
    "ENTRY_MEDIA_TYPE",
    "ORIGIN_PATTERN",
    "Checkpoint",
    "Ed25519PublicJWK",
    "Envelope",
    "StarterError",
]
