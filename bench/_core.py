"""Shared plumbing of the benchmark suite: rows, sizes, payloads, work folders, timing.

For: the ``Row`` a benchmark returns (figure, baseline measured in the same run, target, verdict),
the ``Sizes`` of a full or ``--quick`` run, the scratch and cache folders under ``bench/.work/``,
deterministic payloads of a given canonical size, building (and caching) large ledgers with
``append_many``, and running ``verify_store`` in a fresh child process that reports its peak RSS.
Not for: the benchmarks themselves (``_single``, ``_durable``, ``_verify``, ``_startup``, ``_http``)
or their baselines (``_baselines``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
CACHE_DIR = WORK_DIR / "cache"

ORIGIN = "bench.local/starter-ledger"
ACTOR = "bench@localhost"
#: Events per ``append_many`` call when building large ledgers (and in row 2).
BATCH = 1000

#: Progress and notes go to stderr, so that stdout holds only the table (or the JSON).
log = Console(stderr=True, highlight=False)


# -- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A target: ``kind`` is "ratio>=", "value>=" or "value<="; ``text`` is how it prints."""

    kind: str
    bound: float
    text: str

    def holds(self, value: float | None, ratio: float | None) -> bool | None:
        subject = ratio if self.kind == "ratio>=" else value
        if subject is None:
            return None
        if self.kind in ("ratio>=", "value>="):
            return subject >= self.bound
        return subject <= self.bound


@dataclass
class Row:
    """One line of the report."""

    key: str
    metric: str
    unit: str
    value: float | None = None
    baseline: float | None = None
    baseline_label: str = ""
    #: ``value / baseline``; how to read it depends on the row (see ``ratio_label``).
    ratio: float | None = None
    target: Target | None = None
    status: str = "INFO"
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def judge(self) -> Row:
        if self.ratio is None and self.value is not None and self.baseline:
            self.ratio = self.value / self.baseline
        if self.error is not None:
            self.status = "ERROR"
        elif self.target is None:
            self.status = "INFO"
        else:
            ok = self.target.holds(self.value, self.ratio)
            self.status = "ERROR" if ok is None else ("PASS" if ok else "FAIL")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = None if self.target is None else asdict(self.target)
        return d


def error_row(key: str, metric: str, exc: BaseException) -> Row:
    return Row(key, metric, "", error=f"{type(exc).__name__}: {exc}").judge()


# -- sizes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much work each row does; ``quick`` is a smoke run."""

    quick: bool
    rounds: int  # rounds of row 2 (median taken)
    durable_rounds: int  # rounds of row 1 (median of the rounds' paired ratios)
    durable_events: int  # row 1, per round and per system
    batched_calls: int  # row 2, append_many calls of BATCH events per round
    verify_events: int  # row 3 ledger size (1 KB payloads)
    big_events: int  # rows 4 and 5 ledger size (100 B payloads)
    incremental_runs: int  # row 5, in-process runs (median taken)
    cli_runs: int  # row 5 CLI runs and row 7 runs (median taken)
    disk_events: int  # row 6, events per store
    crypto_seconds: float  # row 3 baseline: how long to measure the Ed25519 verify rate

    @classmethod
    def full(cls) -> Sizes:
        return cls(False, 3, 7, 2000, 20, 100_000, 1_000_000, 20, 10, 2000, 3.0)

    @classmethod
    def small(cls) -> Sizes:
        return cls(True, 3, 3, 300, 4, 20_000, 100_000, 20, 5, 500, 1.0)


# -- formatting ------------------------------------------------------------------------------


def human_count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


# -- payloads --------------------------------------------------------------------------------

_ALPHABET = string.ascii_letters + string.digits + "     .,"
_FILLER = "".join(random.Random(8785).choice(_ALPHABET) for _ in range(1 << 16))


def note_text(i: int, payload_bytes: int) -> str:
    """Text whose ``note.recorded`` payload ``{"text":"..."}`` is ``payload_bytes`` long (RFC 8785).

    Unique per ``i`` (a numbered prefix) and not trivially compressible.
    """
    length = max(payload_bytes - len('{"text":""}'), 12)
    prefix = f"{i:010d} "
    start = (i * 7919) % (len(_FILLER) - length)
    return prefix + _FILLER[start : start + length - len(prefix)]


def note_payload(i: int, payload_bytes: int) -> dict[str, str]:
    return {"text": note_text(i, payload_bytes)}


# -- timing ----------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def wall_times(argv: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall time of ``runs`` runs of a command (stdout and stderr discarded); fails on rc != 0."""
    times: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:4])}... exited {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace').strip()[-300:]}"
            )
    return times


def venv_tool(name: str) -> str:
    """The console script ``name`` beside the running interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is neither beside {sys.executable} nor on PATH")
    return found


# -- SQLite files ----------------------------------------------------------------------------


def sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def remove_sqlite(db: Path) -> None:
    for f in sqlite_files(db):
        f.unlink(missing_ok=True)


def truncate_wal(db: Path) -> None:
    """Fold the WAL into the database file and truncate it (``wal_checkpoint(TRUNCATE)``)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise RuntimeError(f"wal_checkpoint(TRUNCATE) of {db} was blocked by another reader")
    finally:
        conn.close()


