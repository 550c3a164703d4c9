"""Helpers of the backend and follower tests: ledgers with keys on SQLite, a deterministic token
key store, forged entries written past the ledger's rules, and the backend app running under
Starlette's ``TestClient`` (which runs the lifespan) until ``/ready`` says it is verified."""

from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from conftest import CLI, ORIGIN, make_signer
from starter_backend.app import create_app
from starter_contracts.settings import BackendSettings
from starter_events import latest_version
from starter_ledger import Ed25519Signer, Event, Ledger
from starter_ledger.checkpoint import make_checkpoint
from starter_ledger.clock import FixedClock
from starter_ledger.encoding import b64_encode
from starter_ledger.entry import encode_entry, format_time
from starter_ledger.keyops import KeyAction, KeyManager, KeyPolicy
from starter_ledger.keystore import FileKeyStore
from starter_ledger.merkle import leaf_hash
from starter_ledger.storage import AppendBatch, NewEntry
from starter_ledger.tokenkeys.interface import StoredKey

with warnings.catch_warnings():
    # starlette 1.x prefers httpx2 for its TestClient and warns at import when it finds httpx,
    # which this project pins; the client works the same with either.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

#: The moment every ledger here starts at (the ``clock`` fixture's).
T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
ACTOR = "tester"
#: How long the app may take to verify a small ledger and answer /ready with 200.
READY_TIMEOUT = 20.0


def stamp(moment: dt.datetime) -> str:
    """``moment`` as the CLI's STARTER_NOW."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- deterministic token keys -----------------------------------------------------------------


class DeterministicTokenStore:
    """A token key store whose n-th key is ``make_signer("token-<n>")``: the same kids every run.
    It holds public halves only (``KeyManager.rotate`` needs no more)."""

    algs = ("EdDSA",)

    def __init__(self, prefix: str = "token") -> None:
        self.prefix = prefix
        self.created: list[Ed25519Signer] = []

    @property
    def url(self) -> str:
        return "file:///keys/tokens"

    def create(self, alg: str) -> StoredKey:
        assert alg == "EdDSA"
        signer = make_signer(f"{self.prefix}-{len(self.created)}")
        self.created.append(signer)
        return StoredKey(ref=signer.kid, alg="EdDSA", public_jwk=signer.public_jwk, kid=signer.kid)

    def signer(self, ref: str) -> Ed25519Signer:
        return next(s for s in self.created if s.kid == ref)

    def close(self) -> None:
        return None


# -- ledgers ----------------------------------------------------------------------------------


@dataclass
class Site:
    """A SQLite ledger in a folder laid out as the CLI expects (``ledger.db``, ``keys/signer.pem``
    beside it), with the writer's clock and deterministic keys."""

    folder: Path
    clock: FixedClock
    signer: Ed25519Signer = field(default_factory=lambda: make_signer("genesis"))
    tokens: DeterministicTokenStore = field(default_factory=DeterministicTokenStore)
    policy: KeyPolicy = field(default_factory=KeyPolicy)
    #: The ledger's origin, which names its Redis channel (unique per test where channels meet).
    origin: str = ORIGIN

    @property
    def db(self) -> Path:
        return self.folder / "ledger.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    @contextmanager
    def writer(self) -> Iterator[Ledger]:
        """The ledger opened for writing (closed afterwards, which checkpoints the WAL)."""
        with Ledger.open(self.url, clock=self.clock) as led:
            yield led

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        FileKeyStore(self.folder / "keys" / "signer.pem").store(self.signer)
        with Ledger.open(self.url, create=True, clock=self.clock) as led:
            led.init(self.origin, self.signer, ACTOR)

    def notes(self, *texts: str) -> None:
        with self.writer() as led:
            led.append_many(
                [Event("note.recorded", {"text": t}) for t in texts], self.signer, ACTOR
            )

    def rotate(self, *, activate_now: bool = False) -> KeyAction:
        with self.writer() as led:
            manager = KeyManager(led, clock=self.clock, policy=self.policy)
            return manager.rotate(self.tokens, self.signer, ACTOR, activate_now=activate_now)

    def kid(self, n: int) -> str:
        """The kid of the n-th token key this site created."""
        return self.tokens.created[n].kid


def simple_site(folder: Path, clock: FixedClock | None = None, origin: str = ORIGIN) -> Site:
    """Genesis, three notes and one active token key (kid ``site.kid(0)``), all at T0."""
    site = Site(folder, clock or FixedClock(T0), origin=origin)
    site.init()
    site.notes("first", "second", "third")
    site.rotate(activate_now=True)
    return site


