"""Rows 1, 2 and 6: durable appends (one event per transaction, and batched) and bytes on disk.

For: our ``Ledger.append`` / ``append_many`` on a SQLite file against, in the same run, the
``eventsourcing`` library's ``SQLiteApplicationRecorder`` (at the same durability: WAL and
``synchronous=FULL``), the same recorder also making the two Ed25519 signatures each of our
appends makes (a like-for-like reference), and raw ``sqlite3`` inserts of ~1 KB blobs. Not for:
verification.
"""

from __future__ import annotations

import base64
import functools
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _core import (
    ACTOR,
    BATCH,
    ORIGIN,
    Row,
    Sizes,
    Target,
    Workspace,
    db_bytes,
    human_count,
    log,
    median,
    note_payload,
    note_text,
    truncate_wal,
)

#: The ~1 KB payload of rows 1, 2 and 6: ``{"text": "..."}`` is 1,024 bytes in RFC 8785 form.
PAYLOAD_BYTES = 1024


# -- the eventsourcing baseline --------------------------------------------------------------


@functools.cache
def _eventsourcing() -> dict[str, Any]:
    """eventsourcing's pieces, imported lazily (a row that does not use them does not pay).

    Made once per process: eventsourcing registers each event class under its topic once."""
    from eventsourcing.domain import DomainEvent
    from eventsourcing.persistence import (
        DatetimeAsISO,
        DecimalAsStr,
        JSONTranscoder,
        Mapper,
        UUIDAsHex,
    )
    from eventsourcing.sqlite import (
        SQLiteApplicationRecorder,
        SQLiteConnection,
        SQLiteConnectionPool,
        SQLiteDatastore,
    )

    class FullSyncPool(SQLiteConnectionPool):
        """eventsourcing's SQLite pool with ``PRAGMA synchronous=FULL`` on every connection.

        eventsourcing 9.x (``eventsourcing/sqlite.py``) opens its connections in
        ``SQLiteConnectionPool._create_connection``: autocommit mode, and ``journal_mode=WAL`` on
        file databases, but it never sets ``synchronous`` and has no setting for it (its
        environment knows only SQLITE_DBNAME, SQLITE_LOCK_TIMEOUT and SINGLE_ROW_TRACKING).
        So the bench patches the connection creation: it lets the library make the connection
        as usual, then sets ``synchronous=FULL`` on it, the durability our store runs at. (With
        SQLite's stock build the WAL default is FULL already; setting it makes that explicit.)
        """

        def _create_connection(self) -> SQLiteConnection:
            conn = super()._create_connection()
            conn._sqlite_conn.execute("PRAGMA synchronous=FULL")
            return conn

    class NoteRecorded(DomainEvent):
        """The same note as ours, as an eventsourcing domain event."""

        text: str

    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        transcoder.register(transcoding)

    def open_recorder(db: Path) -> tuple[Any, Any]:
        datastore = SQLiteDatastore(str(db))
        # The datastore's own pool has made no connection yet; swap in the FULL one.
        datastore.pool = FullSyncPool(db_name=str(db))
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        return datastore, recorder

    return {
        "open": open_recorder,
        "event": NoteRecorded,
        "mapper": Mapper(transcoder=transcoder),
        "timestamp": DomainEvent.create_timestamp,
    }


def _es_pragmas(datastore: Any) -> tuple[str, int]:
    with datastore.transaction(commit=False) as cur:
        cur.execute("PRAGMA journal_mode")
        mode = str(cur.fetchone()[0])
        cur.execute("PRAGMA synchronous")
        sync = int(cur.fetchone()[0])
    return mode, sync


def _check_durability(who: str, mode: str, sync: int) -> None:
    if mode.lower() != "wal" or sync != 2:
        raise RuntimeError(f"{who} runs journal_mode={mode} synchronous={sync}, not WAL/FULL")


