"""Dependency audits: pip-audit reports become ``audit.recorded``, waivers expire, and an audit
that could not check everything is never reported as clean.

pip-audit is never run against the network here: the runner is pointed (``STARTER_PIP_AUDIT``)
at a tiny fake that writes a canned report or fails like pip-audit without network. The fixture
reports in ``tests/data/pip-audit/`` follow pip-audit's JSON format (``pip_audit/_format/json.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI, ORIGIN, initialised_ledger_env, make_signer
from starter_events import validate_payload
from starter_events.supplychain import AuditFinding, AuditWaivedPayload
from starter_ledger import Ledger
from starter_ledger.audit import (
    audit_state,
    make_waiver,
    open_findings,
    parse_report,
    run_pip_audit,
    waiver_covers,
)
from starter_ledger.clock import FixedClock
from starter_ledger.errors import InputRejectedError
from starter_ledger.storage import MemoryStore
from starter_ledger.verify import verify_store

DATA = Path(__file__).resolve().parent / "data" / "pip-audit"
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_a_clean_report_is_conclusive() -> None:
    """A report where every dependency was checked and none is vulnerable is conclusive."""
    payload = parse_report(
        (DATA / "clean.json").read_bytes(), "clean.json", tool="pip-audit", source="file"
    )
    assert payload.status == "conclusive"
    assert payload.dependencies == 3
    assert payload.findings == []
    assert payload.skipped == []
    assert payload.report_sha256 == hashlib.sha256((DATA / "clean.json").read_bytes()).hexdigest()


def test_every_finding_is_recorded_with_aliases_and_fixes() -> None:
    """Each vulnerability of each package is one finding: package, version, id, aliases, fixes."""
    payload = parse_report(
        (DATA / "findings.json").read_bytes(), "findings.json", tool="pip-audit", source="file"
    )
    assert payload.status == "conclusive"
    assert [(f.package, f.version, f.id) for f in payload.findings] == [
        ("jinja2", "3.1.3", "GHSA-h75v-3vvj-5mfj"),
        ("requests", "2.31.0", "GHSA-9hjg-9r4m-mvj7"),
        ("requests", "2.31.0", "GHSA-9wx4-h78v-vm56"),
    ]
    assert payload.findings[0].aliases == ["CVE-2024-34064"]
    assert payload.findings[0].fix_versions == ["3.1.4"]
    assert payload.findings[0].severity is None
    # The payload is exactly what the event catalog accepts, and round-trips.
    dumped = payload.model_dump(mode="json")
    assert validate_payload("audit.recorded", 2, dumped).model_dump(mode="json") == dumped


def test_skipped_dependencies_make_the_audit_inconclusive() -> None:
    """A dependency pip-audit could not check makes the audit inconclusive, with the reason."""
    payload = parse_report(
        (DATA / "skipped.json").read_bytes(), "skipped.json", tool="pip-audit", source="file"
    )
    assert payload.status == "inconclusive"
    assert [s.package for s in payload.skipped] == ["starter-contracts", "starter-ledger"]
    assert "not found on PyPI" in payload.skipped[1].reason


def test_skip_editable_leaves_out_only_editable_installs() -> None:
    """--skip-editable drops the project's own editable installs, not other skipped packages."""
    payload = parse_report(
        (DATA / "skipped.json").read_bytes(),
        "skipped.json",
        tool="pip-audit",
        source="file",
        skip_editable=True,
    )
    assert [s.package for s in payload.skipped] == ["starter-ledger"]
    assert payload.status == "inconclusive"
    # What was left out on purpose is still named in the record, with pip-audit's reason.
    assert [(s.package, s.reason) for s in payload.excluded] == [
        ("starter-contracts", "distribution marked as editable")
    ]


def test_an_audit_without_the_flag_excludes_nothing() -> None:
    """Without --skip-editable nothing is left out: every skipped dependency counts."""
    payload = parse_report(
        (DATA / "skipped.json").read_bytes(), "skipped.json", tool="pip-audit", source="file"
    )
    assert payload.excluded == []


def test_an_audit_recorded_at_version_1_still_counts(tmp_path: Path) -> None:
    """An audit.recorded v1 entry (written before ``excluded`` existed) still verifies, and the
    audit state reads it as excluding nothing."""
    payload = parse_report(
        (DATA / "findings.json").read_bytes(), "findings.json", tool="pip-audit", source="file"
    ).model_dump(mode="json")
    del payload["excluded"]
    signer = make_signer("genesis")
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", create=True) as led:
        led.init(ORIGIN, signer, "tester")
        led.append("audit.recorded", payload, signer, "tester", schema_version=1)
        assert led.entry(1).envelope.schema_version == 1
        state = audit_state(led, NOW)
        assert state.last is not None
        assert state.last.payload.excluded == []
        assert len(state.open) == 3
        assert verify_store(led.store).ok


def test_a_report_with_no_dependency_is_inconclusive() -> None:
    """A report that checked nothing says nothing: inconclusive, not clean."""
    payload = parse_report(b'{"dependencies": [], "fixes": []}', "x", tool="t", source="file")
    assert payload.status == "inconclusive"
    assert payload.skipped[0].package == "*"


