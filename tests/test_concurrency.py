"""Concurrent appenders on one SQLite ledger: no fork, no lost or duplicated event, interleaving.

Several processes append at once, through the library (multiprocessing workers) and through the CLI
(``python -m starter_cli ledger append``). Optimistic concurrency (the expected-size check inside
the conditional INSERT, a library worker's single appends built on its kept head, and the locked
``BEGIN IMMEDIATE`` path after a refusal) must serialise them into one verifiable history.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing
import queue
import random
import subprocess
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI, ORIGIN, keyfile, make_signer
from starter_ledger import Ledger, verify_store
from starter_ledger.clock import FixedClock
from starter_ledger.errors import ConflictError
from starter_ledger.merkle import leaf_hash
from starter_ledger.storage import AppendBatch, NewEntry
from starter_ledger.storage.sqlite import SQLiteStore

WORKERS = 4
PER_WORKER = 25


def _append_worker(url: str, worker: int, count: int, start: Any, results: Any) -> None:
    """Append ``count`` notes as actor worker-N once every worker is ready; report what was ACKed.

    Between appends the worker pauses 0-4 ms, as a real appender does some work between events:
    without it one process tends to win SQLite's write lock again and again (its busy handler
    sleeps with back-off), which still serialises correctly but in long runs per process.
    """
    acked: list[tuple[int, str]] = []
    window = (0.0, 0.0)
    try:
        signer = make_signer("genesis")
        rng = random.Random(worker)
        with Ledger.open(url) as led:
            led.size()
            start.wait(timeout=60)
            began = time.monotonic()
            for n in range(count):
                text = f"worker={worker} n={n}"
                result = led.append("note.recorded", {"text": text}, signer, f"worker-{worker}")
                acked.append((result.first_seq, text))
                time.sleep(rng.uniform(0, 0.004))
            window = (began, time.monotonic())
        results.put((worker, acked, window, None))
    except BaseException:
        results.put((worker, acked, window, traceback.format_exc()))


def _check_history(
    url: str, acked: dict[str, list[tuple[int, str]]], per_actor: int
) -> list[tuple[str, str]]:
    """Assert one verifiable history holding each ACKed event exactly once; return (actor, text)."""
    total = sum(len(v) for v in acked.values())
    with Ledger.open(url) as led:
        report = verify_store(led.store)
        assert report.ok, report.first_failure
        assert led.size() == report.size == 1 + total
        latest = led.store.latest_checkpoint()
        assert latest is not None
        assert latest[0] == 1 + total
        rows = [(seq, e.envelope.actor, e.envelope.payload["text"]) for seq, e in led.entries(1)]
    texts = [text for _, _, text in rows]
    assert len(set(texts)) == len(texts) == total, "an event was lost or written twice"
    by_seq = {seq: (actor, text) for seq, actor, text in rows}
    for actor, events in acked.items():
        assert len(events) == per_actor
        for seq, text in events:
            assert by_seq[seq] == (actor, text), seq
        # each appender's own events keep their order
        assert [seq for seq, _ in events] == sorted(seq for seq, _ in events)
    return [(actor, text) for _, actor, text in rows]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_library_processes_append_concurrently_without_fork(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Four processes appending 25 events each at once yield 101 entries, each ACKed event once."""
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, create=True) as led:
        led.init(ORIGIN, make_signer("genesis"), "tester")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_append_worker, args=(url, w, PER_WORKER, start, results))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    outcomes = []
    try:
        for _ in procs:
            outcomes.append(results.get(timeout=120))
    except queue.Empty:
        pytest.fail(f"workers did not finish; got {outcomes}")
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
        results.join_thread()
    errors = [err for *_, err in outcomes if err is not None]
    assert not errors, errors[0]
    assert all(p.exitcode == 0 for p in procs)
    acked = {f"worker-{w}": events for w, events, _, _ in outcomes}
    # the workers' append loops overlapped in time (CLOCK_MONOTONIC is system-wide)
    windows = [window for _, _, window, _ in outcomes]
    assert max(b for b, _ in windows) < min(e for _, e in windows), windows

    history = _check_history(url, acked, PER_WORKER)
    actors = [actor for actor, _ in history]
    # had the appends not overlapped, the first PER_WORKER entries would be one worker's
    assert len(set(actors[:PER_WORKER])) >= 2, actors
    switches = sum(a != b for a, b in itertools.pairwise(actors))
    assert switches >= WORKERS, actors


