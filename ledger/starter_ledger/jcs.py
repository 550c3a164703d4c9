"""The one canonicaliser: RFC 8785 JSON Canonicalization Scheme.

For: every byte string that is hashed or signed (entry envelopes, JWS headers, JWK thumbprint
inputs, proofs of possession). Wraps the ``rfc8785`` library. Not for: output meant for people,
which uses ordinary pretty JSON.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from starter_ledger.errors import FormatError


def canonicalize(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise FormatError(f"value cannot be canonicalized (RFC 8785): {e}") from None


def parse_canonical(data: bytes) -> Any:
    """Parse JSON bytes and insist that they are already in RFC 8785 canonical form."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"not JSON: {e}") from None
    if canonicalize(value) != data:
        raise FormatError("JSON is not in RFC 8785 canonical form")
    return value
