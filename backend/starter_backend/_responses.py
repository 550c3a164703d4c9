"""The precomputed JWKS and checkpoint responses: bytes and headers, swapped as one object.

For: ``Snapshot`` (a verified ledger view plus the times its headers need, read once per view)
and ``Responses`` (status-200 and status-304 header lists and bodies for ``/.well-known/jwks.json``
and ``/ledger/checkpoint`` at one moment, valid until ``valid_until``). Building one is pure: it
reads no store and no clock (the moment is passed in). Serving one is a lookup. Not for: routing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from email.utils import format_datetime

from starter_events.keyring import parse_timestamp
from starter_ledger.follow import View
from starter_ledger.jwks import JWKS_MEDIA_TYPE, jwks_bytes, jwks_digest

__all__ = ["Prepared", "Responses", "Snapshot", "etag_matches"]

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A verified view and, read from its entries once, when its key set last changed."""

    view: View
    #: ``occurred_at`` of the newest ``key.*`` entry in the view, else of the genesis entry.
    keys_changed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Prepared:
    """One resource ready to send: its body, and the headers of a 200 and of a 304."""

    body: bytes
    etag: bytes
    headers: Headers
    not_modified_headers: Headers


@dataclass(frozen=True, slots=True)
class Responses:
    """Both fast-path resources as of ``built_at``; rebuild when the clock reaches
    ``valid_until``: the next whole second while ``max-age`` counts down, or the next key
    change."""

    snapshot: Snapshot
    jwks: Prepared
    checkpoint: Prepared
    jwks_digest: str
    max_age: int
    built_at: dt.datetime
    valid_until: dt.datetime


def _http_date(moment: dt.datetime) -> bytes:
    return format_datetime(moment.astimezone(dt.UTC).replace(microsecond=0), usegmt=True).encode()


def _prepared(body: bytes, etag: bytes, common: Headers, content_type: bytes) -> Prepared:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"etag", etag),
        *common,
        (b"x-content-type-options", b"nosniff"),
    ]
    return Prepared(body, etag, headers, [(b"etag", etag), *common])


def build(snapshot: Snapshot, now: dt.datetime, max_age_limit: int) -> Responses:
    """The responses at ``now``: the JWKS the key ring publishes then, with ``max-age`` capped
    by the time left until the next scheduled key change."""
    view = snapshot.view
    body = jwks_bytes(view.keys, now)
    digest = jwks_digest(body)
    next_change = view.keys.next_change(now)
    max_age = max_age_limit
    valid_until = now + dt.timedelta(days=1)
    if next_change is not None:
        left = (next_change - now).total_seconds()
        max_age = max(0, min(max_age_limit, math.floor(left)))
        valid_until = min(valid_until, next_change)
        if left <= max_age_limit:  # max-age counts down: rebuild at the next whole second
            valid_until = min(valid_until, now.replace(microsecond=0) + dt.timedelta(seconds=1))
        else:  # rebuild when the countdown starts
            valid_until = min(valid_until, next_change - dt.timedelta(seconds=max_age_limit))
    # Last-Modified: the newest key event, or a retired key's verify_until that has passed.
    modified = snapshot.keys_changed_at
    for record in view.keys.records():
        if record.verify_until is not None:
            until = parse_timestamp(record.verify_until)
            if modified < until <= now:
                modified = until
    jwks = _prepared(
        body,
        b'"' + digest.encode() + b'"',
        [
            (b"cache-control", f"public, max-age={max_age}".encode()),
            (b"last-modified", _http_date(modified)),
        ],
        JWKS_MEDIA_TYPE.encode(),
    )
    note = view.checkpoint.encode()
    checkpoint = _prepared(
        note,
        b'"sha256:' + hashlib.sha256(note).hexdigest().encode() + b'"',
        [(b"cache-control", b"no-cache")],
        b"text/plain; charset=utf-8",
    )
    return Responses(snapshot, jwks, checkpoint, digest, max_age, now, valid_until)


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 section 13.1.2: weak comparison of ``etag`` with an ``If-None-Match`` value."""
    value = if_none_match.strip()
    if value == b"*":
        return True
    for candidate in value.split(b","):
        tag = candidate.strip()
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False
