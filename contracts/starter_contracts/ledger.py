"""The ledger's wire models: the signed entry envelope and the checkpoint.

For: the exact shape of what is signed (``Envelope``, serialised with RFC 8785 before signing) and
of a parsed C2SP tlog-checkpoint (``Checkpoint``). ``docs/ledger-format.md`` is the normative text.
Not for: serialisation or verification (see ``starter_ledger``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: ``typ`` header parameter of every ledger entry JWS (RFC 7515 section 4.1.9, explicit typing).
ENTRY_MEDIA_TYPE = "starter-ledger-entry+jws"

#: A ledger origin: 1-255 printable ASCII characters, no space and no ``+`` (it is also the
#: signed-note key name, which may contain neither), e.g. ``example.com/platform/ledger``.
ORIGIN_PATTERN = r"^[\x21-\x2a\x2c-\x7e]{1,255}$"

_B64_SHA256 = r"^[A-Za-z0-9+/]{43}=$"
_RFC3339_UTC = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$"


class Envelope(BaseModel):
    """What a ledger entry signs: its position, its event and the root of all history before it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    #: The ledger's origin (the first line of its checkpoints); binds the entry to one ledger.
    origin: str = Field(pattern=ORIGIN_PATTERN)
    #: 0-based position of the entry.
    seq: int = Field(ge=0)
    #: Dotted event type, e.g. ``ledger.genesis``.
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=128)
    schema_version: int = Field(ge=1)
    #: RFC 3339 UTC time with a ``Z`` suffix.
    occurred_at: str = Field(pattern=_RFC3339_UTC)
    #: Who caused the event (a user, a CI job); free text, no newlines.
    actor: str = Field(min_length=1, max_length=256, pattern=r"^[^\n\r]+$")
    #: base64 RFC 9162 root of the ledger of size ``seq`` (all entries before this one).
    prev_root: str = Field(pattern=_B64_SHA256)
    #: The event's payload; validated against the event type's model.
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _real_time(cls, value: str) -> str:
        try:
            dt.datetime.fromisoformat(value[:19])
        except ValueError:
            msg = f"{value!r} is not a real date and time"
            raise ValueError(msg) from None
        return value


class Checkpoint(BaseModel):
    """The body of a C2SP tlog-checkpoint: origin, tree size and root hash."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    origin: str = Field(pattern=ORIGIN_PATTERN)
    size: int = Field(ge=0)
    #: base64 (standard alphabet, padded) of the 32-byte RFC 9162 root hash.
    root_hash: str = Field(pattern=_B64_SHA256)
    #: Optional extension lines, in order.
    extensions: tuple[str, ...] = Field(default=(), strict=False)
