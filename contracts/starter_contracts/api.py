"""Response bodies of the backend's HTTP API, shared with its clients.

For: the JSON documents of ``/ledger/entries``, the proof endpoints, ``/health``, ``/ready`` and
every error (``ErrorBody``); the OpenAPI document is generated from them. Binary values (hashes)
are standard base64, as in checkpoints; entries are their verbatim compact JWS text.
Not for: the JWKS (``starter_contracts.jwk``) or the checkpoint (``text/plain``, C2SP note).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ConsistencyProofBody",
    "EntriesPage",
    "EntryItem",
    "ErrorBody",
    "HealthBody",
    "InclusionProofBody",
    "ReadyBody",
]

_B64_HASH = r"^[A-Za-z0-9+/]{43}=$"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorBody(_Body):
    """Every 4xx/5xx the backend itself returns: what is wrong and what to do."""

    error: str = Field(description="A short machine-readable code, e.g. 'index-out-of-range'.")
    message: str = Field(description="What is wrong, and how to fix the request.")


class EntryItem(_Body):
    """One entry: its position and its verbatim bytes (a compact JWS, ASCII)."""

    seq: int = Field(ge=0)
    entry: str


class EntriesPage(_Body):
    """Entries ``start`` (inclusive) to ``end`` (exclusive) of a tree of ``size`` entries."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    size: int = Field(ge=0)
    entries: list[EntryItem]
    #: The ``start`` of the next page, or None at the end of the verified tree.
    next: int | None = None


class InclusionProofBody(_Body):
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""

    index: int = Field(ge=0)
    size: int = Field(ge=1)
    leaf_hash: str = Field(pattern=_B64_HASH)
    root_hash: str = Field(pattern=_B64_HASH)
    proof: list[str]


class ConsistencyProofBody(_Body):
    """RFC 9162 consistency proof between the trees of ``first`` and ``second`` entries."""

    first: int = Field(ge=1)
    second: int = Field(ge=1)
    first_root_hash: str = Field(pattern=_B64_HASH)
    second_root_hash: str = Field(pattern=_B64_HASH)
    proof: list[str]


class HealthBody(_Body):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


class ReadyBody(_Body):
    """Readiness: whether this replica serves a verified, current projection, and which."""

    status: Literal["ready", "not-ready"]
    reason: str | None = None
    size: int | None = None
    root_hash: str | None = None
    jwks_etag: str | None = None
    #: Seconds since the ledger was last checked for new entries.
    checked_ago: float | None = None
