"""Append notifications over Redis pub/sub, so that every backend replica refreshes at once.

For: ``RedisNotifier`` (publishes one small JSON message per append on the channel of the
ledger's origin) and ``channel_of`` / ``parse_message`` (the names and format subscribers use).
A message is only a hint to look now: subscribers verify the ledger itself and never trust the
message's content; a lost message costs at most one polling interval. Not for: delivering
events (Redis pub/sub is fire-and-forget) or anything a verifier relies on.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from starter_ledger.errors import LedgerUnavailableError

__all__ = ["CHANNEL_PREFIX", "NotifyError", "RedisNotifier", "channel_of", "parse_message"]

#: Channel names are this prefix followed by the ledger's origin.
CHANNEL_PREFIX = "starter-ledger:appended:"

#: Seconds to wait for Redis before giving up on one notification.
TIMEOUT_S = 2.0


class NotifyError(LedgerUnavailableError):
    """Redis could not be reached or refused the message (the append itself is durable)."""


def channel_of(origin: str) -> str:
    """The pub/sub channel of the ledger whose origin is ``origin``."""
    return CHANNEL_PREFIX + origin


def safe_url(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def parse_message(data: bytes | str) -> dict[str, Any] | None:
    """The message's fields, or None when it is not one of ours (subscribers ignore it)."""
    try:
        value = json.loads(data)
    except (ValueError, TypeError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("size"), int):
        return None
    return value


class RedisNotifier:
    """Publishes ``{"origin", "size", "root_hash"}`` after each append."""

    def __init__(self, url: str) -> None:
        import redis  # only when notifications are configured

        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise NotifyError(
                f"STARTER_REDIS_URL {safe_url(url)!r} is not a Redis URL",
                hint="use redis://HOST:PORT/DB, rediss://... or unix:///path/redis.sock",
            )
        self.url = safe_url(url)
        try:
            self._client: Any = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            )
        except ValueError as e:
            raise NotifyError(f"STARTER_REDIS_URL {self.url!r} is malformed: {e}") from None

    def publish(self, origin: str, size: int, root_hash: str) -> int:
        """Publish one notification; returns how many subscribers received it."""
        import redis

        message = json.dumps({"origin": origin, "size": size, "root_hash": root_hash})
        try:
            return int(self._client.publish(channel_of(origin), message))
        except redis.RedisError as e:
            raise NotifyError(
                f"could not notify replicas through Redis at {self.url}: {e}",
                hint="the append is durable; replicas will see it at their next poll",
            ) from None

    def close(self) -> None:
        self._client.close()
