"""The backend's ledger state: one read-only store on one thread, a follower, and the refresh loop.

For: ``LedgerService``, which the app starts in its lifespan. All store access runs on a single
worker thread (a SQLite connection belongs to the thread that opened it; it also serialises
reads), so the event loop never blocks on the database. The refresh loop advances the follower
(verifying only new entries) every ``poll_interval`` seconds, or at once when a Redis
notification arrives (then polling continues every ``freshness_bound / 2`` seconds as a safety net,
and at ``poll_interval`` while Redis is unreachable). ``responses()`` hands the current
precomputed responses to the fast path, rebuilding them (in memory, no I/O) when the clock
passes their ``valid_until``. Not for: HTTP (the app and the fast path) or writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from starter_backend._responses import Responses, Snapshot, build
from starter_contracts.settings import BackendSettings
from starter_events import KEY_EVENT_TYPES
from starter_events.keyring import parse_timestamp
from starter_ledger.clock import Clock, SystemClock
from starter_ledger.entry import decode_entry
from starter_ledger.errors import LedgerError
from starter_ledger.follow import Follower, View
from starter_ledger.ledger import Ledger
from starter_ledger.notify import channel_of, parse_message, safe_url
from starter_ledger.storage import open_store

__all__ = ["LedgerService"]

log = logging.getLogger("starter_backend")

T = TypeVar("T")

#: Longest pause between two attempts to reach Redis.
REDIS_RETRY_MAX_S = 5.0


class LedgerService:
    """See the module docstring. Create it in the app's lifespan; ``start`` then ``stop``."""

    def __init__(self, settings: BackendSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="starter-ledger-db")
        self._ledger: Ledger | None = None
        self._follower: Follower | None = None
        self._responses: Responses | None = None
        #: Why the service is not ready (None when it is), for ``/ready``.
        self.problem: str | None = "starting: the ledger is being verified"
        #: ``time.monotonic()`` of the last successful check of the ledger for new entries.
        self.checked_at: float | None = None
        self._wake = asyncio.Event()
        self._redis_up = False
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the refresh loop (the first pass verifies the ledger) and, with Redis, the
        subscriber. Returns at once: ``/ready`` says when the first verification is done."""
        self._tasks.append(asyncio.create_task(self._refresh_loop(), name="starter-refresh"))
        if self.settings.redis_url:
            self._tasks.append(asyncio.create_task(self._subscribe(), name="starter-redis"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await asyncio.get_running_loop().run_in_executor(self._db, self._close)
        self._db.shutdown(wait=True)

    def _close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    async def run(self, fn: Callable[[Ledger, View], T]) -> T:
        """Run ``fn(ledger, view)`` on the store's thread, with the current verified view.
        Raises ``LookupError`` when there is no verified view yet."""
        view = self.view
        if view is None or self._ledger is None:
            raise LookupError(self.problem or "the ledger is not verified yet")
        ledger = self._ledger
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, ledger, view)

    # -- state -----------------------------------------------------------------------------

    @property
    def view(self) -> View | None:
        r = self._responses
        return None if r is None else r.snapshot.view

    def responses(self) -> Responses | None:
        """The current precomputed responses (rebuilt in memory when their time is up)."""
        r = self._responses
        if r is None:
            return None
        now = self.clock.now()
        if now >= r.valid_until:
            r = build(r.snapshot, now, self.settings.jwks_max_age)
            self._responses = r
        return r

    def stale_for(self) -> float | None:
        """Seconds since the ledger was last checked, or None if never."""
        return None if self.checked_at is None else time.monotonic() - self.checked_at

    # -- refreshing ------------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Check the ledger for new entries now; True when the served state changed."""
        loop = asyncio.get_running_loop()
        snapshot = await loop.run_in_executor(self._db, self._advance)
        if snapshot is not None:
            self._responses = build(snapshot, self.clock.now(), self.settings.jwks_max_age)
            log.info(
                "serving ledger size %d, root %s, JWKS %s",
                snapshot.view.size,
                snapshot.view.root_hash,
                self._responses.jwks_digest,
            )
        return snapshot is not None

    def _advance(self) -> Snapshot | None:
        """On the store's thread: open the store if needed, verify what is new."""
        try:
            if self._ledger is None:
                store = open_store(self.settings.ledger_url, read_only=True)
                self._ledger = Ledger(store)
                self._follower = Follower(
                    store,
                    trusted_checkpoint=self._trusted_checkpoint(),
                    genesis_sha256=self.settings.genesis_sha256,
                )
            follower = self._follower
            if follower is None:  # pragma: no cover - set together with the ledger above
                raise LedgerError("internal: no follower")
            changed = follower.advance()
        except (LedgerError, OSError) as e:
            self._close()
            problem = f"the ledger is unavailable: {getattr(e, 'message', None) or e}"
            if problem != self.problem:
                log.warning("%s", problem)
            self.problem = problem
            return None
        if follower.failure is not None:
            f = follower.failure
            where = f"entry {f.seq}" if f.seq is not None else "the ledger"
            problem = f"verification failed at {where} ({f.check}): {f.message}"
            if problem != self.problem:  # once per distinct failure, not once per poll
                log.error("%s; still serving the last verified state", problem)
            self.problem = problem
            return None
        self.problem = None
        self.checked_at = time.monotonic()
        view = follower.view
        if not changed or view is None:
            return None
        return Snapshot(view, self._keys_changed_at(view))

    def _trusted_checkpoint(self) -> str | None:
        path = self.settings.trusted_checkpoint
        return None if path is None else Path(path).read_text(encoding="utf-8")

    def _keys_changed_at(self, view: View) -> dt.datetime:
        """When the key set last changed by an event: the newest key event's time (else the
        genesis entry's). Only a header's value: the key states themselves come from the view."""
        if self._ledger is None:  # pragma: no cover - called right after a successful advance
            raise LedgerError("internal: the ledger is closed")
        store = self._ledger.store
        newest = None
        for _, raw in store.entries_of_types(KEY_EVENT_TYPES, end=view.size):
            newest = raw
        if newest is None:
            newest = next(iter(store.iter_entries(0, 1)))[1]
        return parse_timestamp(decode_entry(newest).envelope.occurred_at)

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # never let the loop die: report and try again
                log.exception("refreshing the ledger failed")
                self.problem = "refreshing the ledger failed (see the log)"
            interval = self.settings.poll_interval
            if self._redis_up:
                # Half the bound: /ready's staleness check never trips between two polls.
                interval = max(interval, self.settings.freshness_bound / 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            self._wake.clear()

    async def _subscribe(self) -> None:
        """Wake the refresh loop on each notification for this ledger; reconnect on failure."""
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        url = self.settings.redis_url or ""
        delay = 0.2
        while True:
            origin = await self._origin()
            client: Any = aioredis.Redis.from_url(url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(channel_of(origin))
                    self._redis_up = True
                    delay = 0.2
                    log.info("listening for appends on Redis %s", safe_url(url))
                    self._wake.set()  # catch up on anything missed while unsubscribed
                    async for message in pubsub.listen():
                        if message.get("type") == "message" and parse_message(message["data"]):
                            self._wake.set()
            except (RedisError, OSError) as e:
                log.warning("Redis %s unreachable (%s); polling meanwhile", safe_url(url), e)
            finally:
                self._redis_up = False
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX_S)

    async def _origin(self) -> str:
        """The ledger's origin, once a verified view exists."""
        while True:
            view = self.view
            if view is not None:
                return view.origin
            await asyncio.sleep(0.1)
