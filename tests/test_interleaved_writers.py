"""Property test: two ``Ledger`` objects appending to one store in any interleaving.

Each ``Ledger`` builds an append on the head its own previous append left and lets the store's
conditional insert refuse a stale one (ADR 0012). Whatever order the objects append in, and
whichever of them adds or revokes signers, every append lands at the next position, an append the
trust rules forbid changes nothing, and the result verifies.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ORIGIN, make_signer
from starter_ledger import Ledger, MemoryStore, open_store, verify_store
from starter_ledger.clock import FixedClock
from starter_ledger.errors import InputRejectedError, NotAuthorisedError
from starter_ledger.trust import make_proof_of_possession

SIGNERS = [make_signer(name) for name in ("genesis", "second", "third")]
TYPES = {"note": "note.recorded", "add": "signer.added", "revoke": "signer.revoked"}
#: (which of two ledger objects, what it does, with which signer's key, about which signer)
STEP = st.tuples(
    st.integers(0, 1),
    st.sampled_from(["note", "add", "revoke"]),
    st.integers(0, 2),
    st.integers(0, 2),
)


def _do(led: Ledger, action: str, key: int, subject: int, i: int) -> None:
    by = SIGNERS[key]
    if action == "note":
        led.append("note.recorded", {"text": f"step {i}"}, by, "tester")
    elif action == "add":
        new = SIGNERS[subject]
        payload = {
            "jwk": new.public_jwk,
            "proof_of_possession": make_proof_of_possession(ORIGIN, new),
            "note": f"step {i}",
        }
        led.append("signer.added", payload, by, "tester")
    else:
        payload = {"kid": SIGNERS[subject].kid, "reason": f"step {i}"}
        led.append("signer.revoked", payload, by, "tester")


def _run(url: str | None, steps: list[tuple[int, str, int, int]]) -> None:
    clock = FixedClock(dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC))
    store = MemoryStore() if url is None else open_store(url, create=True)
    stores = [store, store] if url is None else [store, open_store(url)]
    ledgers = [Ledger(s, clock=clock) for s in stores[:2]]
    try:
        ledgers[0].init(ORIGIN, SIGNERS[0], "tester")
        expected = 1
        authorised = {0}  # the model: which signers may sign now
        for i, (who, action, key, subject) in enumerate(steps):
            allowed = key in authorised and (
                action == "note"
                or (action == "add" and subject not in authorised)
                or (action == "revoke" and subject in authorised and len(authorised) > 1)
            )
            before = list(store.iter_entries())
            try:
                _do(ledgers[who], action, key, subject, i)
            except (NotAuthorisedError, InputRejectedError):
                assert not allowed, f"step {i} was refused on a stale view"
                assert list(store.iter_entries()) == before  # refused: nothing written
            else:
                assert allowed, f"step {i} was accepted on a stale view"
                if action == "add":
                    authorised.add(subject)
                elif action == "revoke":
                    authorised.discard(subject)
                expected += 1
                entry = ledgers[who].entry(expected - 1)
                assert entry.kid == SIGNERS[key].kid
                assert entry.envelope.type == TYPES[action]
            assert store.size() == expected
        report = verify_store(store)
        assert report.ok, report.first_failure
        assert report.size == expected
    finally:
        for s in {id(s): s for s in stores}.values():
            s.close()


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEP, max_size=14))
def test_interleaved_ledger_objects_on_one_memory_store(
    steps: list[tuple[int, str, int, int]],
) -> None:
    """Two Ledger objects over one in-memory store, appending in any order, never fork it."""
    _run(None, steps)


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(STEP, max_size=10))
def test_interleaved_connections_on_one_sqlite_file(steps: list[tuple[int, str, int, int]]) -> None:
    """Two connections to one SQLite file, each with its own Ledger, appending in any order,
    never fork it or lose an acknowledged append, and the file verifies."""
    with tempfile.TemporaryDirectory() as folder:
        _run(f"sqlite:///{Path(folder) / 'l.db'}", steps)
