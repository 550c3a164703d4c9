"""Strict base64 and base64url codecs.

For: decoding that refuses anything but the one canonical encoding of the bytes (no whitespace, no
padding in base64url, zero unused bits), so that two different strings never decode to the same
signed bytes. Not for: lenient parsing of user input.
"""

from __future__ import annotations

import base64
import binascii

from starter_ledger.errors import FormatError


def _ascii(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise FormatError("base64 text holds non-ASCII characters") from None


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url, refusing any non-canonical form."""
    raw = _ascii(text)
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as e:
        raise FormatError(f"not base64url: {e}") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=") != raw:
        raise FormatError("not canonical unpadded base64url")
    return data


def b64_encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 section 4), as in C2SP checkpoints."""
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str | bytes) -> bytes:
    """Decode padded standard base64, refusing any non-canonical form."""
    raw = _ascii(text)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as e:
        raise FormatError(f"not base64: {e}") from None
    if base64.b64encode(data) != raw:
        raise FormatError("not canonical base64")
    return data