def _es_saver(es: dict[str, Any], recorder: Any, *, signed: bool = False) -> Callable[[int], None]:
    """Saves note ``i`` as one stored event in its own transaction, as an application would:
    domain event object -> mapper (JSON transcoder) -> ``recorder.insert_events([stored])``.

    ``signed`` adds the two Ed25519 signatures each of our appends makes, with the same library
    and key type, over bytes of the same sizes: one over the stored event's state (our entry's
    JWS signing input) and one over a ~250-byte text (our checkpoint note). The signatures are
    computed and dropped; the stored rows are unchanged."""
    event_cls, mapper, timestamp = es["event"], es["mapper"], es["timestamp"]
    originator = uuid.uuid4()
    sign: Callable[[bytes], bytes] | None = None
    if signed:
        from starter_ledger.keys import Ed25519Signer

        sign = Ed25519Signer.generate().sign

    def save(i: int) -> None:
        event = event_cls(
            originator_id=originator,
            originator_version=i + 1,
            timestamp=timestamp(),
            text=note_text(i, PAYLOAD_BYTES),
        )
        stored = mapper.to_stored_event(event)
        if sign is not None:
            sign(base64.urlsafe_b64encode(stored.state))
            sign(f"{ORIGIN}\n{i + 2}\n{stored.originator_id}\n".ljust(250).encode())
        recorder.insert_events([stored])

    return save


# -- raw sqlite3 -----------------------------------------------------------------------------


def _raw_sqlite(db: Path) -> Any:
    import sqlite3

    conn = sqlite3.connect(db, isolation_level=None)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.execute("PRAGMA synchronous=FULL")
    _check_durability("raw sqlite3", mode, conn.execute("PRAGMA synchronous").fetchone()[0])
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    return conn


def _blob(i: int) -> bytes:
    return note_text(i, PAYLOAD_BYTES).encode().ljust(PAYLOAD_BYTES, b" ")


# -- row 1 -----------------------------------------------------------------------------------


def _run_ours_single(ws: Workspace, n: int) -> tuple[float, float]:
    from starter_ledger.keys import Ed25519Signer
    from starter_ledger.ledger import Ledger

    folder = ws.fresh("ours-single")
    signer = Ed25519Signer.generate()
    payloads = [note_payload(i, PAYLOAD_BYTES) for i in range(n)]
    with Ledger.open(f"sqlite:///{folder / 'ledger.db'}", create=True) as led:
        raw = led.store._raw  # type: ignore[attr-defined]  # read-only pragma check
        mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
        _check_durability("our store", mode, raw.execute("PRAGMA synchronous").fetchone()[0])
        led.init(ORIGIN, signer, ACTOR)
        c0, t0 = time.process_time(), time.perf_counter()
        for p in payloads:
            led.append("note.recorded", p, signer, ACTOR)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu


def _run_es_single(
    ws: Workspace, n: int, es: dict[str, Any], *, signed: bool = False
) -> tuple[float, float]:
    folder = ws.fresh("es-single")
    datastore, recorder = es["open"](folder / "es.db")
    try:
        _check_durability("eventsourcing", *_es_pragmas(datastore))
        save = _es_saver(es, recorder, signed=signed)
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(n):
            save(i)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        datastore.close()
    return wall, cpu


def _run_raw_single(ws: Workspace, n: int) -> tuple[float, float]:
    conn = _raw_sqlite(ws.fresh("raw-single") / "raw.db")
    blobs = [_blob(i) for i in range(n)]
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        for b in blobs:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO events(data) VALUES (?)", (b,))
            conn.execute("COMMIT")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        conn.close()
    return wall, cpu


