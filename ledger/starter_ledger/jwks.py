"""The JWKS projection: which token-signing keys the backend publishes, derived from the ledger.

For: ``key_ring`` (replays the ``key.*`` events of a ledger into a ``KeyRing``, checking that each
event's ``kid`` is the RFC 7638 thumbprint of its JWK), ``apply_key_event`` (the same for one
entry, used by incremental readers and by ``verify``), and ``jwks_bytes`` / ``jwks_digest`` (the
published document: staged, active and still-verifiable retired keys, public members plus
``kid``, ``alg`` and ``use``, in a fixed order, as RFC 8785 bytes; its digest is
``sha256:<hex>``). The same ring always gives the same bytes at the same time. Not for: serving
(the backend) or changing keys (``keyops``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from starter_events import KEY_EVENT_TYPES, KeyRing, KeyTransitionError
from starter_ledger.entry import decode_entry
from starter_ledger.errors import LedgerUnavailableError
from starter_ledger.jcs import canonicalize
from starter_ledger.keys import thumbprint
from starter_ledger.storage import LedgerStore

__all__ = [
    "JWKS_MEDIA_TYPE",
    "apply_key_event",
    "jwks_bytes",
    "jwks_digest",
    "jwks_document",
    "key_ring",
]

#: Media type of a JWK Set (RFC 7517 section 8.5.1).
JWKS_MEDIA_TYPE = "application/jwk-set+json"


def apply_key_event(ring: KeyRing, seq: int, type_: str, payload: dict[str, Any]) -> None:
    """Apply one ``key.*`` entry to ``ring``; raises ``KeyTransitionError`` when the event breaks
    the lifecycle or names a kid that is not its JWK's thumbprint."""
    if thumbprint(payload["jwk"]) != payload["kid"]:
        raise KeyTransitionError(
            f"entry {seq}: kid {payload['kid']} is not the RFC 7638 thumbprint of its JWK"
        )
    try:
        ring.apply(type_, payload, seq)
    except KeyTransitionError as e:
        raise KeyTransitionError(f"entry {seq}: {e.message}", hint=e.hint) from None


def key_ring(store: LedgerStore, end: int | None = None) -> KeyRing:
    """The key states after the first ``end`` entries (default: all), from the stored events."""
    ring = KeyRing()
    for seq, raw in store.entries_of_types(KEY_EVENT_TYPES, end=end):
        env = decode_entry(raw).envelope
        try:
            apply_key_event(ring, seq, env.type, env.payload)
        except KeyTransitionError as e:
            raise LedgerUnavailableError(
                f"stored entry {seq} breaks the key lifecycle: {e.message}",
                hint="run 'starter-cli ledger verify'",
            ) from None
    return ring


def jwks_document(ring: KeyRing, now: dt.datetime) -> dict[str, Any]:
    """The JWK Set published at ``now``."""
    keys = []
    for record in ring.published(now):
        jwk: dict[str, Any] = dict(record.jwk)
        jwk.update(kid=record.kid, alg=record.alg, use="sig")
        keys.append(jwk)
    return {"keys": keys}


def jwks_bytes(ring: KeyRing, now: dt.datetime) -> bytes:
    """The JWK Set at ``now`` as RFC 8785 bytes (what ``keys jwks`` prints, the backend serves)."""
    return canonicalize(jwks_document(ring, now))


def jwks_digest(document: bytes) -> str:
    """``sha256:<hex>`` of a JWKS document's bytes (its ETag and its receipts' digest)."""
    return "sha256:" + hashlib.sha256(document).hexdigest()