def db_bytes(db: Path) -> int:
    """Size of the database file plus its WAL (the ``-shm`` index is not data)."""
    return sum(f.stat().st_size for f in sqlite_files(db)[:2] if f.exists())


# -- work folders ----------------------------------------------------------------------------


class Workspace:
    """A scratch folder for this run (removed at the end) and the ledger cache beside it."""

    def __init__(self, *, use_cache: bool) -> None:
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        self.scratch = WORK_DIR / f"run-{os.getpid()}"
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir()
        self.use_cache = use_cache
        self._n = 0

    def fresh(self, name: str) -> Path:
        """A new empty folder in the scratch area."""
        self._n += 1
        path = self.scratch / f"{self._n:02d}-{name}"
        path.mkdir()
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def code_fingerprint() -> str:
    """Hash of the ledger, event and contract sources: a cached ledger is reused only as is."""
    import starter_contracts
    import starter_events
    import starter_ledger

    h = hashlib.sha256()
    for pkg in (starter_contracts, starter_events, starter_ledger):
        root = Path(pkg.__file__).parent
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


@dataclass
class BuiltLedger:
    """A ledger of ``size`` entries (genesis + notes) and how it was obtained."""

    db: Path
    size: int
    payload_bytes: int
    build_seconds: float
    cached: bool
    built_at: str

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def describe(self) -> str:
        how = f"built in {self.build_seconds:.1f} s ({self.size / self.build_seconds:,.0f} ev/s)"
        if self.cached:
            how = f"cached from {self.built_at}, {how} then"
        return f"{human_count(self.size)}-entry ledger, {self.payload_bytes} B payloads: {how}"


def build_ledger(db: Path, size: int, payload_bytes: int, batch: int = BATCH) -> float:
    """Build a ledger of ``size`` entries with ``append_many``; returns the seconds it took."""
    from starter_ledger.keys import Ed25519Signer
    from starter_ledger.ledger import Event, Ledger

    signer = Ed25519Signer.generate()
    remove_sqlite(db)
    t0 = time.perf_counter()
    with Ledger.open(f"sqlite:///{db}", create=True) as led:
        led.init(ORIGIN, signer, ACTOR)
        i = 1
        last_log = t0
        while i < size:
            n = min(batch, size - i)
            events = [
                Event("note.recorded", note_payload(j, payload_bytes)) for j in range(i, i + n)
            ]
            led.append_many(events, signer, ACTOR)
            i += n
            now = time.perf_counter()
            if now - last_log > 15:
                log.print(f"    ... {i:,}/{size:,} entries ({i / (now - t0):,.0f} ev/s)")
                last_log = now
    seconds = time.perf_counter() - t0
    truncate_wal(db)
    return seconds


_BUILT: dict[tuple[int, int], BuiltLedger] = {}


def ledger_of(ws: Workspace, size: int, payload_bytes: int) -> BuiltLedger:
    """A ledger of ``size`` entries with ``payload_bytes`` payloads, built once per run.

    With the cache on, it is kept under ``bench/.work/cache/`` keyed by size, payload size, batch
    and the fingerprint of the ledger code, so reruns skip the build; stale entries are removed.
    """
    key = (size, payload_bytes)
    if key in _BUILT:
        return _BUILT[key]
    if not ws.use_cache:
        db = ws.fresh(f"ledger-{human_count(size)}") / "ledger.db"
        log.print(f"  building a {size:,}-entry ledger ({payload_bytes} B payloads) ...")
        seconds = build_ledger(db, size, payload_bytes)
        built = BuiltLedger(db, size, payload_bytes, seconds, False, now_iso())
        _BUILT[key] = built
        return built
    fp = code_fingerprint()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for old in CACHE_DIR.iterdir():  # ledgers written by other versions of the code
        if not old.name.endswith(fp):
            shutil.rmtree(old, ignore_errors=True)
    folder = CACHE_DIR / f"{size}ev-{payload_bytes}B-b{BATCH}-{fp}"
    meta_file = folder / "meta.json"
    db = folder / "ledger.db"
    if meta_file.exists() and db.exists():
        meta = json.loads(meta_file.read_text())
        if _stored_size(db) == size:
            built = BuiltLedger(
                db, size, payload_bytes, meta["build_seconds"], True, meta["built_at"]
            )
            _BUILT[key] = built
            return built
    shutil.rmtree(folder, ignore_errors=True)
    tmp = CACHE_DIR / f".building-{os.getpid()}-{size}-{payload_bytes}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        log.print(f"  building a {size:,}-entry ledger ({payload_bytes} B payloads), cached after")
        seconds = build_ledger(tmp / "ledger.db", size, payload_bytes)
        built_at = now_iso()
        (tmp / "meta.json").write_text(
            json.dumps({"build_seconds": seconds, "built_at": built_at, "size": size})
        )
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    built = BuiltLedger(db, size, payload_bytes, seconds, False, built_at)
    _BUILT[key] = built
    return built