def durable_single(ws: Workspace, sizes: Sizes) -> list[Row]:
    n, rounds = sizes.durable_events, sizes.rounds
    es = _eventsourcing()
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "es": [], "es+sig": [], "raw": []}
    for r in range(rounds):  # interleaved, so that drift of the machine hits all four alike
        runs["ours"].append(_run_ours_single(ws, n))
        runs["es"].append(_run_es_single(ws, n, es))
        runs["es+sig"].append(_run_es_single(ws, n, es, signed=True))
        runs["raw"].append(_run_raw_single(ws, n))
        log.print(
            f"  round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {n / v[-1][0]:,.0f} ev/s" for k, v in runs.items())
        )
    rate = {k: median([n / wall for wall, _ in v]) for k, v in runs.items()}
    ms_wall = {k: median([wall / n * 1000 for wall, _ in v]) for k, v in runs.items()}
    ms_cpu = {k: median([cpu / n * 1000 for _, cpu in v]) for k, v in runs.items()}
    floor = ms_wall["raw"]
    per_op = "; ".join(
        f"{name} {ms_wall[k]:.3f} ms wall / {ms_cpu[k]:.3f} ms CPU"
        for k, name in (
            ("ours", "ours"),
            ("es", "eventsourcing"),
            ("es+sig", "eventsourcing + 2 signatures"),
            ("raw", "raw sqlite3"),
        )
    )
    bound = (
        "CPU-bound: most of each append is Python work in this process, not the disk"
        if ms_cpu["ours"] > 0.5 * ms_wall["ours"]
        else "fsync-bound: most of each append is spent waiting for the disk"
    )
    note = (
        f"fsync-bound note: every commit is durable (WAL + synchronous=FULL, checked on each "
        f"connection), so each append waits for one fsync of the WAL; raw sqlite3 puts the "
        f"floor of one durable ~1 KB commit on this disk at {floor:.3f} ms "
        f"({rate['raw']:,.0f} tx/s). Per append (median of {rounds} rounds of {n:,}): {per_op}. "
        f"Ours is {bound}."
    )
    label = f"{n:,} events x {rounds} rounds, median"
    return [
        Row(
            "1",
            f"Durable append, 1 event/tx, ~1 KB note.recorded ({label})",
            "ev/s",
            value=rate["ours"],
            baseline=rate["es"],
            baseline_label="eventsourcing SQLiteApplicationRecorder (WAL, FULL)",
            target=Target("ratio>=", 0.9, ">= 0.9x eventsourcing"),
            extra={"note": note, "ms_wall": ms_wall, "ms_cpu": ms_cpu, "rates": rate},
        ).judge(),
        Row(
            "1s",
            "  reference: eventsourcing + the 2 Ed25519 signatures per event that ours makes",
            "ev/s",
            value=rate["ours"],
            baseline=rate["es+sig"],
            baseline_label="eventsourcing recorder, signing as ours does (PyNaCl)",
        ).judge(),
        Row(
            "1r",
            "  reference: raw sqlite3, 1 INSERT of a 1 KB blob per tx (WAL, FULL)",
            "ev/s",
            value=rate["ours"],
            baseline=rate["raw"],
            baseline_label="raw sqlite3",
        ).judge(),
    ]


# -- row 2 -----------------------------------------------------------------------------------


def _run_ours_batched(ws: Workspace, calls: int) -> float:
    from starter_ledger.keys import Ed25519Signer
    from starter_ledger.ledger import Event, Ledger

    folder = ws.fresh("ours-batched")
    signer = Ed25519Signer.generate()
    batches = [
        [Event("note.recorded", note_payload(c * BATCH + i, PAYLOAD_BYTES)) for i in range(BATCH)]
        for c in range(calls)
    ]
    with Ledger.open(f"sqlite:///{folder / 'ledger.db'}", create=True) as led:
        led.init(ORIGIN, signer, ACTOR)
        t0 = time.perf_counter()
        for events in batches:
            led.append_many(events, signer, ACTOR)
        return time.perf_counter() - t0


def _run_raw_batched(ws: Workspace, calls: int) -> float:
    conn = _raw_sqlite(ws.fresh("raw-batched") / "raw.db")
    batches = [[(_blob(c * BATCH + i),) for i in range(BATCH)] for c in range(calls)]
    try:
        t0 = time.perf_counter()
        for rows in batches:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events(data) VALUES (?)", rows)
            conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


def batched(ws: Workspace, sizes: Sizes) -> list[Row]:
    calls, rounds = sizes.batched_calls, sizes.rounds
    n = calls * BATCH
    ours: list[float] = []
    raw: list[float] = []
    for r in range(rounds):
        ours.append(n / _run_ours_batched(ws, calls))
        raw.append(n / _run_raw_batched(ws, calls))
        log.print(f"  round {r + 1}/{rounds}: ours {ours[-1]:,.0f} ev/s, raw {raw[-1]:,.0f} ev/s")
    return [
        Row(
            "2",
            f"Batched append, append_many of {BATCH:,} x ~1 KB per tx "
            f"({calls} calls = {human_count(n)} events x {rounds} rounds, median)",
            "ev/s",
            value=median(ours),
            baseline=median(raw),
            baseline_label="raw sqlite3 executemany, same rows per tx (reference)",
            target=Target("value>=", 10_000, ">= 10,000 ev/s"),
        ).judge()
    ]