def scheduled_site(folder: Path) -> Site:
    """A key schedule in flight at T0+20 min: key 1 active, key 0 retired (verifies until
    T0+1h10m), key 2 staged (activates at T0+1h20m). The writer's clock ends at T0+20 min."""
    site = Site(folder, FixedClock(T0))
    site.init()
    site.notes("bootstrap")
    site.rotate(activate_now=True)  # key 0 active at T0
    site.clock.advance(10 * MINUTE)
    site.rotate(activate_now=True)  # key 0 retired until T0+10m+1h; key 1 active
    site.clock.advance(10 * MINUTE)
    site.rotate()  # key 2 staged, not_before T0+20m+1h
    site.notes("scheduled")
    return site


# -- forged entries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgedRow:
    """A well-formed entry at the next position, signed by a key the ledger never authorised,
    with its tree nodes and a checkpoint signed by the same key."""

    seq: int
    entry: bytes
    type: str
    kid: str
    nodes: list[tuple[int, int, bytes]]
    checkpoint: str


def forged_row(ledger: Ledger, moment: dt.datetime, by: str = "mallory") -> ForgedRow:
    """The row an attacker with write access to the store would add after the last entry."""
    signer = make_signer(by)
    size = ledger.size()
    frontier = ledger.frontier(size)
    origin = ledger.origin()
    envelope = {
        "actor": by,
        "occurred_at": format_time(moment),
        "origin": origin,
        "payload": {"text": "forged"},
        "prev_root": b64_encode(frontier.root()),
        "schema_version": latest_version("note.recorded"),
        "seq": size,
        "type": "note.recorded",
    }
    raw = encode_entry(envelope, signer)
    nodes = frontier.append(leaf_hash(raw))
    kids = ledger.signer_set(size).authorised.keys()
    note = make_checkpoint(origin, size + 1, frontier.root(), kids, signer)
    return ForgedRow(size, raw, "note.recorded", signer.kid, nodes, note)


def forge_through_store(ledger: Ledger, moment: dt.datetime) -> ForgedRow:
    """Write a forged row through the store's own ``append`` (stores check no signature)."""
    row = forged_row(ledger, moment)
    batch = AppendBatch(
        row.seq,
        [NewEntry(row.seq, row.entry, row.type, row.kid)],
        row.nodes,
        (row.seq + 1, row.checkpoint),
    )
    ledger.store.append(batch)
    return row


def forge_with_sqlite3(db: Path, row: ForgedRow) -> None:
    """INSERT a forged row straight into the SQLite file, as anyone with file access could."""
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT INTO ledger_entries(seq, entry, type, nodes, checkpoint) VALUES (?,?,?,?,?)",
            (row.seq, row.entry, row.type, b"".join(h for _, _, h in row.nodes), row.checkpoint),
        )


def drop_triggers(conn: sqlite3.Connection) -> None:
    """Remove the append-only triggers of a SQLite ledger (an attacker's first step)."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    for name in names:
        conn.execute(f'DROP TRIGGER "{name}"')


def truncate_sqlite(db: Path, keep: int) -> None:
    """Delete every entry from ``keep`` on (triggers dropped first)."""
    with closing(sqlite3.connect(db)) as conn, conn:
        drop_triggers(conn)
        conn.execute("DELETE FROM ledger_entries WHERE seq >= ?", (keep,))


# -- running the app --------------------------------------------------------------------------


def settings_for(url: str, **overrides: Any) -> BackendSettings:
    """Settings for a test app: fast polling, and every field given (so no STARTER_ variable of
    the environment running the tests leaks in)."""
    values: dict[str, Any] = {
        "ledger_url": url,
        "redis_url": None,
        "poll_interval": 0.05,
        "freshness_bound": 5.0,
        "jwks_max_age": 3600,
        "max_page": 1000,
        "trusted_checkpoint": None,
        "genesis_sha256": None,
    }
    values.update(overrides)
    return BackendSettings(**values)


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.01
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_ready(client: TestClient, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    """Wait until GET /ready answers 200; returns its body."""
    last: list[Any] = []

    def ready() -> bool:
        r = client.get("/ready")
        last[:] = [r.status_code, r.text]
        return r.status_code == 200

    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"/ready not 200 after {timeout} s; last answer: {last}")
        time.sleep(0.01)
    body: dict[str, Any] = client.get("/ready").json()
    return body


@contextmanager
def running(
    settings: BackendSettings,
    clock: FixedClock | None = None,
    *,
    ready: bool = True,
    raise_server_exceptions: bool = True,
) -> Iterator[TestClient]:
    """The app for ``settings`` under ``TestClient`` (lifespan running); by default waits until
    /ready is 200."""
    app = create_app(settings, clock=clock)
    with TestClient(
        app, base_url="http://127.0.0.1", raise_server_exceptions=raise_server_exceptions
    ) as client:
        if ready:
            wait_ready(client)
        yield client


# -- the CLI ---------------------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: no inherited STARTER_ variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARTER_")}
    env["STARTER_ACTOR"] = ACTOR
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``starter-cli`` in a subprocess."""
    return subprocess.run(
        [*CLI, *args], input=input, capture_output=True, env=env, cwd=cwd, timeout=120, check=False
    )


def python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (the test's own)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (bound, then released)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