def _stored_size(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT max(seq) FROM ledger_entries").fetchone()
    except sqlite3.Error:
        return -1
    finally:
        conn.close()
    return -1 if row[0] is None else int(row[0]) + 1


# -- verification in a fresh child process ---------------------------------------------------

#: Run as ``python -c VERIFY_CHILD URL JOBS``: verifies the ledger and prints one JSON line.
#: ``rss_before`` is the peak RSS after the imports and opening the store (the floor any
#: verification in Python with these libraries starts from). RUSAGE_CHILDREN is read after
#: ``verify_store`` returned, when its worker pool has been shut down and joined: on Linux its
#: ``ru_maxrss`` is the peak RSS of the largest of those workers. ru_maxrss is in KiB on Linux.
#: ``VmHWM`` (the peak RSS of this process's address space, from /proc) cross-checks the main
#: process's ru_maxrss.
VERIFY_CHILD = """
import json, resource, sys, time
from starter_ledger.storage import open_store
from starter_ledger.verify import verify_store

def vm_hwm_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None

url, jobs = sys.argv[1], sys.argv[2]
store = open_store(url)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
report = verify_store(store, jobs=None if jobs == "default" else int(jobs))
seconds = time.perf_counter() - t0
main_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
hwm = vm_hwm_kib()
store.close()
failure = report.first_failure
print(json.dumps({
    "ok": report.ok, "size": report.size, "entries_checked": report.entries_checked,
    "checkpoints_checked": report.checkpoints_checked, "seconds": seconds,
    "rss_before_kib": before, "rss_main_kib": main_peak, "rss_worker_kib": worker_peak,
    "vm_hwm_kib": hwm,
    "failure": None if failure is None else [failure.seq, failure.check, failure.message],
}))
"""

#: Linux keeps ``ru_maxrss`` across execve(2), and Python starts children with vfork + exec, so a
#: child exec'd straight from this (large) bench process would report the bench's own peak RSS as
#: its ru_maxrss. Starting it from a small shell that forks, execs and waits (the trailing
#: ``exit`` keeps the shell from exec'ing in place) gives the child a clean figure.
CLEAN_LAUNCH = ["/bin/sh", "-c", '"$@"; status=$?; exit $status', "sh"]

_VERIFIED: dict[str, dict[str, Any]] = {}


def verify_in_child(url: str, jobs: str = "default") -> dict[str, Any]:
    """``verify_store`` in a fresh ``python -c`` process (memoised per URL and jobs)."""
    memo = f"{url}|{jobs}"
    if memo in _VERIFIED:
        return _VERIFIED[memo]
    launch = CLEAN_LAUNCH if Path("/bin/sh").exists() else []
    proc = subprocess.run(
        [*launch, sys.executable, "-c", VERIFY_CHILD, url, jobs],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"verify child exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out["ok"]:
        raise RuntimeError(f"verification failed: {out['failure']}")
    _VERIFIED[memo] = out
    return out


def cached_verify(url: str, jobs: str = "default") -> dict[str, Any] | None:
    return _VERIFIED.get(f"{url}|{jobs}")


# -- machine facts ---------------------------------------------------------------------------


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"


def machine_facts() -> dict[str, Any]:
    import resource

    try:
        import psutil

        mem_gib: float | None = psutil.virtual_memory().total / 2**30
    except ImportError:  # pragma: no cover - psutil is a dev dependency
        mem_gib = None
    fs = shutil.disk_usage(WORK_DIR if WORK_DIR.exists() else BENCH_DIR)
    return {
        "date": now_iso(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": None if mem_gib is None else round(mem_gib, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "sqlite": sqlite3.sqlite_version,
        "work_dir": str(WORK_DIR),
        "work_dir_free_gib": round(fs.free / 2**30, 1),
        "page_size": resource.getpagesize(),
        "packages": {
            d: _version(d)
            for d in ("starter-ledger", "eventsourcing", "cryptography", "PyNaCl", "SQLAlchemy")
        },
    }


class LoadMeter:
    """How much CPU other processes took while the benchmarks ran (they skew the figures).

    System-wide busy CPU time (psutil) minus this process's and its waited-for children's.
    """

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.busy0 = self._busy()
        self.own0 = self._own()
        self.load0 = os.getloadavg()[0]

    @staticmethod
    def _busy() -> float:
        import psutil

        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    @staticmethod
    def _own() -> float:
        import resource

        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def report(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        foreign = max(0.0, (self._busy() - self.busy0) - (self._own() - self.own0))
        cores = os.cpu_count() or 1
        return {
            "wall_s": wall,
            "other_cpu_s": foreign,
            "other_share": foreign / (wall * cores) if wall else 0.0,
            "loadavg_start": self.load0,
            "loadavg_end": os.getloadavg()[0],
        }


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    t0 = time.perf_counter()
    log.print(f"[bold]{title}[/bold]")
    try:
        yield
    finally:
        log.print(f"  ({time.perf_counter() - t0:.1f} s)")
