"""``starter-cli sbom ...`` and ``starter-cli audit ...``: record SBOMs and dependency audits.

For: the command-line surface over ``starter_ledger.sbom`` (record, diff, verify) and
``starter_ledger.audit`` (record, waive, status). Every record is one ledger append; bad input
(a corrupt SBOM or pip-audit file) is an error before anything is appended. Errors propagate to
the one boundary in ``app.main``. An inconclusive audit is never shown as "no vulnerabilities".
Not for: generating SBOMs or parsing reports (the library does).
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
    from starter_events.supplychain import AuditFinding, AuditRecordedPayload, SbomDiff
    from starter_ledger.audit import AuditState
    from starter_ledger.ledger import Ledger
    from starter_ledger.sbom import SbomStore

sbom_app = typer.Typer(
    help="Record CycloneDX SBOMs of the environment or a wheel, and diff them.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="Record dependency audits (pip-audit), waive findings, show what is open.",
    no_args_is_help=True,
)

STORE_OPTION = typer.Option(
    None,
    "--store",
    envvar="STARTER_SBOM_STORE",
    help="Folder of the stored SBOM files (default: sboms/ beside the ledger file).",
)


def _open(url: str) -> Ledger:
    from starter_cli.keys_cmds import _clock
    from starter_ledger.ledger import Ledger

    return notify_replicas(Ledger.open(url, clock=_clock()))


def _store(store: Path | None, ledger: str) -> SbomStore:
    from starter_ledger.sbom import SbomStore

    return SbomStore(store) if store is not None else SbomStore.beside(ledger)


def _diff_dict(diff: SbomDiff) -> dict[str, Any]:
    return diff.model_dump(mode="json")


def _print_diff(diff: SbomDiff) -> None:
    for c in diff.added:
        typer.echo(f"  added    {safe(c.name)} {safe(c.version)}")
    for c in diff.removed:
        typer.echo(f"  removed  {safe(c.name)} {safe(c.version)}")
    for ch in diff.changed:
        typer.echo(f"  changed  {safe(ch.name)} {safe(ch.old)} -> {safe(ch.new)}")
    if not (diff.added or diff.removed or diff.changed):
        typer.echo("  (no component changes)")


# -- sbom ------------------------------------------------------------------------------------


@sbom_app.command("record")
def sbom_record(
    wheel: Path | None = typer.Option(None, "--wheel", help="Describe this built wheel."),
    from_file: Path | None = typer.Option(
        None, "--from", help="Record this existing CycloneDX JSON SBOM instead of generating one."
    ),
    subject: str | None = typer.Option(
        None, "--subject", help="What --from describes (default: environment)."
    ),
    python: str | None = typer.Option(
        None, "--python", help="Describe this interpreter's environment (default: this one)."
    ),
    spec_version: str = typer.Option("1.6", "--spec-version", help="CycloneDX version."),
    store: Path | None = STORE_OPTION,
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Generate a CycloneDX SBOM (reproducible), validate it, store it by digest and append
    sbom.recorded with its component diff against the previous SBOM of the same subject."""
    from starter_ledger import sbom as lib
    from starter_ledger.errors import InputRejectedError
    from starter_ledger.keystore import open_keystore

    if sum(x is not None for x in (wheel, from_file, python)) > 1:
        raise InputRejectedError("give at most one of --wheel, --from and --python")
    who = resolve_actor(actor)
    if from_file is not None:
        try:
            data = from_file.read_bytes()
        except OSError as e:
            raise InputRejectedError(f"cannot read SBOM file {from_file}: {e.strerror}") from None
        sbom = lib.parse_sbom(data, str(from_file))
        what = subject or "environment"
    elif wheel is not None:
        sbom = lib.wheel_sbom(wheel, spec_version)
        what = wheel.name
    else:
        sbom = lib.environment_sbom(python, spec_version)
        what = "environment"
    sboms = _store(store, ledger)
    with _open(ledger) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        rec = lib.record_sbom(led, sboms, sbom, subject=what, signer=signer, actor=who)
    if json_out:
        print_json(
            {
                "seq": rec.result.first_seq,
                "path": str(rec.path),
                "previous": rec.previous.payload.sha256 if rec.previous else None,
                **rec.payload.model_dump(mode="json"),
            }
        )
        return
    typer.echo(
        f"recorded SBOM {rec.payload.sha256} (CycloneDX {rec.payload.spec_version}, "
        f"{rec.payload.components} components, {safe(what)}) at ledger entry "
        f"{rec.result.first_seq}"
    )
    typer.echo(f"stored {rec.path}")
    against = f"SBOM {rec.previous.payload.sha256[:12]}" if rec.previous else "nothing (first)"
    typer.echo(f"changes against {against}:")
    _print_diff(rec.payload.diff)


