"""Rows 3, 4 and 5: full verification speed, peak memory, and incremental verification.

For: ``verify_store`` of a large ledger (in a fresh child process, default ``jobs``) against the
single-core Ed25519 verify rate of ``cryptography`` measured in the same run; the peak RSS of that
child and of its largest worker; ``verify_from_checkpoint`` in-process and through the CLI.
Not for: appends.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from _core import (
    Row,
    Sizes,
    Target,
    Workspace,
    cached_verify,
    human_count,
    ledger_of,
    log,
    median,
    venv_tool,
    verify_in_child,
    wall_times,
)

#: Row 3's ledger has the ~1 KB payloads of rows 1, 2 and 6.
VERIFY_PAYLOAD_BYTES = 1024
#: Rows 4 and 5 use small payloads to keep a 1M-entry ledger's file modest (~0.8 GB).
BIG_PAYLOAD_BYTES = 100


def _signing_input_sizes(db: Path, sample: int = 2000) -> tuple[float, int]:
    """Mean length of the JWS signing inputs (header.payload) of a sample of entries, and count."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT entry FROM ledger_entries WHERE seq > 0 ORDER BY seq LIMIT ?", (sample,)
        ).fetchall()
    finally:
        conn.close()
    lengths = [len(raw.rsplit(b".", 1)[0]) for (raw,) in rows]
    return statistics.fmean(lengths), len(lengths)


def _rate(
    verify_one: Callable[[bytes, bytes], object],
    messages: list[tuple[bytes, bytes]],
    seconds: float,
) -> float:
    """Verifications per second of ``verify_one(message, signature)`` over ``seconds``."""
    done = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for msg, sig in messages:
            verify_one(msg, sig)
        done += len(messages)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - t0)


def ed25519_rates(message_len: int, seconds: float) -> dict[str, float]:
    """Single-core Ed25519 verifications/s over messages of ``message_len`` bytes, in this process:
    ``cryptography`` (OpenSSL; the baseline) and PyNaCl (libsodium; what the ledger uses)."""
    import nacl.signing
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    messages = []
    for i in range(64):  # distinct base64url-like messages of the right size
        raw = bytes(alphabet[(i * 31 + j * 7) % 64] for j in range(message_len))
        messages.append((raw, key.sign(raw)))
    crypto = _rate(lambda m, s: public.verify(s, m), messages, seconds)

    from cryptography.hazmat.primitives import serialization

    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    verify_key = nacl.signing.SigningKey(seed).verify_key
    nacl_rate = _rate(verify_key.verify, messages, seconds / 2)
    return {"cryptography": crypto, "pynacl": nacl_rate}


# -- row 3 -----------------------------------------------------------------------------------


def full_verify(ws: Workspace, sizes: Sizes) -> list[Row]:
    from starter_ledger.verify import PARALLEL_THRESHOLD

    size = sizes.verify_events
    built = ledger_of(ws, size, VERIFY_PAYLOAD_BYTES)
    log.print(f"  {built.describe()}")
    mean_len, sampled = _signing_input_sizes(built.db)
    log.print(f"  verifying in a child process (signing inputs average {mean_len:,.0f} B) ...")
    out = verify_in_child(built.url)
    ours = out["size"] / out["seconds"]
    log.print(f"  measuring single-core Ed25519 verify rates ({sizes.crypto_seconds:.0f} s) ...")
    rates = ed25519_rates(round(mean_len), sizes.crypto_seconds)
    jobs = (os.cpu_count() or 1) if size >= PARALLEL_THRESHOLD else 1
    note = (
        f"{built.describe()} (append_many of 1,000 per call). verify_store(jobs=None) ran "
        f"{jobs} worker process(es) in a fresh child: {out['seconds']:.1f} s for "
        f"{out['size']:,} entries and {out['checkpoints_checked']:,} checkpoints. Baseline: "
        f"cryptography Ed25519PublicKey.verify, one core, messages of {round(mean_len):,} B (the "
        f"mean signing input of {sampled:,} entries); PyNaCl (libsodium, used by the ledger) "
        f"does {rates['pynacl']:,.0f}/s on one core. With {os.cpu_count()} cores the ceiling "
        f"for signatures alone is ~{(os.cpu_count() or 1) * rates['pynacl']:,.0f}/s."
    )
    return [
        Row(
            "3",
            f"Full verify, {human_count(size)}-entry ledger, ~1 KB payloads "
            "(verify_store, default jobs)",
            "ev/s",
            value=ours,
            baseline=rates["cryptography"],
            baseline_label="cryptography Ed25519 verify, 1 core",
            target=Target("ratio>=", 1.5, ">= 1.5x Ed25519 1-core"),
            extra={
                "note": note,
                "verify": out,
                "ed25519": rates,
                "signing_input_bytes": mean_len,
                "build_seconds": built.build_seconds,
                "build_cached": built.cached,
            },
        ).judge()
    ]


# -- row 4 -----------------------------------------------------------------------------------