@pytest.mark.parametrize("name", ["corrupt.json", "wrong-shape.json"])
def test_a_corrupt_report_is_refused_naming_the_file(name: str) -> None:
    """A file that is not a pip-audit JSON report is an input error that names the file."""
    with pytest.raises(InputRejectedError, match=name):
        parse_report((DATA / name).read_bytes(), name, tool="pip-audit", source="file")


def _finding(fid: str, package: str = "requests", aliases: tuple[str, ...] = ()) -> AuditFinding:
    return AuditFinding(package=package, version="1.0", id=fid, aliases=list(aliases))


def test_a_waiver_covers_its_id_or_alias_and_its_package_only() -> None:
    """A waiver names a finding by id or alias; with a package it covers only that package."""
    finding = _finding("GHSA-1", aliases=("CVE-1",))
    expires = "2030-01-01T00:00:00.000Z"
    assert waiver_covers(AuditWaivedPayload(id="GHSA-1", reason="r", expires=expires), finding)
    assert waiver_covers(AuditWaivedPayload(id="CVE-1", reason="r", expires=expires), finding)
    same = AuditWaivedPayload(id="GHSA-1", package="Requests", reason="r", expires=expires)
    other = AuditWaivedPayload(id="GHSA-1", package="urllib3", reason="r", expires=expires)
    assert waiver_covers(same, finding)
    assert not waiver_covers(other, finding)
    assert not waiver_covers(AuditWaivedPayload(id="GHSA-2", reason="r", expires=expires), finding)


def test_an_expired_waiver_stops_covering_its_finding() -> None:
    """A finding is open again from the waiver's expiry on."""
    audit = parse_report(
        (DATA / "findings.json").read_bytes(), "f", tool="pip-audit", source="file"
    )
    waiver = make_waiver("CVE-2024-34064", "not reachable", NOW + dt.timedelta(days=30), NOW)
    assert waiver.expires == "2026-07-01T12:00:00.000Z"
    assert len(open_findings(audit, [waiver], NOW)) == 2
    at_expiry = NOW + dt.timedelta(days=30)
    assert len(open_findings(audit, [waiver], at_expiry - dt.timedelta(milliseconds=1))) == 2
    assert len(open_findings(audit, [waiver], at_expiry)) == 3


def test_a_waiver_must_expire_in_the_future() -> None:
    """An expiry that is not after now is refused: a waiver never starts out expired."""
    with pytest.raises(InputRejectedError, match="not after now"):
        make_waiver("GHSA-1", "r", NOW, NOW)
    with pytest.raises(InputRejectedError, match="reason"):
        make_waiver("GHSA-1", "", NOW + dt.timedelta(days=1), NOW)


def test_audit_state_reads_the_last_audit_and_every_waiver() -> None:
    """The state judges the last audit against the waivers active at the time asked."""
    led = Ledger(MemoryStore(), clock=FixedClock(NOW))
    signer = make_signer("genesis")
    led.init(ORIGIN, signer, "tester")
    audit = parse_report(
        (DATA / "findings.json").read_bytes(), "f", tool="pip-audit", source="file"
    )
    led.append("audit.recorded", audit.model_dump(mode="json"), signer, "tester")
    waiver = make_waiver("GHSA-9wx4-h78v-vm56", "r", NOW + dt.timedelta(days=1), NOW, "requests")
    led.append("audit.waived", waiver.model_dump(mode="json"), signer, "tester")
    state = audit_state(led, NOW)
    assert state.last is not None
    assert state.last.seq == 1
    assert [f.id for f in state.open] == ["GHSA-h75v-3vvj-5mfj", "GHSA-9hjg-9r4m-mvj7"]
    assert [w.seq for w in state.active_waivers] == [2]
    later = audit_state(led, NOW + dt.timedelta(days=2))
    assert len(later.open) == 3
    assert [w.seq for w in later.expired_waivers] == [2]
    assert not state.clean


# -- the runner, with a fake pip-audit ---------------------------------------------------------

_FAKE = """#!{python}
import sys
args = sys.argv[1:]
if args == ["--version"]:
    print("pip-audit 9.9.9")
    sys.exit(0)
mode = {mode!r}
if mode == "offline":
    sys.stderr.write("ConnectionError: Could not connect to PyPI's vulnerability feed\\n")
    sys.stderr.write("Tip: your network may be blocking this service.\\n")
    sys.exit(1)
out = args[args.index("-o") + 1]
with open(out, "w") as f:
    f.write(open({report!r}).read())
sys.exit(1 if "vulns\\": [{{" in open({report!r}).read() else 0)
"""


def fake_pip_audit(tmp_path: Path, mode: str, report: str = "clean.json") -> str:
    """A pip-audit stand-in: writes DATA/report to -o, or fails like pip-audit offline."""
    path = tmp_path / f"fake-pip-audit-{mode}"
    path.write_text(_FAKE.format(python=sys.executable, mode=mode, report=str(DATA / report)))
    path.chmod(0o755)
    return str(path)


