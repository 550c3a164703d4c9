"""The ``Follower``: a verified view of a ledger that advances by only what was appended since.

Run over the memory, SQLite and PostgreSQL stores (the follower reads through its own read-only
store where the backend has one, as the backend does). Appends come from the library with a
frozen clock and deterministic keys; tampering is written past the ledger's rules, straight
into the store (a forged entry at the next position) or by deleting rows after dropping the
append-only triggers (truncation). A property test checks that whatever sequence of appends and
advances happens, the follower ends where a full verification ends.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from _backend_helpers import (
    ACTOR,
    T0,
    DeterministicTokenStore,
    forge_through_store,
    truncate_sqlite,
)
from conftest import ORIGIN, make_signer
from starter_events import KeyState
from starter_ledger import Ed25519Signer, Event, Ledger, MemoryStore, open_store, verify_store
from starter_ledger.clock import FixedClock
from starter_ledger.follow import Follower, View
from starter_ledger.jwks import jwks_bytes, jwks_digest
from starter_ledger.keyops import KeyManager
from starter_ledger.storage import LedgerStore

PROPS = settings(max_examples=40, deadline=None)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def reader(ledger: Ledger, request: pytest.FixtureRequest) -> Iterator[LedgerStore]:
    """The store the follower reads: a separate read-only connection to the same ledger (the
    memory store is shared, being in-process)."""
    url = ledger.store.url
    if url.startswith("memory://"):
        yield ledger.store
        return
    if url.startswith("postgresql://"):
        url = request.getfixturevalue("postgres_url")  # with its search_path option
    store = open_store(url, read_only=True)
    yield store
    store.close()


class Recording:
    """A store that records the position of every entry read from it."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self.read: list[int] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in ("iter_entries", "iter_rows"):
            return attr

        def recorded(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for row in attr(*args, **kwargs):
                self.read.append(row[0])
                yield row

        return recorded


def _notes(ledger: Ledger, signer: Ed25519Signer, n: int, tag: str = "note") -> None:
    ledger.append_many(
        [Event("note.recorded", {"text": f"{tag} {i}"}) for i in range(n)], signer, ACTOR
    )


def _keys(ledger: Ledger, clock: FixedClock, signer: Ed25519Signer) -> None:
    """An active token key and a staged one (deterministic kids)."""
    manager = KeyManager(ledger, clock=clock)
    tokens = DeterministicTokenStore()
    manager.rotate(tokens, signer, ACTOR, activate_now=True)
    manager.rotate(tokens, signer, ACTOR)


def _assert_current(view: View | None, ledger: Ledger, now: dt.datetime) -> View:
    """``view`` is exactly the ledger as it is stored now."""
    assert view is not None
    latest = ledger.store.latest_checkpoint()
    assert latest is not None
    assert view.size == ledger.size() == latest[0]
    assert view.root == ledger.root()
    assert view.checkpoint == latest[1]
    assert view.origin == ORIGIN
    assert jwks_bytes(view.keys, now) == jwks_bytes(ledger.key_ring(), now)
    return view


# -- advancing ----------------------------------------------------------------------------------


def test_first_advance_verifies_and_publishes_the_whole_ledger(
    ledger: Ledger, reader: LedgerStore, clock: FixedClock, signer: Ed25519Signer
) -> None:
    """A reader's first view is the whole stored ledger: its size, root, latest checkpoint,
    origin and key states."""
    _notes(ledger, signer, 3)
    _keys(ledger, clock, signer)
    follower = Follower(reader)
    assert follower.view is None
    assert follower.advance() is True
    assert follower.failure is None
    view = _assert_current(follower.view, ledger, clock.now())
    assert [k.state for k in view.keys.records()] == [KeyState.ACTIVE, KeyState.STAGED]
    assert view.root_hash == verify_store(ledger.store, now=clock.now()).root_hash


def test_later_appends_are_picked_up_and_nothing_new_changes_nothing(
    ledger: Ledger, reader: LedgerStore, clock: FixedClock, signer: Ed25519Signer
) -> None:
    """After the first view, each advance publishes exactly what was appended since (True), and
    an advance with nothing new keeps the very same view (False)."""
    follower = Follower(reader)
    assert follower.advance() is True
    first = follower.view
    assert first is not None
    assert first.size == 1
    assert follower.advance() is False
    assert follower.view is first

    _notes(ledger, signer, 2)
    assert follower.advance() is True
    second = _assert_current(follower.view, ledger, clock.now())
    assert second.size == 3

    _keys(ledger, clock, signer)
    _notes(ledger, signer, 1)
    assert follower.advance() is True
    third = _assert_current(follower.view, ledger, clock.now())
    assert third.size == 7  # staged + activated, then one more staged, then a note
    assert follower.advance() is False
    assert follower.view is third
    # Earlier views are snapshots: the key events applied since did not leak into them.
    assert jwks_bytes(second.keys, clock.now()) == b'{"keys":[]}'
    assert (first.size, second.size) == (1, 3)


def test_a_forged_entry_is_refused_and_the_last_good_view_kept(
    ledger: Ledger, reader: LedgerStore, clock: FixedClock, signer: Ed25519Signer
) -> None:
    """An entry written into the store past the ledger's rules (signed by an unknown key) fails
    its check at its position; the follower keeps serving the last verified view, and keeps
    failing on later calls."""
    _notes(ledger, signer, 2)
    _keys(ledger, clock, signer)
    follower = Follower(reader)
    assert follower.advance() is True
    good = follower.view
    assert good is not None
    good_jwks = jwks_bytes(good.keys, clock.now())

    row = forge_through_store(ledger, clock.now())
    assert ledger.size() == good.size + 1
    for _ in range(2):
        assert follower.advance() is False
        assert follower.failure is not None
        assert (follower.failure.seq, follower.failure.check) == (row.seq, "authorisation")
        assert follower.view is good
        assert jwks_bytes(good.keys, clock.now()) == good_jwks


@pytest.mark.parametrize("ledger", ["sqlite", "postgresql"], indirect=True)
def test_truncation_is_detected(
    ledger: Ledger,
    reader: LedgerStore,
    clock: FixedClock,
    signer: Ed25519Signer,
    request: pytest.FixtureRequest,
) -> None:
    """Entries deleted after they were verified (triggers dropped first) make the follower fail
    with the truncation named, keep its view, and stay failed."""
    _notes(ledger, signer, 4)
    follower = Follower(reader)
    assert follower.advance() is True
    good = follower.view
    assert good is not None
    assert good.size == 5

    url = ledger.store.url
    if url.startswith("sqlite:///"):
        truncate_sqlite(ledger.store.path, keep=3)  # type: ignore[attr-defined]
    else:
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER USER")
            conn.execute("DELETE FROM ledger_entries WHERE seq >= 3")
    assert reader.size() == 3
    for _ in range(2):
        assert follower.advance() is False
        assert follower.failure is not None
        assert (follower.failure.seq, follower.failure.check) == (3, "checkpoint-pin")
        assert "truncated" in follower.failure.message
        assert follower.view is good


# -- starting from a trusted checkpoint -----------------------------------------------------------


def test_a_trusted_checkpoint_skips_the_history_it_covers(
    ledger: Ledger, reader: LedgerStore, clock: FixedClock, signer: Ed25519Signer
) -> None:
    """Given a trusted checkpoint, the follower reads none of the notes it covers (only the
    genesis and key entries it proves against the trusted root) and then every later entry,
    ending where a full verification ends."""
    _notes(ledger, signer, 10, "before")
    _keys(ledger, clock, signer)
    pinned_size, pin = ledger.store.latest_checkpoint() or (0, "")
    assert pinned_size == 14
    _notes(ledger, signer, 5, "after")

    recording = Recording(reader)
    follower = Follower(recording, trusted_checkpoint=pin)
    assert follower.advance() is True
    assert follower.failure is None
    _assert_current(follower.view, ledger, clock.now())
    covered = {seq for seq in recording.read if seq < pinned_size}
    assert covered <= {0, 11, 12, 13}  # genesis and the key events, each proved by inclusion
    assert set(range(pinned_size, 19)) <= set(recording.read)


def test_a_trusted_checkpoint_of_another_history_is_refused(
    ledger: Ledger, reader: LedgerStore, clock: FixedClock, signer: Ed25519Signer
) -> None:
    """A trusted checkpoint that this ledger's tree does not match (another history under the
    same origin and signer) publishes nothing and names the pin."""
    _notes(ledger, signer, 3)
    other = Ledger(MemoryStore(), clock=clock)
    other.init(ORIGIN, signer, ACTOR)
    _notes(other, signer, 2, "elsewhere")
    foreign = other.latest_checkpoint()

    follower = Follower(reader, trusted_checkpoint=foreign)
    assert follower.advance() is False
    assert follower.failure is not None
    assert follower.failure.check == "checkpoint-pin"
    assert follower.view is None


# -- the property ---------------------------------------------------------------------------------

Step = tuple[str, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.just(0)),
        st.tuples(st.just("notes"), st.integers(1, 4)),
        st.tuples(st.just("rotate-now"), st.just(0)),
        st.tuples(st.just("stage"), st.just(0)),
        st.tuples(st.just("tick"), st.integers(0, 5)),
    ),
    max_size=14,
)