def peak_rss(ws: Workspace, sizes: Sizes) -> list[Row]:
    size = sizes.big_events
    built = ledger_of(ws, size, BIG_PAYLOAD_BYTES)
    log.print(f"  {built.describe()}")
    log.print("  verifying in a fresh child process ...")
    out = verify_in_child(built.url)
    mb = 1024 / 1e6  # ru_maxrss is in KiB on Linux; report MB (10^6 bytes)
    main, worker, before = (
        out["rss_main_kib"] * mb,
        out["rss_worker_kib"] * mb,
        out["rss_before_kib"] * mb,
    )
    hwm = None if out.get("vm_hwm_kib") is None else out["vm_hwm_kib"] * mb
    quick = " (--quick: 100k, not 1M)" if sizes.quick else ""
    label = f"{human_count(size)}-entry ledger, 100 B payloads{quick}"
    cross = "" if hwm is None else f" (/proc VmHWM of the main process agrees: {hwm:.1f} MB)"
    if hwm is not None and abs(hwm - main) > 0.1 * main:
        cross = f" (WARNING: /proc VmHWM of the main process says {hwm:.1f} MB)"
    note = (
        f"{built.describe()}. Fresh `python -c` child (started through a forking shell: Linux "
        f"keeps ru_maxrss across exec, so a child exec'd straight from the bench would report the "
        f"bench's own peak): verify_store(jobs=None) took {out['seconds']:.1f} s "
        f"({out['size'] / out['seconds']:,.0f} ev/s). Main peak = getrusage(RUSAGE_SELF)."
        f"ru_maxrss{cross}; worker peak = getrusage(RUSAGE_CHILDREN).ru_maxrss after verify_store "
        f"returned (its largest worker). Baseline: the child's peak RSS after importing "
        f"starter_ledger.verify and opening the store, before verifying."
    )
    target = Target("value<=", 150, "<= 150 MB")
    base = "same child after imports + open, before verify"
    extra = {"verify": out, "build_seconds": built.build_seconds, "build_cached": built.cached}
    return [
        Row(
            "4",
            f"Peak RSS verifying a {label}: main process",
            "MB",
            value=main,
            baseline=before,
            baseline_label=base,
            target=target,
            extra={"note": note, **extra},
        ).judge(),
        Row(
            "4w",
            "  same: largest worker process",
            "MB",
            value=worker,
            baseline=before,
            baseline_label=base,
            target=target,
        ).judge(),
    ]


# -- row 5 -----------------------------------------------------------------------------------


def incremental(ws: Workspace, sizes: Sizes) -> list[Row]:
    from _startup import cli_help_times
    from starter_ledger.storage import open_store
    from starter_ledger.verify import verify_from_checkpoint

    size = sizes.big_events
    built = ledger_of(ws, size, BIG_PAYLOAD_BYTES)
    store = open_store(built.url)
    try:
        latest = store.latest_checkpoint()
        if latest is None or latest[0] != store.size():
            raise RuntimeError(f"the ledger's newest checkpoint is {latest and latest[0]}")
        trusted = latest[1]
        times: list[float] = []
        for _ in range(sizes.incremental_runs):
            t0 = time.perf_counter()
            report = verify_from_checkpoint(store, trusted)
            times.append(time.perf_counter() - t0)
            if not report.ok or report.entries_checked != 0:
                raise RuntimeError(f"incremental verify: ok={report.ok} {report.first_failure}")
    finally:
        store.close()
    ms = median(times) * 1000

    cp_file = ws.fresh("checkpoint") / "checkpoint.txt"
    cp_file.write_text(trusted)
    cli = venv_tool("starter-cli")
    argv = [cli, "ledger", "verify", "--ledger", built.url, "--from-checkpoint", str(cp_file)]
    cli_ms = median(wall_times(argv, sizes.cli_runs)) * 1000
    help_ms = median(cli_help_times(sizes.cli_runs)) * 1000

    full = cached_verify(built.url)
    full_ms = None if full is None else full["seconds"] * 1000
    quick = " (--quick: 100k, not 1M)" if sizes.quick else ""
    note = (
        f"Store opened once, then verify_from_checkpoint(store, latest checkpoint) "
        f"{sizes.incremental_runs} times with nothing new (min {min(times) * 1000:.2f} ms, "
        f"max {max(times) * 1000:.2f} ms). CLI: median of {sizes.cli_runs} runs of `starter-cli "
        f"ledger verify --ledger URL --from-checkpoint FILE`, process start to exit."
    )
    return [
        Row(
            "5",
            f"Incremental verify from latest checkpoint, nothing new, "
            f"{human_count(size)}-entry ledger{quick}, in-process",
            "ms",
            value=ms,
            baseline=full_ms,
            baseline_label="full verify of the same ledger (row 4)"
            if full_ms is not None
            else "full verify (row 4 not run)",
            target=Target("value<=", 50, "<= 50 ms"),
            extra={"note": note, "times_ms": [t * 1000 for t in times]},
        ).judge(),
        Row(
            "5c",
            "  same through the CLI: starter-cli ledger verify --from-checkpoint (wall)",
            "ms",
            value=cli_ms,
            baseline=help_ms,
            baseline_label="starter-cli --help (wall)",
        ).judge(),
    ]
