"""Settings of the backend and the CLI, read from ``STARTER_*`` environment variables.

For: ``BackendSettings`` (the backend's configuration: ``BackendSettings()`` reads the
environment, ``BackendSettings(ledger_url=...)`` takes values directly) and ``CliSettings`` (the
variables ``starter-cli`` reads; its typer options name exactly these variables with these
defaults, which a test checks). Defining the classes reads nothing: the environment is read only
when an instance is made, which the backend does when it starts, never at import.
Not for: secrets (none are configured here: Vault tokens and cloud credentials come from their
providers' usual variables and chains).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from starter_contracts import defaults

__all__ = ["BackendSettings", "CliSettings"]


def _seconds(value: Any) -> Any:
    """Seconds, or the CLI's duration form (``3600``, ``60m``, ``1h``, ``1d``)."""
    if isinstance(value, str):
        seconds = defaults.parse_seconds(value)
        if seconds is not None:
            return seconds
    return value


class BackendSettings(BaseSettings):
    """What the backend serves and how it stays current. Each field ``x`` is ``STARTER_X``."""

    model_config = SettingsConfigDict(env_prefix=defaults.ENV_PREFIX, extra="ignore", frozen=True)

    #: The ledger to serve (read-only): ``sqlite:///PATH`` or ``postgresql://...``.
    ledger_url: str = Field(default=defaults.DEFAULT_LEDGER_URL, min_length=1)
    #: Redis for append notifications (``redis://host:port/db``); unset: polling only.
    redis_url: str | None = None
    #: How often the ledger's size is polled, in seconds (with Redis: the fallback interval).
    poll_interval: float = Field(default=defaults.DEFAULT_POLL_INTERVAL_S, gt=0, le=60)
    #: The bound on how long a replica may serve a stale projection after an append, in seconds.
    freshness_bound: float = Field(default=defaults.DEFAULT_FRESHNESS_BOUND_S, gt=0, le=3600)
    #: Longest ``Cache-Control: max-age`` of the JWKS, in seconds (the JWKS cache lifetime; the
    #: same variable sets the CLI's rotation schedule).
    jwks_max_age: int = Field(default=defaults.DEFAULT_JWKS_MAX_AGE_S, ge=0, le=86_400 * 7)
    #: Largest page of ``GET /ledger/entries``.
    max_page: int = Field(default=defaults.DEFAULT_MAX_PAGE, ge=1, le=100_000)
    #: A trusted checkpoint file to verify from at start (else the whole ledger is verified).
    trusted_checkpoint: str | None = None
    #: SHA-256 (hex) the genesis entry must have, as ``ledger verify --genesis``.
    genesis_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    _duration = field_validator("jwks_max_age", mode="before")(_seconds)

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


class CliSettings(BaseSettings):
    """The environment ``starter-cli`` reads (each option's ``envvar``); None means the CLI
    derives the value (e.g. the key beside the ledger file, ``user@host``)."""

    model_config = SettingsConfigDict(env_prefix=defaults.ENV_PREFIX, extra="ignore", frozen=True)

    #: ``--ledger``: the ledger URL (``sqlite:///PATH``, ``postgresql://...``, ``memory://NAME``).
    ledger_url: str = Field(default=defaults.DEFAULT_LEDGER_URL, min_length=1)
    #: ``--key``: the ledger signer's key store URL (``file://PATH``).
    ledger_key: str | None = None
    #: ``--actor``: who is acting, recorded in each entry.
    actor: str | None = None
    #: ``--max-payload-bytes``: the largest accepted payload.
    max_payload_bytes: int = Field(default=defaults.DEFAULT_MAX_PAYLOAD_BYTES, ge=1)
    #: ``--store``: where ``keys rotate`` creates token-signing keys (a token key store URL).
    key_store_url: str | None = None
    #: ``--cache-lifetime``: how long clients cache the JWKS (seconds or ``1h``).
    jwks_max_age: int | None = Field(default=None, ge=1)
    #: ``--warn-within``: warn when the active key expires within this (seconds or ``14d``).
    key_warn_within: int | None = Field(default=None, ge=1)
    #: ``--receipts``: the folder for key-change receipts.
    receipts_dir: str | None = None
    #: Redis for append notifications to backend replicas.
    redis_url: str | None = None
    #: A fixed RFC 3339 time for the ``keys`` commands and the JWKS check of ``ledger verify``
    #: (rehearsing a schedule).
    now: str | None = None
    #: ``--debug``: print tracebacks for errors.
    debug: bool = False
    #: ``contracts freeze|check --snapshots``: the folder of the schema snapshots.
    snapshots_dir: str | None = None
    #: ``contracts check --trusted-kid``: ledger signer kids trusted to freeze (comma-separated).
    trusted_kids: str | None = None
    #: ``sbom --store``: where SBOM files are kept (default: ``sboms/`` beside the ledger).
    sbom_store: str | None = None
    #: The pip-audit command ``audit record`` runs (default: this Python's ``-m pip_audit``).
    pip_audit: str | None = None
    #: ``release tag --principal``: the principal of the release tag's SSH signature.
    release_principal: str | None = None
    #: ``release gates|tag --min-severity``: the lowest severity of an open finding that blocks.
    release_min_severity: str | None = None

    _durations = field_validator("jwks_max_age", "key_warn_within", mode="before")(_seconds)
