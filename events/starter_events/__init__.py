"""The event catalog: one typed payload model per ledger event type and version.

For: knowing which event types exist, validating a payload against its type's model, and naming the
known types when an unknown one is asked for. Adding a type is one small module that calls
``register``. Not for: signing, storage or trust rules (see ``starter_ledger``); this package is
pure and does no I/O.
"""

from starter_events import genesis, keys, notes, release, schemas, signers, supplychain
from starter_events._registry import (
    EventType,
    known_types,
    latest_version,
    lookup,
    register,
    validate_payload,
)
from starter_events.errors import (
    EventError,
    KeyTransitionError,
    PayloadInvalidError,
    UnknownEventTypeError,
)
from starter_events.genesis import GenesisPayload
from starter_events.keyring import KeyRecord, KeyRing, KeyState, Plan, Step
from starter_events.keys import (
    KEY_EVENT_TYPES,
    KeyActivatedPayload,
    KeyExpiredPayload,
    KeyRetiredPayload,
    KeyRevokedPayload,
    KeyStagedPayload,
)
from starter_events.notes import NoteRecordedPayload
from starter_events.schemas import SchemaChange, SchemaFrozenPayload
from starter_events.signers import SignerAddedPayload, SignerRevokedPayload

__all__ = [
    "KEY_EVENT_TYPES",
    "EventError",
    "EventType",
    "GenesisPayload",
    "KeyActivatedPayload",
    "KeyExpiredPayload",
    "KeyRecord",
    "KeyRetiredPayload",
    "KeyRevokedPayload",
    "KeyRing",
    "KeyStagedPayload",
    "KeyState",
    "KeyTransitionError",
    "NoteRecordedPayload",
    "PayloadInvalidError",
    "Plan",
    "SchemaChange",
    "SchemaFrozenPayload",
    "SignerAddedPayload",
    "SignerRevokedPayload",
    "Step",
    "UnknownEventTypeError",
    "genesis",
    "keys",
    "known_types",
    "latest_version",
    "lookup",
    "notes",
    "register",
    "release",
    "schemas",
    "signers",
    "supplychain",
    "validate_payload",
]
