"""Freshness across replicas: how soon a running backend serves what was just appended.

Without Redis a replica polls the ledger (``poll_interval``), so a new JWKS must be served within
``freshness_bound``. With Redis the CLI publishes after each append and a subscribed replica
refreshes at once: these tests set the poll interval to 30 s, so only the notification can explain
a refresh within a second. They run against the Redis server this machine runs
(127.0.0.1:6379; they fail, not skip, when it is down) and, hermetically, against fakeredis's TCP
server on a free loopback port. Every test uses its own ledger origin, so channels never collide.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from _backend_helpers import (
    T0,
    cli_env,
    free_port,
    run_cli,
    running,
    settings_for,
    simple_site,
    stamp,
    wait_until,
)
from starter_ledger import Ledger
from starter_ledger.clock import FixedClock
from starter_ledger.jwks import jwks_bytes
from starter_ledger.notify import channel_of

JWKS = "/.well-known/jwks.json"
#: The Redis server of this machine (override with STARTER_TEST_REDIS_URL).
REDIS_URL = os.environ.get("STARTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: How soon a notified replica must serve the new state, from the appending command's exit.
NOTIFIED_WITHIN = 1.0


@pytest.fixture
def real_redis() -> str:
    """The URL of the machine's Redis server; the test fails when none answers."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.fail(
            f"no Redis server answers at {REDIS_URL} ({e}); these tests need one (this machine "
            "kind runs one on 127.0.0.1:6379; or set STARTER_TEST_REDIS_URL)"
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def fake_redis() -> Iterator[str]:
    """fakeredis's TCP server on a free 127.0.0.1 port, served from a thread."""
    server = fakeredis.TcpFakeServer(("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def origin() -> str:
    """A ledger origin (and so a Redis channel) no other test uses."""
    return f"freshness.test/{uuid.uuid4().hex}"


def _subscribers(url: str, origin: str) -> int:
    with closing(redis.Redis.from_url(url, socket_timeout=2)) as client:
        counts: list[tuple[Any, int]] = client.pubsub_numsub(channel_of(origin))
        return counts[0][1]


def _jwks_now(url: str) -> bytes:
    with Ledger.open(url) as led:
        return jwks_bytes(led.key_ring(), T0)


def _rotate_with_cli(
    site_url: str, cwd: Path, **env: str
) -> tuple[float, bytes]:  # (when it exited, its stderr)
    proc = run_cli(
        "keys",
        "rotate",
        "--ledger",
        site_url,
        "--activate-now",
        env=cli_env(STARTER_NOW=stamp(T0), **env),
        cwd=cwd,
    )
    exited = time.monotonic()
    assert proc.returncode == 0, proc.stderr.decode()
    return exited, proc.stderr


# -- polling -------------------------------------------------------------------------------------


def test_polling_serves_an_append_within_the_freshness_bound(tmp_path: Path) -> None:
    """Without Redis, a key rotation appended by another writer is served within the freshness
    bound (measured from the append's return)."""
    site = simple_site(tmp_path / "ledger")
    settings = settings_for(site.url, poll_interval=0.05)
    with running(settings, FixedClock(T0)) as client:
        before = client.get(JWKS).content
        site.rotate(activate_now=True)
        appended = time.monotonic()
        expected = _jwks_now(site.url)
        assert expected != before
        wait_until(
            lambda: client.get(JWKS).content == expected,
            settings.freshness_bound,
            "the rotated JWKS",
        )
        elapsed = time.monotonic() - appended
        assert client.get("/ready").json()["size"] == 9  # 3 events: staged, retired, activated
    assert elapsed <= settings.freshness_bound


def test_an_unreachable_redis_falls_back_to_polling(tmp_path: Path) -> None:
    """A replica whose Redis is down is still ready and still picks up appends by polling."""
    site = simple_site(tmp_path / "ledger")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings = settings_for(site.url, redis_url=closed, poll_interval=0.05)
    with running(settings, FixedClock(T0)) as client:
        site.rotate(activate_now=True)
        expected = _jwks_now(site.url)
        wait_until(
            lambda: client.get(JWKS).content == expected,
            settings.freshness_bound,
            "the rotated JWKS by polling",
        )
        assert client.get("/ready").status_code == 200


# -- Redis notifications -------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["real_redis", "fake_redis"])
def test_a_cli_append_is_served_at_once_through_redis(
    server: str, request: pytest.FixtureRequest, tmp_path: Path, origin: str
) -> None:
    """With polling every 30 s, a replica subscribed to Redis serves the JWKS of a CLI rotation
    within a second of the command's exit: the CLI's notification woke it."""
    url: str = request.getfixturevalue(server)
    site = simple_site(tmp_path / "ledger", origin=origin)
    settings = settings_for(site.url, redis_url=url, poll_interval=30, freshness_bound=120)
    with running(settings, FixedClock(T0)) as client:
        before = client.get(JWKS).content
        wait_until(lambda: _subscribers(url, origin) >= 1, 10, "the replica to subscribe")
        exited, stderr = _rotate_with_cli(site.url, tmp_path, STARTER_REDIS_URL=url)
        assert b"warning" not in stderr, stderr.decode()
        expected = _jwks_now(site.url)
        assert expected != before
        wait_until(
            lambda: client.get(JWKS).content == expected,
            NOTIFIED_WITHIN,
            f"the rotated JWKS within {NOTIFIED_WITHIN} s of the CLI's notification",
        )
        elapsed = time.monotonic() - exited
    assert elapsed < NOTIFIED_WITHIN < settings.poll_interval


@pytest.mark.parametrize("notify", ["polling", "redis"])
def test_two_replicas_on_one_ledger_converge(
    notify: str, request: pytest.FixtureRequest, tmp_path: Path, origin: str
) -> None:
    """Two replicas reading one SQLite ledger both serve the same new JWKS, ETag and size after
    an append (by polling within the freshness bound, or at once through Redis)."""
    site = simple_site(tmp_path / "ledger", origin=origin)
    if notify == "redis":
        url: str = request.getfixturevalue("real_redis")
        settings = settings_for(site.url, redis_url=url, poll_interval=30, freshness_bound=120)
        within = NOTIFIED_WITHIN
    else:
        settings = settings_for(site.url, poll_interval=0.05)
        within = settings.freshness_bound
    with running(settings, FixedClock(T0)) as a, running(settings, FixedClock(T0)) as b:
        assert a.get(JWKS).content == b.get(JWKS).content
        if notify == "redis":
            wait_until(lambda: _subscribers(url, origin) >= 2, 10, "both replicas to subscribe")
            _rotate_with_cli(site.url, tmp_path, STARTER_REDIS_URL=url)
        else:
            site.rotate(activate_now=True)
        start = time.monotonic()
        expected = _jwks_now(site.url)
        for replica in (a, b):
            wait_until(lambda r=replica: r.get(JWKS).content == expected, within, "the new JWKS")
        assert time.monotonic() - start <= within
        ra, rb = a.get(JWKS), b.get(JWKS)
        assert ra.headers["etag"] == rb.headers["etag"]
        assert a.get("/ready").json()["size"] == b.get("/ready").json()["size"] == 9


def test_a_cli_append_succeeds_and_warns_when_redis_is_down(tmp_path: Path) -> None:
    """An append with STARTER_REDIS_URL naming a closed port is still durable: exit 0, the entry
    is in the ledger, and one warning (with a hint) on stderr."""
    site = simple_site(tmp_path / "ledger")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    proc = run_cli(
        "ledger",
        "append",
        "--ledger",
        site.url,
        "--type",
        "note.recorded",
        "--payload",
        "-",
        input=b'{"text": "while redis is down"}',
        env=cli_env(STARTER_REDIS_URL=closed),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stderr.decode().splitlines()
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 1, lines
    assert f"could not notify replicas through Redis at {closed}" in warnings[0]
    assert any(line.startswith("hint: ") and "durable" in line for line in lines), lines
    assert "Traceback" not in proc.stderr.decode()
    with Ledger.open(site.url) as led:
        assert led.size() == 7
        assert led.entry(6).envelope.payload == {"text": "while redis is down"}
