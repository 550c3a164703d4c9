"""JWS compact serialization (RFC 7515) with EdDSA over Ed25519 (RFC 8037).

For: producing and strictly parsing the compact JWS that every ledger entry and every proof of
possession is. The protected header is RFC 8785 canonical JSON; the only algorithm is ``EdDSA``;
``crit`` and unknown header members are refused. Not for: general JOSE (no JWE, no other
algorithms, no JSON serialization).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from starter_ledger.encoding import b64url_decode, b64url_encode
from starter_ledger.errors import FormatError
from starter_ledger.jcs import canonicalize
from starter_ledger.keys import Signer

_KID = re.compile(r"[A-Za-z0-9_-]{43}")

#: ``typ`` of a proof of possession JWS inside ``signer.added``.
POP_MEDIA_TYPE = "starter-ledger-pop+jws"


@dataclass(frozen=True, slots=True)
class CompactJWS:
    """A parsed compact JWS: decoded parts and the exact signing input."""

    header: dict[str, Any]
    payload: bytes
    signature: bytes
    signing_input: bytes

    @property
    def kid(self) -> str:
        return str(self.header["kid"])


@functools.lru_cache(maxsize=256)
def _encoded_header(kid: str, typ: str) -> str:
    return b64url_encode(canonicalize({"alg": "EdDSA", "kid": kid, "typ": typ}))


def sign_compact(payload: bytes, signer: Signer, typ: str) -> str:
    """Sign ``payload`` with ``signer``: header ``{"alg":"EdDSA","kid":...,"typ":typ}``."""
    signing_input = _encoded_header(signer.kid, typ) + "." + b64url_encode(payload)
    signature = signer.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)


@functools.lru_cache(maxsize=1024)
def _parse_header(header_b64: bytes, typ: str) -> tuple[tuple[str, Any], ...]:
    """Decode and check a protected header (cached: one signer's headers are all alike)."""
    header_bytes = b64url_decode(header_b64)
    try:
        header = json.loads(header_bytes)
    except (ValueError, RecursionError):
        raise FormatError("JWS protected header is not JSON") from None
    if not isinstance(header, dict) or set(header) != {"alg", "kid", "typ"}:
        raise FormatError("JWS protected header must hold exactly alg, kid and typ")
    if header["alg"] != "EdDSA":
        raise FormatError(f"JWS alg must be EdDSA, not {header['alg']!r}")
    if header["typ"] != typ:
        raise FormatError(f"JWS typ must be {typ!r}, not {header['typ']!r}")
    if not isinstance(header["kid"], str) or not _KID.fullmatch(header["kid"]):
        raise FormatError("JWS kid must be an RFC 7638 thumbprint (43 base64url characters)")
    if canonicalize(header) != header_bytes:
        raise FormatError("JWS protected header is not in RFC 8785 canonical form")
    return tuple(header.items())


def parse_compact(token: str | bytes, typ: str) -> CompactJWS:
    """Parse a compact JWS whose header must be exactly ``alg`` EdDSA, ``kid``, ``typ``."""
    if isinstance(token, str):
        if not token.isascii():
            raise FormatError("a compact JWS holds only ASCII characters")
        raw = token.encode("ascii")
    else:
        raw = token
    parts = raw.split(b".")
    if len(parts) != 3:
        raise FormatError(f"a compact JWS has 3 dot-separated parts, this has {len(parts)}")
    header_b64, payload_b64, sig_b64 = parts
    header = dict(_parse_header(header_b64, typ))
    signature = b64url_decode(sig_b64)
    if len(signature) != 64:
        raise FormatError("an EdDSA (Ed25519) signature has 64 bytes")
    return CompactJWS(
        header=header,
        payload=b64url_decode(payload_b64),
        signature=signature,
        signing_input=header_b64 + b"." + payload_b64,
    )
