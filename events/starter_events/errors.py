"""Errors of the event catalog.

For: an unknown event type or version, and a payload that fails its type's model. Both carry the
exit code the CLI uses for rejected input. Not for: ledger or storage failures.
"""

from __future__ import annotations

from starter_contracts import StarterError

#: Exit code for input the ledger refuses (bad JSON, unknown type, invalid payload, too large).
EXIT_INPUT_REJECTED = 3


class EventError(StarterError):
    """Base error of the event catalog."""

    exit_code = EXIT_INPUT_REJECTED


class UnknownEventTypeError(EventError):
    """The event type, or its schema version, is not in the catalog."""


class PayloadInvalidError(EventError):
    """The payload does not validate against its event type's model."""


#: Exit code for a key state change the lifecycle does not allow.
EXIT_KEY_TRANSITION = 10


class KeyTransitionError(EventError):
    """A key state change the lifecycle does not allow (e.g. activating a revoked key)."""

    exit_code = EXIT_KEY_TRANSITION