# -- row 6 -----------------------------------------------------------------------------------


def _ours_bytes(ws: Workspace, n: int, batch: int) -> tuple[float, dict[str, float]]:
    import sqlite3

    from starter_ledger.keys import Ed25519Signer
    from starter_ledger.ledger import Event, Ledger

    db = ws.fresh(f"ours-disk-b{batch}") / "ledger.db"
    signer = Ed25519Signer.generate()
    with Ledger.open(f"sqlite:///{db}", create=True) as led:
        led.init(ORIGIN, signer, ACTOR)
        i = 1
        while i < n:
            k = min(batch, n - i)
            if k == 1:
                led.append("note.recorded", note_payload(i, PAYLOAD_BYTES), signer, ACTOR)
            else:
                events = [
                    Event("note.recorded", note_payload(j, PAYLOAD_BYTES)) for j in range(i, i + k)
                ]
                led.append_many(events, signer, ACTOR)
            i += k
    truncate_wal(db)
    conn = sqlite3.connect(db)
    try:
        entry = conn.execute("SELECT avg(length(entry)), count(*) FROM ledger_entries").fetchone()
        cps = conn.execute(
            "SELECT avg(length(checkpoint)), count(checkpoint) FROM ledger_entries"
        ).fetchone()
        # each row holds the hashes (32 B each) of the subtrees its entry completes
        nodes = conn.execute("SELECT sum(length(nodes)) / 32 FROM ledger_entries").fetchone()[0]
    finally:
        conn.close()
    parts = {
        "entry_bytes": entry[0],
        "checkpoint_bytes": cps[0],
        "checkpoints": cps[1],
        "nodes_per_entry": nodes / entry[1],
    }
    return db_bytes(db) / n, parts


def _es_bytes(ws: Workspace, n: int) -> tuple[float, float]:
    import sqlite3

    es = _eventsourcing()
    db = ws.fresh("es-disk") / "es.db"
    datastore, recorder = es["open"](db)
    try:
        save = _es_saver(es, recorder)
        for i in range(n):
            save(i)
    finally:
        datastore.close()
    truncate_wal(db)
    conn = sqlite3.connect(db)
    try:
        state = conn.execute("SELECT avg(length(state)) FROM stored_events").fetchone()[0]
    finally:
        conn.close()
    return db_bytes(db) / n, state


def disk(ws: Workspace, sizes: Sizes) -> list[Row]:
    n = sizes.disk_events
    es, es_state = _es_bytes(ws, n)
    single, sp = _ours_bytes(ws, n, 1)
    many, mp = _ours_bytes(ws, n, BATCH)
    note = (
        f"(db + wal) after wal_checkpoint(TRUNCATE) / events, {n:,} events of ~1 KB per store "
        f"(the issue quotes eventsourcing at 1,419 B). Ours, 1 event/tx: an entry (compact JWS: "
        f"base64url of the signed envelope) averages {sp['entry_bytes']:,.0f} B, plus one signed "
        f"checkpoint note of {sp['checkpoint_bytes']:,.0f} B per append and "
        f"{sp['nodes_per_entry']:.2f} Merkle node hashes per entry (in the entry row); batched: "
        f"{mp['checkpoints']:,} checkpoints in all. eventsourcing's stored state averages "
        f"{es_state:,.0f} B (plain JSON)."
    )
    base = "eventsourcing recorder, same payloads, 1 event/tx"
    return [
        Row(
            "6",
            f"Bytes on disk per event, ~1 KB payloads, 1 event/tx ({n:,} events)",
            "B/ev",
            value=single,
            baseline=es,
            baseline_label=base,
            extra={"note": note, "ours_parts": sp, "es_state_bytes": es_state},
        ).judge(),
        Row(
            "6b",
            f"  same, ours appended with append_many of {BATCH:,}",
            "B/ev",
            value=many,
            baseline=es,
            baseline_label=base,
            extra={"ours_parts": mp},
        ).judge(),
    ]