@pytest.mark.slow
def test_cli_processes_append_concurrently_without_fork(
    tmp_path: Path, cli_env: dict[str, str], run_cli: Any
) -> None:
    """Four streams of 'starter-cli ledger append' running at once lose and duplicate nothing."""
    env = {**cli_env, "STARTER_LEDGER_KEY": keyfile(tmp_path, "genesis")}
    init = run_cli("ledger", "init", "--origin", ORIGIN, "--json", env=env)
    assert init.code == 0, init.stderr
    streams, per_stream = 4, 5
    payloads = tmp_path / "payloads"
    payloads.mkdir()

    def stream(s: int) -> list[tuple[int, str]]:
        acked = []
        for n in range(per_stream):
            text = f"cli={s} n={n}"
            payload = payloads / f"{s}-{n}.json"
            payload.write_text(json.dumps({"text": text}), encoding="utf-8")
            proc = subprocess.Popen(
                [
                    *CLI,
                    "ledger",
                    "append",
                    "--type",
                    "note.recorded",
                    "--payload",
                    str(payload),
                    "--actor",
                    f"cli-{s}",
                    "--json",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=tmp_path,
            )
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
            acked.append((json.loads(out)["seq"], text))
        return acked

    with ThreadPoolExecutor(streams) as pool:
        done = list(pool.map(stream, range(streams)))
    acked = {f"cli-{s}": events for s, events in enumerate(done)}

    history = _check_history(env["STARTER_LEDGER_URL"], acked, per_stream)
    actors = [actor for actor, _ in history]
    assert len(set(actors[:per_stream])) >= 2, actors
    verify = run_cli("ledger", "verify", "--json", env=env)
    assert verify.code == 0, verify.stderr
    assert json.loads(verify.stdout)["size"] == 1 + streams * per_stream


def test_stale_appender_rereads_under_the_write_lock(tmp_path: Path) -> None:
    """A stale cached view is re-read under the write lock: no conflict and no fork."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    clock = FixedClock(dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC))
    signer = make_signer("genesis")
    with (
        Ledger.open(url, create=True, clock=clock, retries=0) as a,
        Ledger.open(url, clock=clock, retries=0) as b,
    ):
        a.init(ORIGIN, signer, "tester")
        a.append("note.recorded", {"text": "a1"}, signer, "a")  # a now caches size 2
        b.append("note.recorded", {"text": "b1"}, signer, "b")  # the ledger moves to 3
        result = a.append("note.recorded", {"text": "a2"}, signer, "a")  # retries=0: no retry
        assert result.first_seq == 3
        assert [e.envelope.payload["text"] for _, e in b.entries(1)] == ["a1", "b1", "a2"]
        assert verify_store(b.store).ok


def test_locked_ledger_is_a_conflict_without_retries(tmp_path: Path) -> None:
    """While another writer holds the lock past the busy timeout, an append fails as a conflict."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    signer = make_signer("genesis")
    with Ledger.open(url, create=True) as a:
        a.init(ORIGIN, signer, "tester")
        before = a.latest_checkpoint()
        blocked = Ledger(SQLiteStore(url, busy_timeout_ms=50), retries=0)
        with a.store.writing(), pytest.raises(ConflictError):
            blocked.append("note.recorded", {"text": "late"}, signer, "b")
        blocked.close()
        assert a.size() == 1
        assert a.latest_checkpoint() == before


def test_store_refuses_batch_for_stale_size(tmp_path: Path) -> None:
    """The SQLite store itself refuses a batch built for an older size, writing nothing."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    signer = make_signer("genesis")
    with Ledger.open(url, create=True) as a, Ledger.open(url) as b:
        a.init(ORIGIN, signer, "tester")
        first = a.append("note.recorded", {"text": "one"}, signer, "a")
        b.append("note.recorded", {"text": "two"}, signer, "b")
        before = (a.store.size(), a.store.latest_checkpoint())
        # the batch an appender that still believes the ledger has 1 entry would write
        raw = first.entries[0]
        stale = AppendBatch(
            expected_size=1,
            entries=[NewEntry(1, raw, "note.recorded", signer.kid)],
            nodes=[(0, 1, leaf_hash(raw))],
            checkpoint=(first.size, first.checkpoint),
        )
        with pytest.raises(ConflictError):
            a.store.append(stale)
        assert (b.store.size(), b.store.latest_checkpoint()) == before == (3, before[1])
        assert verify_store(b.store).ok


def test_default_retries_absorb_a_stale_view(tmp_path: Path) -> None:
    """With default retries, a stale appender re-reads the ledger and appends after the others."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    signer = make_signer("genesis")
    with Ledger.open(url, create=True) as a, Ledger.open(url) as b:
        a.init(ORIGIN, signer, "tester")
        a.append("note.recorded", {"text": "a1"}, signer, "a")
        b.append("note.recorded", {"text": "b1"}, signer, "b")
        assert a.append("note.recorded", {"text": "a2"}, signer, "a").first_seq == 3
        assert verify_store(a.store).ok