def test_the_runner_records_what_pip_audit_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pip-audit run's JSON becomes the payload, with the tool's version and source "run"."""
    payload, data = run_pip_audit(command=fake_pip_audit(tmp_path, "ok", "findings.json"))
    assert data == (DATA / "findings.json").read_bytes()
    assert (payload.tool, payload.source, payload.status) == (
        "pip-audit 9.9.9",
        "run",
        "conclusive",
    )
    assert len(payload.findings) == 3


def test_no_network_is_inconclusive_never_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip-audit failing without a report (no network) gives an inconclusive audit with why."""
    payload, data = run_pip_audit(command=fake_pip_audit(tmp_path, "offline"))
    assert data == b""
    assert payload.status == "inconclusive"
    assert payload.findings == []
    assert payload.skipped[0].package == "*"
    assert "Could not connect" in payload.skipped[0].reason


def test_a_missing_pip_audit_is_an_error() -> None:
    """A pip-audit command that does not exist is a clear error, not an audit."""
    with pytest.raises(InputRejectedError, match="cannot run pip-audit"):
        run_pip_audit(command="/nonexistent/pip-audit")


# -- the CLI end to end ------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A CLI environment with an initialised SQLite ledger and its signing key."""
    return {**initialised_ledger_env(tmp_path, NOW), "STARTER_NOW": "2026-06-01T12:00:00Z"}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_cli_records_waives_and_reports_open_findings(env: dict[str, str]) -> None:
    """record --from, waive and status: a waived finding is not open; status exits 1 while
    anything is open."""
    rec = cli(env, "audit", "record", "--from", str(DATA / "findings.json"), "--json")
    assert rec.returncode == 0, rec.stderr
    assert len(json.loads(rec.stdout)["findings"]) == 3
    for fid in ("CVE-2024-34064", "GHSA-9wx4-h78v-vm56", "GHSA-9hjg-9r4m-mvj7"):
        waive = cli(env, "audit", "waive", fid, "--reason", "triaged", "--expires", "2026-07-01Z")
        assert waive.returncode == 3  # not an RFC 3339 time
        waive = cli(
            env, "audit", "waive", fid, "--reason", "triaged", "--expires", "2026-07-01T00:00:00Z"
        )
        assert waive.returncode == 0, waive.stderr
    status = cli(env, "audit", "status", "--json")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["clean"] is True
    env["STARTER_NOW"] = "2026-07-02T00:00:00Z"
    expired = cli(env, "audit", "status")
    assert expired.returncode == 1
    assert "expired waivers:" in expired.stdout
    assert "3 open" in expired.stdout


def test_cli_never_calls_an_inconclusive_audit_clean(env: dict[str, str], tmp_path: Path) -> None:
    """Offline, `audit record` records an inconclusive audit; status says so and exits 1."""
    env["STARTER_PIP_AUDIT"] = fake_pip_audit(tmp_path, "offline")
    rec = cli(env, "audit", "record")
    assert rec.returncode == 0, rec.stderr
    assert "INCONCLUSIVE" in rec.stdout
    status = cli(env, "audit", "status")
    assert status.returncode == 1
    assert "INCONCLUSIVE" in status.stdout
    assert "no known vulnerabilities" not in status.stdout.lower()
    assert "no vulnerabilities" not in status.stdout.lower()


def test_cli_names_what_skip_editable_left_out(env: dict[str, str]) -> None:
    """`audit record --skip-editable` says which editable installs it left out, and records
    them under ``excluded``; the other skipped package still makes the audit inconclusive."""
    args = ("audit", "record", "--from", str(DATA / "skipped.json"), "--skip-editable")
    rec = cli(env, *args)
    assert rec.returncode == 0, rec.stderr
    assert "left out (--skip-editable): starter-contracts" in rec.stdout
    assert "not checked: starter-ledger" in rec.stdout
    shown = cli(env, "ledger", "show", "--json")
    payload = json.loads(shown.stdout)[-1]["envelope"]["payload"]
    assert [e["package"] for e in payload["excluded"]] == ["starter-contracts"]
    assert payload["status"] == "inconclusive"


@pytest.mark.parametrize("name", ["corrupt.json", "wrong-shape.json", "missing.json"])
def test_cli_bad_report_leaves_the_ledger_unchanged(
    env: dict[str, str], tmp_path: Path, name: str
) -> None:
    """A corrupt or missing report: one error naming the file, exit 3, ledger byte-identical."""
    db = tmp_path / "ledger" / "ledger.db"
    before = db.read_bytes()
    rec = cli(env, "audit", "record", "--from", str(DATA / name))
    assert rec.returncode == 3
    assert rec.stderr.startswith("error: ")
    assert name in rec.stderr
    assert db.read_bytes() == before


def test_cli_refuses_a_waiver_that_has_expired_already(env: dict[str, str], tmp_path: Path) -> None:
    """An expiry in the past (by STARTER_NOW) is refused and nothing is appended."""
    db = tmp_path / "ledger" / "ledger.db"
    before = db.read_bytes()
    out = cli(env, "audit", "waive", "GHSA-1", "--reason", "r", "--expires", "2026-05-01T00:00:00Z")
    assert out.returncode == 3
    assert "not after now" in out.stderr
    assert db.read_bytes() == before
