"""Release gates judged from facts alone (no I/O): every gate is reported, red or green, with the
severity rule (a finding without a severity counts as serious) and the key-health rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from _keys_helpers import DAY, T0, follow, staged
from starter_events.keyring import KeyRing
from starter_events.releases import ReleaseState
from starter_events.supplychain import AuditFinding, AuditRecordedPayload, SbomRecordedPayload
from starter_ledger.audit import AuditState, RecordedAudit
from starter_ledger.errors import InputRejectedError
from starter_ledger.gates import GATE_NAMES, GateFacts, evaluate, failed
from starter_ledger.sbom import RecordedSbom
from starter_ledger.verify import Failure, VerifyReport

WARN = 14 * DAY
HEX = "a" * 64
SNAPSHOTS = {"openapi.json": "sha256:" + "b" * 64}


def _ring(lifetime: dt.timedelta = 90 * DAY) -> KeyRing:
    ring = KeyRing()
    stage = staged("a", lifetime=lifetime)
    ring.apply("key.staged", stage, 1)
    ring.apply("key.activated", follow("key.activated", stage), 2)
    return ring


def _audit(seq: int, findings: list[AuditFinding], *, status: str = "conclusive") -> AuditState:
    payload = AuditRecordedPayload.model_validate(
        {
            "status": status,
            "tool": "pip-audit 2.10.1",
            "source": "file",
            "report_sha256": HEX,
            "dependencies": 3,
            "findings": [f.model_dump() for f in findings],
            "skipped": [{"package": "x", "reason": "no version"}] if status != "conclusive" else [],
        }
    )
    return AuditState(
        now="2026-11-24T12:00:00.000Z",
        last=RecordedAudit(seq, "2026-11-24T12:00:00.000Z", payload),
        open=list(findings),
    )


def _green() -> GateFacts:
    state = ReleaseState()
    state.apply(
        5,
        "2026-11-24T11:00:00.000Z",
        "version.bumped",
        {"new": "0.2.0", "pep440": "0.2.0", "part": "minor", "snapshots": SNAPSHOTS},
    )
    sbom = SbomRecordedPayload.model_validate(
        {
            "sha256": HEX,
            "spec_version": "1.6",
            "components": 1,
            "subject": "environment",
            "diff": {},
        }
    )
    return GateFacts(
        state=state,
        verify=VerifyReport(ok=True, size=9, root_hash=HEX, origin="o", source="memory://"),
        snapshots=_CheckOk(),  # type: ignore[arg-type]
        sboms=[RecordedSbom(6, "2026-11-24T11:30:00.000Z", sbom)],
        audit=_audit(7, []),
        keys=_ring(),
    )


@dataclasses.dataclass
class _CheckOk:
    """Stands for a passing ``CheckReport`` (the gate reads ``ok`` and ``folder``)."""

    ok: bool = True
    folder: Path = Path("contracts/snapshots")
    changed_files: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def _names(facts: GateFacts, *, threshold: str = "low") -> list[str]:
    return [g.name for g in failed(evaluate(facts, T0, min_severity=threshold, warn_within=WARN))]


def test_all_gates_green_are_reported_in_order() -> None:
    """With every fact in place each gate is reported, all green, in the documented order."""
    gates = evaluate(_green(), T0, min_severity="low", warn_within=WARN)
    assert [g.name for g in gates] == list(GATE_NAMES)
    assert all(g.ok for g in gates), gates


def test_every_failed_gate_is_listed_not_just_the_first() -> None:
    """A ledger that fails verification, an SBOM and audit from before the bump and no key:
    every one of those gates is red at once."""
    facts = dataclasses.replace(
        _green(),
        verify=VerifyReport(
            ok=False,
            size=9,
            root_hash=HEX,
            origin="o",
            source="memory://",
            first_failure=Failure(3, "signature", "bad signature"),
        ),
        sboms=[],
        audit=_audit(2, []),
        keys=KeyRing(),
        snapshots="no FROZEN.json in contracts/snapshots",
    )
    assert _names(facts) == [
        "ledger-verified",
        "contracts-frozen",
        "sbom-after-bump",
        "audit-conclusive-after-bump",
        "keys-healthy",
    ]


def test_no_bump_and_released_version_are_red() -> None:
    """Nothing to release before the first bump."""
    facts = dataclasses.replace(_green(), state=ReleaseState())
    assert "version-bumped" in _names(facts)


def test_inconclusive_audit_is_never_green() -> None:
    """An audit that skipped a dependency does not pass the audit gate."""
    facts = dataclasses.replace(_green(), audit=_audit(7, [], status="inconclusive"))
    assert _names(facts) == ["audit-conclusive-after-bump"]


@pytest.mark.parametrize(
    ("severity", "threshold", "blocks"),
    [
        ("low", "low", True),
        ("low", "high", False),
        ("high", "high", True),
        ("critical", "high", True),
        (None, "critical", True),
    ],
)
def test_open_findings_block_at_or_above_the_threshold(
    severity: str | None, threshold: str, blocks: bool
) -> None:
    """A finding blocks at or above the configured severity; one without a severity always."""
    finding = AuditFinding.model_validate(
        {"package": "idna", "version": "3.6", "id": "PYSEC-1", "severity": severity}
    )
    facts = dataclasses.replace(_green(), audit=_audit(7, [finding]))
    assert ("no-open-findings" in _names(facts, threshold=threshold)) is blocks


def test_a_key_expiring_within_the_window_is_unhealthy() -> None:
    """An active key that expires within the warning window, with no successor, is red."""
    facts = dataclasses.replace(_green(), keys=_ring(lifetime=3 * DAY))
    gates = evaluate(facts, T0, min_severity="low", warn_within=WARN)
    red = failed(gates)
    assert [g.name for g in red] == ["keys-healthy"]
    assert "expires" in red[0].detail


def test_unknown_severity_threshold_is_refused() -> None:
    """A misspelt threshold is an input error, not a silently open gate."""
    with pytest.raises(InputRejectedError, match="unknown severity"):
        evaluate(_green(), T0, min_severity="severe", warn_within=WARN)
