"""``starter-cli contracts ...``: freeze the contracts' schema snapshots, check them in CI, and
keep CONTRACTS.md's generated blocks up to date.

For: the command-line surface over ``starter_ledger.freeze`` and ``starter_cli._graph``. The
backend's OpenAPI document is reached only through the ``starter_ledger.snapshots`` entry points,
never by importing the backend. Errors propagate to the one boundary in ``app.main``; drift is
exit 1 with a readable report. Not for: comparing schemas (``starter_ledger.schemadiff``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from starter_cli._common import (
    ACTOR_OPTION,
    JSON_OPTION,
    KEY_OPTION,
    LEDGER_OPTION,
    default_key_url,
    notify_replicas,
    print_json,
    resolve_actor,
    safe,
)

if TYPE_CHECKING:
    from starter_events import SchemaChange
    from starter_ledger.freeze import CheckReport

app = typer.Typer(
    help="Freeze the contracts' JSON Schemas and the backend's OpenAPI document; check them in CI.",
    no_args_is_help=True,
)

#: Where the committed snapshots live unless --snapshots or STARTER_SNAPSHOTS_DIR says otherwise.
DEFAULT_SNAPSHOTS = Path("contracts/snapshots")

SNAPSHOTS_OPTION = typer.Option(
    DEFAULT_SNAPSHOTS,
    "--snapshots",
    envvar="STARTER_SNAPSHOTS_DIR",
    help="Folder of the committed snapshot files and FROZEN.json.",
    show_default=True,
)
FIX = "run 'starter-cli contracts freeze' to freeze this change"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def change_line(change: SchemaChange) -> str:
    """One line per change: a BREAKING or compatible marker, the kind, the place, the detail."""
    marker = "BREAKING" if change.breaking else "compatible"
    where = f"{change.snapshot} {change.where}".strip()
    return f"  {marker:10s} {change.kind:18s} {safe(where)}: {safe(change.detail)}"


@app.command()
def freeze(
    snapshots: Path = SNAPSHOTS_OPTION,
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Write the snapshot files and FROZEN.json, and append a signed schema.frozen event.

    Each change since the last freeze is recorded, classified as breaking or not. Running it
    again without changes appends nothing.
    """
    from starter_ledger.freeze import freeze as run_freeze
    from starter_ledger.keystore import open_keystore
    from starter_ledger.ledger import Ledger

    who = resolve_actor(actor)
    with notify_replicas(Ledger.open(ledger)) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        result = run_freeze(led, signer, who, snapshots)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if json_out:
        print_json(result.to_dict())
        return
    files = _count(len(result.snapshots), "snapshot")
    if not result.appended:
        rewritten = len(result.written) + len(result.removed)
        repaired = f"; rewrote {_count(rewritten, 'file')} in {snapshots}" if rewritten else ""
        typer.echo(
            f"already frozen: ledger entry {result.seq} (starter-contracts "
            f"{result.contracts_version}) holds these {files}{repaired}"
        )
        return
    breaking = sum(c.breaking for c in result.changes)
    typer.echo(
        f"froze {files} in {snapshots} at ledger entry {result.seq} (starter-contracts "
        f"{result.contracts_version}): {_count(len(result.changes), 'change')}, {breaking} breaking"
    )
    for change in result.changes:
        typer.echo(change_line(change))
    typer.echo(f"commit {snapshots} (the snapshot files and FROZEN.json)")


def _trusted(option: list[str]) -> set[str] | None:
    values = option or os.environ.get("STARTER_TRUSTED_KIDS", "").split(",")
    kids = {v.strip() for v in values if v.strip()}
    return kids or None


