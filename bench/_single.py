"""Row 1: durable appends, one event per transaction, against eventsourcing in the same rounds.

For: our ``Ledger.append`` on a SQLite file, the ``eventsourcing`` library's recorder at the same
durability, that recorder also making our two Ed25519 signatures per event (row 1s), raw
``sqlite3`` (row 1r), and the floor of our format in Python (row 1m: ``bare_append``). Each round
opens a fresh store of every system, appends ``WARMUP`` untimed events to each, then interleaves
them in blocks of ``BLOCK`` appends (the order rotating from block to block), so that a slow spell
of this shared virtual machine's disk or CPU falls on all of them alike; a round's ratio is then a
paired comparison, and the row reports the median of the rounds' ratios with their range. Not
for: batched appends or bytes on disk (``_durable``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _baselines import (
    PAYLOAD_BYTES,
    bare_append,
    blob,
    check_durability,
    es_pragmas,
    es_saver,
    eventsourcing,
    raw_sqlite,
)
from _core import (
    ACTOR,
    ORIGIN,
    Row,
    Sizes,
    Target,
    Workspace,
    log,
    median,
    note_payload,
    note_text,
)

#: Appends per block; each system runs one block in turn (about 30 ms each).
BLOCK = 100
#: Untimed appends per store before the timed blocks: enough for eventsourcing's WAL (SQLite's
#: default autocheckpoint of 1,000 frames, two per commit) and ours (128 frames) to reach the size
#: at which they are reused, so that the rounds time the steady state, where an fsync no longer
#: extends the file.
WARMUP = 600

#: The systems of row 1, in the order of their first block.
SYSTEMS = ("ours", "es", "es+sig", "raw", "bare")


@dataclass
class _Store:
    """One system's store for one round: ``save(i)`` appends item ``i``, durably."""

    save: Callable[[int], None]
    close: Callable[[], None]
    wall: float = 0.0
    cpu: float = 0.0
    done: int = 0


def _ours(ws: Workspace, n: int) -> _Store:
    from starter_ledger.keys import Ed25519Signer
    from starter_ledger.ledger import Ledger

    folder = ws.fresh("ours-single")
    signer = Ed25519Signer.generate()
    payloads = [note_payload(i, PAYLOAD_BYTES) for i in range(n)]
    led = Ledger.open(f"sqlite:///{folder / 'ledger.db'}", create=True)
    raw = led.store._raw  # type: ignore[attr-defined]  # read-only pragma check
    mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
    check_durability("our store", mode, raw.execute("PRAGMA synchronous").fetchone()[0])
    led.init(ORIGIN, signer, ACTOR)

    def save(i: int) -> None:
        led.append("note.recorded", payloads[i], signer, ACTOR)

    return _Store(save, led.close)


def _es(ws: Workspace, n: int, es: dict[str, Any], *, signed: bool) -> _Store:
    datastore, recorder = es["open"](ws.fresh("es-single") / "es.db")
    check_durability("eventsourcing", *es_pragmas(datastore))
    texts = [note_text(i, PAYLOAD_BYTES) for i in range(n)]
    return _Store(es_saver(es, recorder, texts, signed=signed), datastore.close)


def _raw(ws: Workspace, n: int) -> _Store:
    conn = raw_sqlite(ws.fresh("raw-single") / "raw.db")
    blobs = [blob(i) for i in range(n)]

    def save(i: int) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO events(data) VALUES (?)", (blobs[i],))
        conn.execute("COMMIT")

    return _Store(save, conn.close)


def _bare(ws: Workspace, n: int) -> _Store:
    payloads = [note_payload(i, PAYLOAD_BYTES) for i in range(n)]
    save, close = bare_append(ws.fresh("bare-single") / "bare.db", payloads)
    return _Store(save, close)


def _round(ws: Workspace, n: int, es: dict[str, Any]) -> dict[str, _Store]:
    """One round: every system appends ``WARMUP`` events, then ``n`` timed ones, interleaved in
    blocks of ``BLOCK``."""
    total = WARMUP + n
    stores = {
        "ours": _ours(ws, total),
        "es": _es(ws, total, es, signed=False),
        "es+sig": _es(ws, total, es, signed=True),
        "raw": _raw(ws, total),
        "bare": _bare(ws, total),
    }
    try:
        for store in stores.values():
            for i in range(WARMUP):
                store.save(i)
        for b, start in enumerate(range(WARMUP, total, BLOCK)):
            end = min(start + BLOCK, total)
            for k in range(len(SYSTEMS)):
                store = stores[SYSTEMS[(b + k) % len(SYSTEMS)]]
                save = store.save
                c0, t0 = time.process_time(), time.perf_counter()
                for i in range(start, end):
                    save(i)
                store.wall += time.perf_counter() - t0
                store.cpu += time.process_time() - c0
                store.done += end - start
    finally:
        for store in stores.values():
            store.close()
    return stores


