"""The event catalog: one typed payload model per ledger event type and version.

For: knowing which event types exist, validating a payload against its type's model, and naming the
known types when an unknown one is asked for. Adding a type is one small module that calls
``register``. Not for: signing, storage or trust rules (see ``starter_ledger``); this package is
pure and does no I/O.
"""

from starter_events import genesis, notes, signers
from starter_events._registry import (
    EventType,
    known_types,
    latest_version,
    lookup,
    register,
    validate_payload,
)
from starter_events.errors import EventError, PayloadInvalidError, UnknownEventTypeError
from starter_events.genesis import GenesisPayload
from starter_events.notes import NoteRecordedPayload
from starter_events.signers import SignerAddedPayload, SignerRevokedPayload

__all__ = [
    "EventError",
    "EventType",
    "GenesisPayload",
    "NoteRecordedPayload",
    "PayloadInvalidError",
    "SignerAddedPayload",
    "SignerRevokedPayload",
    "UnknownEventTypeError",
    "genesis",
    "known_types",
    "latest_version",
    "lookup",
    "notes",
    "register",
    "signers",
    "validate_payload",
]
