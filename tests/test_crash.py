"""Crash safety: a writer killed with SIGKILL at random moments never loses an acknowledged append.

A child process appends ``note.recorded`` events (single appends and three-event batches) to a
SQLite ledger in a loop and prints ``ACK <seq>`` after each append returns. The test kills it at
random moments many times, restarting it on the same file, then checks that the ledger verifies,
that every acknowledged entry holds exactly what the child sent, and that nothing was half-written.
"""

from __future__ import annotations

import random
import re
import select
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import ORIGIN, make_signer
from starter_ledger import Ledger, verify_store

#: How many times the writer is killed; each kill restarts it on the same ledger.
KILLS = 36
SEED = 20261124

CHILD = r"""
import hashlib
import sys

from starter_ledger import Ed25519Signer, Ledger
from starter_ledger.ledger import Event

url, run = sys.argv[1], int(sys.argv[2])
signer = Ed25519Signer(hashlib.sha256(b"genesis").digest())
out = sys.stdout
with Ledger.open(url) as led:
    led.size()
    out.write("READY\n")
    out.flush()
    n = op = 0
    while True:
        k = 3 if op % 4 == 3 else 1
        texts = [f"run={run} n={n + i} op={op} part={i + 1}/{k}" for i in range(k)]
        if k == 1:
            result = led.append("note.recorded", {"text": texts[0]}, signer, f"crash-{run}")
        else:
            events = [Event("note.recorded", {"text": t}) for t in texts]
            result = led.append_many(events, signer, f"crash-{run}")
        out.write("".join(f"ACK {result.first_seq + i}\n" for i in range(k)))
        out.flush()
        n += k
        op += 1
"""

TEXT = re.compile(r"run=(\d+) n=(\d+) op=(\d+) part=(\d+)/(\d+)")


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the writer did not start in time"
    return proc.stdout.readline()


def _run_and_kill(script: Path, url: str, run: int, delay: float) -> list[int]:
    """Start the writer, let it append for ``delay`` seconds, SIGKILL it; return the ACKed seqs."""
    proc = subprocess.Popen(
        [sys.executable, str(script), url, str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = _read_line(proc, 60)
        assert first == b"READY\n", (first, proc.stderr.read() if proc.stderr else b"")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    # a line cut short by the kill (no newline) was never fully acknowledged
    return [int(m) for m in re.findall(rb"^ACK (\d+)\n", out, re.MULTILINE)]


@pytest.mark.slow
def test_sigkill_never_loses_acknowledged_appends(tmp_path: Path) -> None:
    """Every append that returned survives any number of kill -9s, and the ledger still verifies."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, create=True) as led:
        led.init(ORIGIN, make_signer("genesis"), "tester")
    script = tmp_path / "writer.py"
    script.write_text(CHILD, encoding="utf-8")
    rng = random.Random(SEED)

    acked: dict[int, list[int]] = {}
    for run in range(KILLS):
        acked[run] = _run_and_kill(script, url, run, rng.uniform(0.020, 0.300))

    with Ledger.open(url) as led:
        report = verify_store(led.store)
        assert report.ok, report.first_failure
        size = led.size()
        latest = led.store.latest_checkpoint()
        assert latest is not None
        assert latest[0] == size
        stored = [(seq, e.envelope.payload["text"]) for seq, e in led.entries(1)]
    assert report.size == size == 1 + len(stored)

    # every acknowledged seq holds what the child sent for that acknowledgement
    by_seq = dict(stored)
    for run, seqs in acked.items():
        for n, seq in enumerate(seqs):
            m = TEXT.fullmatch(by_seq[seq])
            assert m is not None
            assert (int(m[1]), int(m[2])) == (run, n), (seq, by_seq[seq])

    # runs follow one another; each run's events are a gap-free, duplicate-free prefix of what it
    # sent, and beyond its ACKs at most the one operation in flight at the kill was committed
    per_run: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    order = []
    for _, text in stored:
        m = TEXT.fullmatch(text)
        assert m is not None, text
        run, n, op, part, k = map(int, m.groups())
        per_run[run].append((n, op, part, k))
        order.append((run, n))
    assert order == sorted(order)
    assert len(set(order)) == len(order)
    for run in range(KILLS):
        events = per_run.get(run, [])
        assert [n for n, *_ in events] == list(range(len(events))), run
        assert len(acked[run]) <= len(events) <= len(acked[run]) + 3, run
        # batches are atomic: every operation is complete
        parts: dict[int, list[int]] = defaultdict(list)
        for _, op, part, k in events:
            parts[op].append(part)
            assert k in (1, 3)
        for op, got in parts.items():
            k = 3 if op % 4 == 3 else 1
            assert got == list(range(1, k + 1)), (run, op, got)
    assert sum(len(v) for v in acked.values()) > KILLS, "the writer hardly appended anything"