@contextmanager
def _fresh(backend: str, clock: FixedClock) -> Iterator[tuple[Ledger, LedgerStore]]:
    """A new writer ledger on ``backend`` and the store a follower reads it through."""
    if backend == "memory":
        led = Ledger(MemoryStore(), clock=clock)
        led.init(ORIGIN, make_signer("genesis"), ACTOR)
        yield led, led.store
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'ledger.db'}"
        with Ledger.open(url, create=True, clock=clock) as led:
            led.init(ORIGIN, make_signer("genesis"), ACTOR)
            store = open_store(url, read_only=True)
            try:
                yield led, store
            finally:
                store.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@PROPS
@given(plan=steps)
@example(plan=[("advance", 0), ("notes", 2), ("advance", 0)])
def test_the_follower_ends_where_a_full_verification_ends(backend: str, plan: list[Step]) -> None:
    """Whatever appends (notes, rotations, scheduled key changes) interleave with advances, the
    follower's final view has the size, root and JWKS that verifying the whole ledger gives, and
    every view it published earlier stays as it was."""
    clock = FixedClock(T0)
    signer = make_signer("genesis")
    with _fresh(backend, clock) as (led, store):
        _follow_plan(led, store, clock, signer, plan)


def _follow_plan(
    led: Ledger, store: LedgerStore, clock: FixedClock, signer: Ed25519Signer, plan: list[Step]
) -> None:
    manager = KeyManager(led, clock=clock)
    tokens = DeterministicTokenStore()
    follower = Follower(store)
    published: list[tuple[View, dt.datetime, bytes]] = []
    seen = 0
    for kind, n in plan:
        staged = led.key_ring().in_state("default", KeyState.STAGED)
        if kind == "advance":
            changed = follower.advance()
            assert follower.failure is None
            assert changed is (led.size() != seen)
            seen = led.size()
            assert follower.view is not None
            then = clock.now()
            published.append((follower.view, then, jwks_bytes(follower.view.keys, then)))
        elif kind == "notes":
            _notes(led, signer, n)
        elif kind == "rotate-now" and not staged:
            manager.rotate(tokens, signer, ACTOR, activate_now=True)
        elif kind == "stage" and not staged:
            manager.rotate(tokens, signer, ACTOR)
        elif kind == "tick":
            clock.advance(dt.timedelta(minutes=30 * n))
            manager.tick(signer, ACTOR)

    follower.advance()
    assert follower.failure is None
    view = follower.view
    assert view is not None
    now = clock.now()
    report = verify_store(led.store, now=now)
    assert report.ok, report.first_failure
    body = jwks_bytes(led.key_ring(), now)
    assert (view.size, view.root_hash) == (report.size, report.root_hash)
    assert jwks_bytes(view.keys, now) == body
    assert report.jwks_digest == (jwks_digest(body) if led.key_ring().records() else None)
    for old, then, jwks in published:
        assert jwks_bytes(old.keys, then) == jwks
