"""Dependency audits with pip-audit, their findings, and waivers with an expiry.

For: running ``pip-audit -f json`` on this environment (or reading a pip-audit JSON file, for
hermetic CI), turning its report into an ``audit.recorded`` payload, recording waivers
(``audit.waived``), and answering which findings are still open at a given time.

An audit that could not check everything is a value, not an exception: any skipped dependency,
a report that lists no dependency at all, or a pip-audit run that produced no report (no network,
the service down, a timeout) gives status ``inconclusive`` with the reasons in ``skipped``; it
never reads as "no vulnerabilities". A pip-audit *file* that is not a pip-audit JSON report is an
error (``InputRejectedError``) and nothing is appended. A waiver covers a finding whose id or
alias is the waiver's id (for the waiver's package only, when it names one) until its expiry.

Not for: SBOMs (``starter_ledger.sbom``) or the event model (``starter_events.supplychain``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from starter_events.supplychain import (
    AuditFinding,
    AuditRecordedPayload,
    AuditSkipped,
    AuditWaivedPayload,
)
from starter_ledger.entry import format_time
from starter_ledger.errors import InputRejectedError
from starter_ledger.ledger import Ledger

__all__ = [
    "AUDIT_EVENT",
    "EDITABLE_SKIP_REASON",
    "WAIVER_EVENT",
    "AuditState",
    "RecordedAudit",
    "RecordedWaiver",
    "audit_state",
    "make_waiver",
    "open_findings",
    "parse_report",
    "run_pip_audit",
    "waiver_covers",
]

AUDIT_EVENT = "audit.recorded"
WAIVER_EVENT = "audit.waived"
#: pip-audit's reason for a dependency it skipped because ``--skip-editable`` was given.
EDITABLE_SKIP_REASON = "distribution marked as editable"
#: Largest pip-audit report accepted (16 MiB).
MAX_REPORT_BYTES = 16 << 20
#: The environment variable naming another pip-audit command (tests, wrappers).
COMMAND_ENV = "STARTER_PIP_AUDIT"
#: Stands for "every dependency" in ``skipped`` when pip-audit produced no report.
ALL = "*"
_TIMEOUT = 900


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class _Vuln(_Strict):
    id: str
    fix_versions: list[str] = []
    aliases: list[str] = []


class _Dep(_Strict):
    name: str
    version: str | None = None
    vulns: list[_Vuln] = []
    skip_reason: str | None = None


class _Report(_Strict):
    dependencies: list[_Dep]


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def parse_report(
    data: bytes,
    where: str,
    *,
    tool: str,
    source: Literal["run", "file"],
    skip_editable: bool = False,
) -> AuditRecordedPayload:
    """The ``audit.recorded`` payload of a pip-audit JSON report. ``skip_editable`` moves the
    dependencies pip-audit skipped as editable installs (the project's own code) from
    ``skipped`` (which makes an audit inconclusive) to ``excluded`` (which names them only)."""
    hint = "pass the JSON written by 'pip-audit -f json -o FILE'"
    if len(data) > MAX_REPORT_BYTES:
        raise InputRejectedError(f"audit report {where} is over {MAX_REPORT_BYTES} bytes")
    try:
        report = _Report.model_validate_json(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(map(str, err["loc"])) or "the document"
        raise InputRejectedError(
            f"audit report {where} is not a pip-audit JSON report: {loc}: {err['msg']}", hint=hint
        ) from None
    findings: list[AuditFinding] = []
    skipped: list[AuditSkipped] = []
    excluded: list[AuditSkipped] = []
    checked = 0
    try:
        for dep in report.dependencies:
            if dep.skip_reason is not None or dep.version is None:
                reason = dep.skip_reason or "no version given"
                left_out = skip_editable and reason == EDITABLE_SKIP_REASON
                (excluded if left_out else skipped).append(
                    AuditSkipped(package=dep.name, reason=reason[:1024])
                )
                continue
            checked += 1
            findings.extend(
                AuditFinding(
                    package=dep.name,
                    version=dep.version,
                    id=v.id,
                    aliases=sorted(set(v.aliases)),
                    fix_versions=v.fix_versions,
                )
                for v in dep.vulns
            )
        if checked == 0 and not skipped:
            skipped.append(AuditSkipped(package=ALL, reason="the report lists no dependency"))
        return AuditRecordedPayload(
            status="inconclusive" if skipped else "conclusive",
            tool=tool,
            source=source,
            report_sha256=hashlib.sha256(data).hexdigest(),
            dependencies=checked,
            findings=sorted(findings, key=lambda f: (_canonical(f.package), f.version, f.id)),
            skipped=sorted(skipped, key=lambda s: _canonical(s.package)),
            excluded=sorted(excluded, key=lambda s: _canonical(s.package)),
        )
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        raise InputRejectedError(
            f"audit report {where} holds a value the ledger refuses: "
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}",
            hint=hint,
        ) from None


def _command(override: str | None) -> list[str]:
    return shlex.split(override) if override else [sys.executable, "-m", "pip_audit"]


def _tool_version(command: Sequence[str]) -> str:
    try:
        proc = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "pip-audit"
    line = proc.stdout.strip().splitlines()[:1]
    return (line[0] if proc.returncode == 0 and line else "pip-audit")[:128]


def run_pip_audit(
    *,
    skip_editable: bool = False,
    timeout: float = _TIMEOUT,
    extra: Sequence[str] = (),
    command: str | None = None,
) -> tuple[AuditRecordedPayload, bytes]:
    """Audit this environment with pip-audit (``command``, a shell-quoted command line, runs
    another one: the CLI passes ``STARTER_PIP_AUDIT``). Returns the payload and the report
    bytes. A run without a report is ``inconclusive``; a pip-audit that cannot be started at all
    is an error."""
    argv = _command(command)
    tool = _tool_version(argv)
    args = ["-f", "json", "--progress-spinner", "off", "--desc", "off", "--aliases", "on"]
    if skip_editable:
        args.append("--skip-editable")
    with tempfile.TemporaryDirectory(prefix="starter-audit-") as tmp:
        out = Path(tmp) / "report.json"
        try:
            proc = subprocess.run(
                [*argv, *args, *extra, "-o", str(out)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as e:
            raise InputRejectedError(
                f"cannot run pip-audit ({shlex.join(argv)}): {e.strerror}",
                hint=f"pip install pip-audit, or name the command in {COMMAND_ENV}",
            ) from None
        except subprocess.TimeoutExpired:
            return _failed(tool, f"pip-audit did not finish within {timeout:g} s"), b""
        except OSError as e:
            raise InputRejectedError(f"cannot run pip-audit: {e}") from None
        data = out.read_bytes() if out.is_file() else b""
    if not data.strip():
        tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-2:]
        why = " / ".join(tail) or "no output"
        return _failed(tool, f"pip-audit exited {proc.returncode} without a report: {why}"), data
    try:
        payload = parse_report(
            data, "written by pip-audit", tool=tool, source="run", skip_editable=skip_editable
        )
    except InputRejectedError as e:
        return _failed(tool, e.message), data
    return payload, data


def _failed(tool: str, reason: str) -> AuditRecordedPayload:
    return AuditRecordedPayload(
        status="inconclusive",
        tool=tool,
        source="run",
        report_sha256=hashlib.sha256(b"").hexdigest(),
        dependencies=0,
        skipped=[AuditSkipped(package=ALL, reason=reason[:1024])],
    )


# -- waivers and state -----------------------------------------------------------------------


def make_waiver(
    vuln_id: str, reason: str, expires: dt.datetime, now: dt.datetime, package: str | None = None
) -> AuditWaivedPayload:
    """A waiver payload; refuses an expiry that is not in the future."""
    if expires.tzinfo is None:
        raise InputRejectedError("the waiver's expiry needs a time zone")
    if expires <= now:
        raise InputRejectedError(
            f"the waiver's expiry {format_time(expires)} is not after now ({format_time(now)})",
            hint="give a future time, e.g. 30 days from now",
        )
    try:
        return AuditWaivedPayload(
            id=vuln_id, package=package, reason=reason, expires=format_time(expires)
        )
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        raise InputRejectedError(
            f"waiver field {'.'.join(map(str, err['loc']))} is invalid: {err['msg']}"
        ) from None


def waiver_covers(waiver: AuditWaivedPayload, finding: AuditFinding) -> bool:
    """Whether ``waiver`` names ``finding`` (by id or alias, and package when it has one);
    its expiry is not considered here."""
    if waiver.id != finding.id and waiver.id not in finding.aliases:
        return False
    return waiver.package is None or _canonical(waiver.package) == _canonical(finding.package)


def _active(waiver: AuditWaivedPayload, now: dt.datetime) -> bool:
    return format_time(now) < waiver.expires


def open_findings(
    audit: AuditRecordedPayload, waivers: Iterable[AuditWaivedPayload], now: dt.datetime
) -> list[AuditFinding]:
    """The findings of ``audit`` that no unexpired waiver covers at ``now``."""
    active = [w for w in waivers if _active(w, now)]
    return [f for f in audit.findings if not any(waiver_covers(w, f) for w in active)]


@dataclass(frozen=True)
class RecordedAudit:
    seq: int
    occurred_at: str
    payload: AuditRecordedPayload


@dataclass(frozen=True)
class RecordedWaiver:
    seq: int
    occurred_at: str
    payload: AuditWaivedPayload


@dataclass(frozen=True)
class AuditState:
    """The last audit and the waivers, as of ``now``."""

    now: str
    last: RecordedAudit | None
    open: list[AuditFinding] = field(default_factory=list)
    active_waivers: list[RecordedWaiver] = field(default_factory=list)
    expired_waivers: list[RecordedWaiver] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """A conclusive last audit with no open finding: the only state that is "clean"."""
        return self.last is not None and self.last.payload.status == "conclusive" and not self.open


def audit_state(ledger: Ledger, now: dt.datetime) -> AuditState:
    """Read every audit and waiver of the ledger and judge the last audit at ``now``."""
    last: RecordedAudit | None = None
    waivers: list[RecordedWaiver] = []
    for seq, entry in ledger.entries():
        env = entry.envelope
        if env.type == AUDIT_EVENT:
            last = RecordedAudit(
                seq, env.occurred_at, AuditRecordedPayload.model_validate(env.payload)
            )
        elif env.type == WAIVER_EVENT:
            waivers.append(
                RecordedWaiver(seq, env.occurred_at, AuditWaivedPayload.model_validate(env.payload))
            )
    payloads = [w.payload for w in waivers]
    return AuditState(
        now=format_time(now),
        last=last,
        open=open_findings(last.payload, payloads, now) if last else [],
        active_waivers=[w for w in waivers if _active(w.payload, now)],
        expired_waivers=[w for w in waivers if not _active(w.payload, now)],
    )
