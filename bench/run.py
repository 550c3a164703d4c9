"""Starter Ledger benchmarks: each figure beside a baseline measured in the same run.

Usage: ``python bench/run.py [--quick] [--json] [--strict] [--only 1,3] [--no-cache]``
(``just bench ARGS``). Prints the machine's facts and one table: metric, our figure, the
baseline, the ratio, the target and PASS/FAIL; notes under the table say how each figure was
taken. Progress goes to stderr. Work happens in ``bench/.work/run-PID/`` (removed at the end);
large ledgers are cached in ``bench/.work/cache/`` keyed by size and a hash of the ledger code
(``--no-cache`` builds them in the scratch folder instead; ``--clear-cache`` empties the cache).
Exit code 0 even when a target is missed (it is a report), unless ``--strict``: then 1 when any
row is FAIL or ERROR.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

if str(Path(__file__).resolve().parent) not in sys.path:  # run as a file from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.console import Console
from rich.table import Table
from rich.text import Text

from _core import (
    CACHE_DIR,
    LoadMeter,
    Row,
    Sizes,
    Workspace,
    error_row,
    log,
    machine_facts,
    step,
)

RowFn = Callable[[Workspace, Sizes], list[Row]]


def _benchmarks() -> list[tuple[str, str, RowFn]]:
    import _durable
    import _http
    import _single
    import _startup
    import _verify

    return [
        ("1", "Durable append, 1 event/tx", _single.durable_single),
        ("2", "Batched append (append_many)", _durable.batched),
        ("3", "Full verify", _verify.full_verify),
        ("4", "Peak RSS while verifying", _verify.peak_rss),
        ("5", "Incremental verify from a checkpoint", _verify.incremental),
        ("6", "Bytes on disk per event", _durable.disk),
        ("7", "starter-cli --help wall time", _startup.cli_help),
        (_http.KEY, "JWKS under load (autocannon, 32 connections)", _http.jwks_load),
    ]


# -- formatting ------------------------------------------------------------------------------


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ev/s", "req/s"):
        return f"{value:,.0f} {unit}"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if unit == "B/ev":
        return f"{value:,.0f} B/ev"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.4g} {unit}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if ratio < 0.01:
        return f"1/{1 / ratio:,.0f}"
    return f"{ratio:.2f}x"


_STYLE = {"PASS": "bold green", "FAIL": "bold red", "ERROR": "bold red", "INFO": "dim"}


def render(rows: list[Row], facts: dict[str, object], sizes: Sizes, seconds: float) -> None:
    width = shutil.get_terminal_size((170, 40)).columns if sys.stdout.isatty() else 170
    out = Console(width=max(width, 120), highlight=False)
    pk = facts["packages"]
    assert isinstance(pk, dict)
    out.print(
        f"[bold]Starter Ledger benchmarks[/bold] "
        f"({'--quick smoke' if sizes.quick else 'full'} run, {seconds:.0f} s)  {facts['date']}"
    )
    out.print(
        f"CPUs: {facts['cpu_count']} x {facts['cpu_model']}, {facts['memory_gib']} GiB RAM | "
        f"Python {facts['python']} | SQLite {facts['sqlite']} | {facts['platform']}"
    )
    out.print(
        f"starter-ledger {pk['starter-ledger']}, eventsourcing {pk['eventsourcing']}, "
        f"cryptography {pk['cryptography']}, PyNaCl {pk['PyNaCl']}, "
        f"SQLAlchemy {pk['SQLAlchemy']} | work dir {facts['work_dir']}"
    )
    load = facts["load"]
    assert isinstance(load, dict)
    busy = load["other_share"] > 0.05
    out.print(
        f"{'[bold red]WARNING: other processes were busy[/bold red] — ' if busy else ''}"
        f"other processes used {load['other_cpu_s']:.0f} CPU-s during the run "
        f"({load['other_share']:.0%} of the machine); load average "
        f"{load['loadavg_start']:.2f} at start, {load['loadavg_end']:.2f} at end"
        + ("; figures are skewed, rerun on a quiet machine" if busy else "")
    )
    table = Table(show_lines=False, header_style="bold")
    table.add_column("#", no_wrap=True)
    table.add_column("metric", ratio=3)
    table.add_column("ours", justify="right", no_wrap=True)
    table.add_column("baseline (same run)", ratio=2)
    table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for row in rows:
        base = Text(fmt_value(row.baseline, row.unit) if row.baseline is not None else "—")
        if row.baseline_label:
            base.append(f"  {row.baseline_label}", style="dim")
        metric = Text(row.metric)
        if row.error:
            metric.append(f"\n{row.error}", style="red")
        table.add_row(
            row.key,
            metric,
            fmt_value(row.value, row.unit) if row.error is None else "ERROR",
            base,
            fmt_ratio(row.ratio),
            row.target.text if row.target else "(info)",
            Text(row.status if row.status != "INFO" else "info", style=_STYLE[row.status]),
        )
    out.print(table)
    notes = [(r.key, str(r.extra["note"])) for r in rows if r.extra.get("note")]
    for key, note in notes:
        out.print(f"[bold]\\[{key}][/bold] {note}")
    failed = [r.key for r in rows if r.status in ("FAIL", "ERROR")]
    out.print(
        f"{sum(r.status == 'PASS' for r in rows)} PASS, "
        f"{sum(r.status == 'FAIL' for r in rows)} FAIL, "
        f"{sum(r.status == 'ERROR' for r in rows)} ERROR"
        + (f" (rows {', '.join(failed)})" if failed else "")
    )


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Starter Ledger benchmarks, each beside a baseline measured in the same run.",
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run (~1 min)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    p.add_argument("--strict", action="store_true", help="exit 1 when any row is FAIL or ERROR")
    p.add_argument("--only", default="", help="comma-separated row numbers to run, e.g. 1,3")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="build large ledgers in the scratch folder instead of bench/.work/cache/",
    )
    p.add_argument("--clear-cache", action="store_true", help="empty bench/.work/cache/ first")
    return p.parse_args(argv)


def _terminate(signum: int, frame: FrameType | None) -> None:
    del frame
    raise SystemExit(128 + signum)  # so that the scratch folder is removed on the way out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    sizes = Sizes.small() if args.quick else Sizes.full()
    benchmarks = _benchmarks()
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    unknown = only - {key for key, _, _ in benchmarks}
    if unknown:
        known = ", ".join(key for key, _, _ in benchmarks)
        log.print(f"unknown row(s) {', '.join(sorted(unknown))}; rows are {known}")
        return 2
    if args.clear_cache:
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
    facts = machine_facts()
    ws = Workspace(use_cache=not args.no_cache)
    rows: list[Row] = []
    started = time.perf_counter()
    meter = LoadMeter()
    try:
        for key, title, fn in benchmarks:
            if only and key not in only:
                continue
            with step(f"[{key}] {title}"):
                try:
                    rows.extend(fn(ws, sizes))
                except Exception as e:
                    log.print(f"  [red]ERROR[/red] {type(e).__name__}: {e}")
                    log.print(traceback.format_exc(), markup=False)
                    rows.append(error_row(key, title, e))
    finally:
        ws.cleanup()
    seconds = time.perf_counter() - started
    facts["load"] = meter.report()
    if args.json:
        doc = {
            "mode": "quick" if sizes.quick else "full",
            "seconds": seconds,
            "machine": facts,
            "sizes": sizes.__dict__,
            "rows": [r.to_dict() for r in rows],
            "failed": [r.key for r in rows if r.status in ("FAIL", "ERROR")],
        }
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        render(rows, facts, sizes, seconds)
    if args.strict and any(r.status in ("FAIL", "ERROR") for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