def _open_if_present(url: str | None) -> Any:
    """The ledger at ``url`` opened read-only, or None when none was given or a SQLite file
    does not exist (a CI clone); other URLs must open."""
    if url is None:
        return None
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :].split("?", 1)[0])
        if not path.exists():
            typer.echo(f"note: no ledger at {path}: FROZEN.json is checked offline only", err=True)
            return None
    from starter_ledger.ledger import Ledger
    from starter_ledger.storage import open_store

    return Ledger(open_store(url, read_only=True))


def _print_report(report: CheckReport) -> None:
    record = report.record
    if report.ok and record.payload is not None:
        typer.echo(
            f"ok: {_count(len(record.payload.snapshots), 'snapshot')} in {report.folder} "
            f"{'matches' if len(record.payload.snapshots) == 1 else 'match'} the code "
            f"and the freeze of ledger entry {record.seq} (starter-contracts "
            f"{record.payload.contracts_version}, signed by {record.signer_kid})"
        )
        if record.trusted is None:
            typer.echo("note: pin the signer with --trusted-kid to trust it", err=True)
        return
    if report.changed_files:
        breaking = sum(c.breaking for c in report.changes)
        typer.echo(
            f"FAILED: the code's schemas differ from the frozen snapshots in {report.folder}: "
            f"{_count(len(report.changed_files), 'file')}, "
            f"{_count(len(report.changes), 'classified change')}, {breaking} breaking"
        )
        for change in report.changes:
            typer.echo(change_line(change))
        if not report.changes:
            typer.echo("  (no classified change: only titles, descriptions or defaults differ)")
        typer.echo(report.unified_diff, nl=False)
    if report.problems:
        typer.echo(f"FAILED: the freeze record {report.folder / 'FROZEN.json'} does not hold:")
        for problem in report.problems:
            typer.echo(f"  {safe(problem)}")
    if report.changed_files:
        more = " (it will be recorded as breaking)" if report.breaking else ""
        typer.echo(f"hint: {FIX}{more}, then commit {report.folder}", err=True)
    elif record.trusted is False:
        typer.echo(
            "hint: freeze with a trusted ledger signer's key, or pin this signer with "
            "--trusted-kid if you trust it",
            err=True,
        )
    else:
        typer.echo(
            f"hint: restore {report.folder} from version control, or regenerate it with "
            "'starter-cli contracts freeze'",
            err=True,
        )


@app.command()
def check(
    snapshots: Path = SNAPSHOTS_OPTION,
    ledger: str | None = typer.Option(
        None,
        "--ledger",
        help="Also require FROZEN.json to be this ledger's newest schema.frozen entry. "
        "A sqlite:/// ledger that does not exist is skipped (a CI clone has none).",
    ),
    trusted_kid: list[str] = typer.Option(
        [],
        "--trusted-kid",
        help="Pin: a ledger signer kid trusted to freeze (repeatable; env STARTER_TRUSTED_KIDS, "
        "comma-separated).",
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Fail (exit 1) when the code's schemas differ from the committed snapshots, or the
    snapshots from the signed freeze in FROZEN.json. Verifies offline; run by CI."""
    from starter_ledger.freeze import check as run_check

    led = _open_if_present(ledger)
    try:
        report = run_check(snapshots, ledger=led, trusted_kids=_trusted(trusted_kid))
    finally:
        if led is not None:
            led.close()
    if json_out:
        print_json(report.to_dict())
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def graph(
    check: bool = typer.Option(
        False, "--check", help="Change nothing; exit 1 when the file is out of date (for CI)."
    ),
    file: Path = typer.Option(
        Path("CONTRACTS.md"), "--file", help="The file with the generated blocks."
    ),
) -> None:
    """Regenerate the public API table and the import graph in CONTRACTS.md."""
    from starter_cli._graph import sync_contracts_md

    changed = sync_contracts_md(file, check=check)
    if check and changed:
        typer.echo(
            f"FAILED: {file}'s import graph is out of date: run 'just contracts-graph'", err=True
        )
        raise typer.Exit(1)
    typer.echo(f"updated {file}" if changed else f"{file} is up to date")
