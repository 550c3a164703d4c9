"""Default values and duration parsing shared by the CLI, the backend and the settings models.

For: constants both sides must agree on (where the ledger is, how long the JWKS is cached, how
often replicas poll), and ``parse_seconds`` (``3600``, ``60m``, ``1h``, ``90d``, ``2w``). Plain
Python: importing this module imports nothing else, so the CLI can use it without slowing
``--help``. Not for: reading the environment (``settings`` does that, when asked).
"""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_FRESHNESS_BOUND_S",
    "DEFAULT_JWKS_MAX_AGE_S",
    "DEFAULT_KEY_LIFETIME_S",
    "DEFAULT_KEY_WARN_WITHIN_S",
    "DEFAULT_LEDGER_URL",
    "DEFAULT_MAX_PAGE",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_TOKEN_TTL_S",
    "ENV_PREFIX",
    "parse_seconds",
]

#: Every setting is read from an environment variable with this prefix (``STARTER_LEDGER_URL``).
ENV_PREFIX = "STARTER_"
#: The embedded default ledger.
DEFAULT_LEDGER_URL = "sqlite:///.ledger/ledger.db"
#: Largest accepted event payload, in bytes of its RFC 8785 form.
DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20
#: How long clients may cache the JWKS: the backend's longest ``max-age`` and the least lead time
#: of a staged key.
DEFAULT_JWKS_MAX_AGE_S = 3600
#: How long a new token-signing key signs.
DEFAULT_KEY_LIFETIME_S = 90 * 86_400
#: Lifetime of the tokens a key signs (a retired key stays verifiable this long).
DEFAULT_TOKEN_TTL_S = 3600
#: Warn when the active key expires within this and no key is staged to follow it.
DEFAULT_KEY_WARN_WITHIN_S = 14 * 86_400
#: Seconds between two checks of the ledger by a backend replica.
DEFAULT_POLL_INTERVAL_S = 1.0
#: The longest a replica may serve a stale projection after an append.
DEFAULT_FRESHNESS_BOUND_S = 5.0
#: Largest page of ``GET /ledger/entries``.
DEFAULT_MAX_PAGE = 1000

_DURATION = re.compile(r"(\d+)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_seconds(text: str) -> int | None:
    """Whole seconds of ``3600``, ``45s``, ``60m``, ``1h``, ``90d`` or ``2w``; None when ``text``
    is not such a duration."""
    m = _DURATION.fullmatch(text.strip())
    return int(m.group(1)) * _UNITS[m.group(2)] if m else None