@sbom_app.command("diff")
def sbom_diff(
    old: str | None = typer.Option(None, "--from", help="Digest of the older SBOM."),
    new: str | None = typer.Option(None, "--to", help="Digest of the newer SBOM."),
    store: Path | None = STORE_OPTION,
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Print component changes: by default the last recorded SBOM's diff (from the ledger);
    with --from/--to, computed from the two stored files (digests, or unique prefixes)."""
    from starter_ledger.errors import InputRejectedError
    from starter_ledger.sbom import diff_components, recorded_sboms

    with _open(ledger) as led:
        recorded = recorded_sboms(led)
    if not recorded:
        raise InputRejectedError("the ledger has no SBOM", hint="run 'starter-cli sbom record'")
    title = ""
    if old is None and new is None:
        last = recorded[-1]
        diff = last.payload.diff
        src, dst = None, last.payload.sha256
        title = (
            f"SBOM {dst} (ledger entry {last.seq}, {safe(last.payload.subject)}) against the "
            "previous SBOM of the same subject:"
        )
    else:
        digests = [r.payload.sha256 for r in recorded]
        dst = _resolve(new, digests) if new else digests[-1]
        src = _resolve(old, digests) if old else None
        sboms = _store(store, ledger)
        before = sboms.get(src).components if src else {}
        diff = diff_components(before, sboms.get(dst).components)
    if json_out:
        print_json({"from": src, "to": dst, **_diff_dict(diff)})
        return
    typer.echo(title or f"SBOM {src or '(none)'} -> {dst}:")
    _print_diff(diff)


def _resolve(prefix: str, digests: list[str]) -> str:
    from starter_ledger.errors import InputRejectedError

    matches = sorted({d for d in digests if d.startswith(prefix.lower())})
    if len(prefix) < 6 or len(matches) != 1:
        found = "no" if not matches else "more than one"
        raise InputRejectedError(
            f"{found} recorded SBOM matches {safe(prefix)!r}",
            hint="give a recorded digest or a unique prefix of at least 6 hex digits "
            "(see 'starter-cli sbom verify')",
        )
    return matches[0]


@sbom_app.command("verify")
def sbom_verify(
    store: Path | None = STORE_OPTION,
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Re-hash every stored SBOM file against its ledger entry; exit 1 if any is missing or
    altered."""
    from starter_ledger.sbom import verify_stored

    sboms = _store(store, ledger)
    with _open(ledger) as led:
        report = verify_stored(led, sboms)
    ok = all(problem is None for _, problem in report)
    if json_out:
        print_json(
            {
                "ok": ok,
                "sboms": [
                    {"seq": r.seq, "sha256": r.payload.sha256, "problem": problem}
                    for r, problem in report
                ],
            }
        )
    else:
        for rec, problem in report:
            status = "ok     " if problem is None else "FAILED "
            typer.echo(f"{status} entry {rec.seq} {rec.payload.sha256} {safe(rec.payload.subject)}")
            if problem:
                typer.echo(f"        {safe(problem)}")
        typer.echo(f"{len(report)} SBOMs, {'all intact' if ok else 'some missing or altered'}")
    raise typer.Exit(0 if ok else 1)


# -- audit -----------------------------------------------------------------------------------


def _finding_line(f: AuditFinding) -> str:
    fix = f", fixed in {', '.join(f.fix_versions)}" if f.fix_versions else ", no fix yet"
    aka = f" ({', '.join(f.aliases)})" if f.aliases else ""
    return f"  {safe(f.package)} {safe(f.version)}: {safe(f.id)}{safe(aka)}{safe(fix)}"


def _summary(payload: AuditRecordedPayload, open_count: int) -> str:
    if payload.status == "inconclusive":
        return (
            f"INCONCLUSIVE: {len(payload.skipped)} dependencies could not be checked; "
            f"{len(payload.findings)} findings among {payload.dependencies} checked "
            f"({open_count} open). This is not a clean audit."
        )
    if not payload.findings:
        return f"no known vulnerabilities in {payload.dependencies} dependencies"
    return (
        f"{len(payload.findings)} findings in {payload.dependencies} dependencies "
        f"({open_count} open)"
    )


@audit_app.command("record")
def audit_record(
    from_file: Path | None = typer.Option(
        None, "--from", help="Ingest this pip-audit JSON report instead of running pip-audit."
    ),
    tool: str = typer.Option(
        "pip-audit", "--tool", help="With --from: the tool and version that wrote the file."
    ),
    skip_editable: bool = typer.Option(
        False,
        "--skip-editable",
        help="Leave out editable installs (the project's own code) instead of counting them "
        "as unchecked.",
    ),
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Audit the dependencies with pip-audit (or ingest its JSON) and append audit.recorded
    with every finding. Could pip-audit not check everything (no network, unknown packages),
    the audit is recorded as inconclusive."""
    from starter_ledger.audit import audit_state, parse_report, run_pip_audit
    from starter_ledger.errors import InputRejectedError
    from starter_ledger.keystore import open_keystore

    who = resolve_actor(actor)
    if from_file is not None:
        try:
            data = from_file.read_bytes()
        except OSError as e:
            raise InputRejectedError(
                f"cannot read audit report {from_file}: {e.strerror}"
            ) from None
        payload = parse_report(
            data, str(from_file), tool=tool, source="file", skip_editable=skip_editable
        )
    else:
        payload, _ = run_pip_audit(
            skip_editable=skip_editable, command=os.environ.get("STARTER_PIP_AUDIT")
        )
    with _open(ledger) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        result = led.append("audit.recorded", payload.model_dump(mode="json"), signer, who)
        state = audit_state(led, led.clock.now())
    if json_out:
        print_json(
            {
                "seq": result.first_seq,
                "open": [f.model_dump(mode="json") for f in state.open],
                **payload.model_dump(mode="json"),
            }
        )
        return
    typer.echo(f"recorded audit at ledger entry {result.first_seq} ({safe(payload.tool)})")
    typer.echo(_summary(payload, len(state.open)))
    for s in payload.skipped:
        typer.echo(f"  not checked: {safe(s.package)}: {safe(s.reason)}")
    for s in payload.excluded:
        typer.echo(f"  left out (--skip-editable): {safe(s.package)}")
    for f in state.open:
        typer.echo(_finding_line(f))


@audit_app.command("waive")
def audit_waive(
    vuln_id: str = typer.Argument(..., help="The vulnerability id (or an alias, e.g. a CVE)."),
    reason: str = typer.Option(..., "--reason", help="Why it is accepted (recorded)."),
    expires: str = typer.Option(..., "--expires", help="Until when (RFC 3339, in the future)."),
    package: str | None = typer.Option(
        None, "--package", help="Only for this package (default: any package)."
    ),
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Accept a finding until an expiry (appends audit.waived); after it, the finding counts
    again."""
    from starter_cli.keys_cmds import parse_time
    from starter_ledger.audit import audit_state, make_waiver, waiver_covers
    from starter_ledger.keystore import open_keystore

    who = resolve_actor(actor)
    until = parse_time(expires, "--expires")
    with _open(ledger) as led:
        now = led.clock.now()
        waiver = make_waiver(vuln_id, reason, until, now, package)
        signer = open_keystore(key or default_key_url(ledger)).load()
        result = led.append("audit.waived", waiver.model_dump(mode="json"), signer, who)
        state = audit_state(led, now)
    matched = (
        [f for f in state.last.payload.findings if waiver_covers(waiver, f)] if state.last else []
    )
    if json_out:
        print_json(
            {
                "seq": result.first_seq,
                "covers": [f.model_dump(mode="json") for f in matched],
                **waiver.model_dump(mode="json"),
            }
        )
        return
    scope = f" of {safe(package)}" if package else ""
    typer.echo(
        f"waived {safe(vuln_id)}{scope} until {waiver.expires} at ledger entry {result.first_seq}"
    )
    if not matched:
        typer.echo(f"warning: the last audit has no finding {safe(vuln_id)}{scope}", err=True)


def _state_dict(state: AuditState) -> dict[str, Any]:
    last = state.last
    return {
        "now": state.now,
        "clean": state.clean,
        "last": None
        if last is None
        else {
            "seq": last.seq,
            "occurred_at": last.occurred_at,
            **last.payload.model_dump(mode="json"),
        },
        "open": [f.model_dump(mode="json") for f in state.open],
        "active_waivers": [
            {"seq": w.seq, **w.payload.model_dump(mode="json")} for w in state.active_waivers
        ],
        "expired_waivers": [
            {"seq": w.seq, **w.payload.model_dump(mode="json")} for w in state.expired_waivers
        ],
    }


@audit_app.command("status")
def audit_status(ledger: str = LEDGER_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Show the last audit, its open findings and the waivers. Exit 0 only when the last
    audit is conclusive and nothing is open; else 1 (no audit, inconclusive, open findings)."""
    from starter_ledger.audit import audit_state

    with _open(ledger) as led:
        state = audit_state(led, led.clock.now())
    if json_out:
        print_json(_state_dict(state))
        raise typer.Exit(0 if state.clean else 1)
    last = state.last
    if last is None:
        typer.echo("no audit recorded: run 'starter-cli audit record'")
        raise typer.Exit(1)
    p = last.payload
    typer.echo(
        f"last audit: ledger entry {last.seq} at {last.occurred_at} ({safe(p.tool)}, "
        f"{p.source}, status {p.status})"
    )
    typer.echo(_summary(p, len(state.open)))
    for s in p.skipped:
        typer.echo(f"  not checked: {safe(s.package)}: {safe(s.reason)}")
    if state.open:
        typer.echo("open findings:")
        for f in state.open:
            typer.echo(_finding_line(f))
    for title, waivers in (("active", state.active_waivers), ("expired", state.expired_waivers)):
        if waivers:
            typer.echo(f"{title} waivers:")
        for w in waivers:
            scope = f" ({safe(w.payload.package)})" if w.payload.package else ""
            typer.echo(
                f"  {safe(w.payload.id)}{scope} until {w.payload.expires}: {safe(w.payload.reason)}"
            )
    raise typer.Exit(0 if state.clean else 1)