def durable_single(ws: Workspace, sizes: Sizes) -> list[Row]:
    n, rounds = sizes.durable_events, sizes.durable_rounds
    es = eventsourcing()
    rates: dict[str, list[float]] = {k: [] for k in SYSTEMS}
    ms_wall: dict[str, list[float]] = {k: [] for k in SYSTEMS}
    ms_cpu: dict[str, list[float]] = {k: [] for k in SYSTEMS}
    for r in range(rounds):
        stores = _round(ws, n, es)
        for k, s in stores.items():
            rates[k].append(s.done / s.wall)
            ms_wall[k].append(s.wall / s.done * 1000)
            ms_cpu[k].append(s.cpu / s.done * 1000)
        log.print(
            f"  round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {v[-1]:,.0f} ev/s" for k, v in rates.items())
            + f"; ours/es {rates['ours'][-1] / rates['es'][-1]:.2f}"
        )
    # Paired: each round's ratio compares stores that ran in the same seconds.
    paired = {k: [o / b for o, b in zip(rates["ours"], rates[k], strict=True)] for k in SYSTEMS}
    rate = {k: median(v) for k, v in rates.items()}
    wall = {k: median(v) for k, v in ms_wall.items()}
    cpu = {k: median(v) for k, v in ms_cpu.items()}
    spread = {k: (min(v), max(v)) for k, v in paired.items()}
    per_op = "; ".join(
        f"{name} {wall[k]:.3f} ms wall / {cpu[k]:.3f} ms CPU"
        for k, name in (
            ("ours", "ours"),
            ("es", "eventsourcing"),
            ("es+sig", "eventsourcing + 2 signatures"),
            ("raw", "raw sqlite3"),
            ("bare", "bare-minimum append"),
        )
    )
    bound = (
        "CPU-bound: most of each append is Python work in this process, not the disk"
        if cpu["ours"] > 0.5 * wall["ours"]
        else "fsync-bound: most of each append is spent waiting for the disk"
    )
    lo, hi = spread["es"]
    bare = [b / e for b, e in zip(rates["bare"], rates["es"], strict=True)]
    note = (
        f"every commit is durable (WAL + synchronous=FULL, checked on each connection), so each "
        f"append waits for one fsync of the WAL; raw sqlite3 puts the floor of one durable ~1 KB "
        f"commit on this disk at {wall['raw']:.3f} ms ({rate['raw']:,.0f} tx/s). Each round "
        f"opens fresh stores, appends {WARMUP} untimed events to each (so that every WAL has "
        f"reached the size at which it is reused), then interleaves the five systems in blocks "
        f"of {BLOCK} timed appends; the ratio is the median of "
        f"the {rounds} rounds' ratios (ours/eventsourcing per round: {lo:.2f}x to {hi:.2f}x; "
        f"sd {statistics.pstdev(paired['es']):.2f}). Row 1m is the floor of the format in Python: "
        f"the same bytes (RFC 8785 envelope, JWS, Merkle path, signed checkpoint note, one "
        f"conditional INSERT) without validation, trust rules or any of the ledger's objects; "
        f"per round {min(bare):.2f}x to {max(bare):.2f}x of eventsourcing. Per append "
        f"(medians): {per_op}. Ours is {bound}."
    )
    label = f"{n:,} events x {rounds} rounds, interleaved"
    extra = {
        "note": note,
        "ms_wall": wall,
        "ms_cpu": cpu,
        "rates": rate,
        "round_ratios": paired,
        "block": BLOCK,
        "warmup": WARMUP,
    }
    return [
        Row(
            "1",
            f"Durable append, 1 event/tx, ~1 KB note.recorded ({label})",
            "ev/s",
            value=rate["ours"],
            baseline=rate["es"],
            baseline_label="eventsourcing SQLiteApplicationRecorder (WAL, FULL)",
            ratio=median(paired["es"]),
            target=Target("ratio>=", 0.9, ">= 0.9x eventsourcing"),
            extra=extra,
        ).judge(),
        Row(
            "1s",
            "  reference: eventsourcing + the 2 Ed25519 signatures per event that ours makes",
            "ev/s",
            value=rate["ours"],
            baseline=rate["es+sig"],
            baseline_label="eventsourcing recorder, signing as ours does (PyNaCl)",
            ratio=median(paired["es+sig"]),
        ).judge(),
        Row(
            "1r",
            "  reference: raw sqlite3, 1 INSERT of a 1 KB blob per tx (WAL, FULL)",
            "ev/s",
            value=rate["ours"],
            baseline=rate["raw"],
            baseline_label="raw sqlite3",
            ratio=median(paired["raw"]),
        ).judge(),
        Row(
            "1m",
            "  floor: a bare-minimum append of the same bytes in Python (no validation, no trust "
            "rules), against eventsourcing",
            "ev/s",
            value=rate["bare"],
            baseline=rate["es"],
            baseline_label="eventsourcing SQLiteApplicationRecorder (WAL, FULL)",
            ratio=median(bare),
        ).judge(),
    ]
