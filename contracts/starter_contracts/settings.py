"""Settings of the backend service, read from ``STARTER_*`` environment variables.

For: ``BackendSettings``, the one place the backend's configuration is declared, validated and
documented; ``BackendSettings()`` reads the environment, ``BackendSettings(ledger_url=...)`` takes
values directly (tests). Defining the class reads nothing: the environment is read only when an
instance is made, which the backend does when it starts, never at import.
Not for: the CLI's options (typer declares those) or secrets (none are configured here).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BackendSettings"]

_DURATION = re.compile(r"(\d+)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class BackendSettings(BaseSettings):
    """What the backend serves and how it stays current. Each field ``x`` is ``STARTER_X``."""

    model_config = SettingsConfigDict(env_prefix="STARTER_", extra="ignore", frozen=True)

    #: The ledger to serve (read-only): ``sqlite:///PATH`` or ``postgresql://...``.
    ledger_url: str = Field(default="sqlite:///.ledger/ledger.db", min_length=1)
    #: Redis for append notifications (``redis://host:port/db``); unset: polling only.
    redis_url: str | None = None
    #: How often the ledger's size is polled, in seconds (with Redis: the fallback interval).
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    #: The bound on how long a replica may serve a stale projection after an append, in seconds.
    freshness_bound: float = Field(default=5.0, gt=0, le=3600)
    #: Longest ``Cache-Control: max-age`` of the JWKS, in seconds (the JWKS cache lifetime; the
    #: same variable sets the CLI's rotation schedule).
    jwks_max_age: int = Field(default=3600, ge=0, le=86_400 * 7)
    #: Largest page of ``GET /ledger/entries``.
    max_page: int = Field(default=1000, ge=1, le=100_000)
    #: A trusted checkpoint file to verify from at start (else the whole ledger is verified).
    trusted_checkpoint: str | None = None
    #: SHA-256 (hex) the genesis entry must have, as ``ledger verify --genesis``.
    genesis_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @field_validator("jwks_max_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        """Seconds, or the CLI's duration form (``3600``, ``60m``, ``1h``, ``1d``)."""
        if isinstance(value, str):
            m = _DURATION.fullmatch(value.strip())
            if m:
                return int(m.group(1)) * _UNITS[m.group(2)]
        return value

    @model_validator(mode="after")
    def _poll_within_bound(self) -> BackendSettings:
        if self.poll_interval > self.freshness_bound / 2:
            msg = (
                f"STARTER_POLL_INTERVAL ({self.poll_interval} s) must be at most half of "
                f"STARTER_FRESHNESS_BOUND ({self.freshness_bound} s), or replicas would report "
                "stale between two polls"
            )
            raise ValueError(msg)
        return self
