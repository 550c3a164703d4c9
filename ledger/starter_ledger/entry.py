"""Ledger entries: the envelope signed as a compact JWS, and its strict decoding.

For: ``encode_entry`` (envelope -> RFC 8785 bytes -> JWS with ``typ`` starter-ledger-entry+jws) and
``decode_entry`` (verbatim bytes -> parsed parts, refusing anything non-canonical). The entry bytes
are what the Merkle tree hashes; nothing is ever re-serialised from parsed values to verify.
Not for: signature or trust checks (``verify``, ``trust``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from starter_contracts import ENTRY_MEDIA_TYPE, Envelope
from starter_ledger.errors import FormatError
from starter_ledger.jcs import canonicalize, parse_canonical
from starter_ledger.jws import CompactJWS, parse_compact, sign_compact
from starter_ledger.keys import Signer


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded entry: its verbatim bytes, its JWS parts and its validated envelope."""

    raw: bytes
    jws: CompactJWS
    envelope: Envelope

    @property
    def kid(self) -> str:
        return self.jws.kid


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 UTC with millisecond precision and a ``Z`` suffix."""
    if moment.tzinfo is not dt.UTC:  # the system clock's own zone needs no conversion
        moment = moment.astimezone(dt.UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def encode_entry(envelope: Envelope | dict[str, Any], signer: Signer) -> bytes:
    """Sign ``envelope`` (the model, or its already validated JSON form) with ``signer``; the
    result is the entry's verbatim bytes."""
    value = envelope.model_dump(mode="json") if isinstance(envelope, Envelope) else envelope
    return sign_compact(canonicalize(value), signer, ENTRY_MEDIA_TYPE).encode("ascii")


def decode_envelope(payload: bytes) -> Envelope:
    """Parse and validate the JWS payload of an entry (must be RFC 8785 canonical)."""
    obj: Any = parse_canonical(payload)
    try:
        return Envelope.model_validate(obj)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = ".".join(map(str, err["loc"])) or "<envelope>"
        raise FormatError(f"envelope is invalid: {where}: {err['msg']}") from None


def decode_entry(raw: bytes) -> Entry:
    """Decode an entry's verbatim bytes; raises ``FormatError`` on any deviation."""
    jws = parse_compact(raw, ENTRY_MEDIA_TYPE)
    return Entry(raw=raw, jws=jws, envelope=decode_envelope(jws.payload))
