"""Release gates: may the ledger's current version be tagged?

For: ``evaluate``, which judges facts already read from the ledger and the snapshot folder and
returns every gate with its outcome (``Gate(name, ok, detail)``), never stopping at the first red
one, and ``collect``, which reads those facts (``ledger verify``, ``contracts check`` against the
ledger, the SBOMs, the audit and its waivers, the token-signing keys). The gates, in order:

- ``version-bumped``: the ledger has a current version that is not released yet;
- ``ledger-verified``: ``ledger verify`` passes on the whole store;
- ``contracts-frozen``: the code, the committed snapshots and ``FROZEN.json`` agree, and
  ``FROZEN.json`` is the ledger's newest ``schema.frozen``;
- ``sbom-after-bump``: an ``sbom.recorded`` entry comes after the last ``version.bumped``;
- ``audit-conclusive-after-bump``: the last ``audit.recorded`` comes after the bump and is
  ``conclusive``;
- ``no-open-findings``: that audit has no finding at or above ``min_severity`` that an unexpired
  waiver does not cover. A finding without a severity (pip-audit gives none) counts as at or
  above any threshold: unknown is treated as serious;
- ``keys-healthy``: at least one token-signing key set exists, and every key set has an active
  key that does not expire within ``warn_within`` unless a successor is staged to follow it
  (``KeyRing.warnings``, the same rule as ``keys tick``).

A red gate is a value, not an exception. Not for: tagging (``release_tag``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starter_events.keyring import KeyRing

if TYPE_CHECKING:
    from starter_events.releases import ReleaseState
    from starter_ledger.audit import AuditState
    from starter_ledger.freeze import CheckReport, Source
    from starter_ledger.ledger import Ledger
    from starter_ledger.sbom import RecordedSbom
    from starter_ledger.verify import VerifyReport

__all__ = ["GATE_NAMES", "SEVERITIES", "Gate", "GateFacts", "collect", "evaluate", "failed"]

#: Severities from lowest to highest; a finding at or above the threshold blocks a release.
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
GATE_NAMES: tuple[str, ...] = (
    "version-bumped",
    "ledger-verified",
    "contracts-frozen",
    "sbom-after-bump",
    "audit-conclusive-after-bump",
    "no-open-findings",
    "keys-healthy",
)


@dataclass(frozen=True, slots=True)
class Gate:
    """One gate: its name, whether it passed, and why (what to do when it did not)."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class GateFacts:
    """Everything the gates judge, read once from the ledger and the snapshot folder."""

    state: ReleaseState
    verify: VerifyReport
    #: ``contracts check`` against the ledger, or the error that stopped it (a missing folder).
    snapshots: CheckReport | str
    sboms: Sequence[RecordedSbom]
    audit: AuditState
    keys: KeyRing


def failed(gates: Sequence[Gate]) -> list[Gate]:
    """The red gates."""
    return [g for g in gates if not g.ok]


def _at_or_above(severity: str | None, threshold: str) -> bool:
    if severity is None:
        return True  # unknown counts as serious
    return SEVERITIES.index(severity) >= SEVERITIES.index(threshold)


def evaluate(
    facts: GateFacts, now: dt.datetime, *, min_severity: str, warn_within: dt.timedelta
) -> list[Gate]:
    """Every gate for the current version of ``facts.state``, in ``GATE_NAMES`` order."""
    if min_severity not in SEVERITIES:
        from starter_ledger.errors import InputRejectedError

        raise InputRejectedError(
            f"unknown severity {min_severity!r}", hint=f"use one of {', '.join(SEVERITIES)}"
        )
    state = facts.state
    bumped = state.bumped_seq
    gates = [_version_gate(state)]

    report = facts.verify
    if report.ok:
        gates.append(Gate("ledger-verified", True, f"{report.size} entries verified"))
    else:
        why = report.first_failure
        text = f"entry {why.seq}: {why.check}: {why.message}" if why else "verification failed"
        gates.append(Gate("ledger-verified", False, f"{text}; run 'starter-cli ledger verify'"))

    gates.append(_snapshots_gate(facts.snapshots))

    after = [s for s in facts.sboms if bumped is not None and s.seq > bumped]
    if after:
        last = after[-1]
        gates.append(
            Gate(
                "sbom-after-bump",
                True,
                f"sha256:{last.payload.sha256[:12]} ({last.payload.subject}) at entry {last.seq}",
            )
        )
    else:
        gates.append(
            Gate(
                "sbom-after-bump",
                False,
                f"no SBOM recorded after the bump (entry {bumped}); run 'starter-cli sbom record'",
            )
        )

    audit = facts.audit.last
    if audit is None or bumped is None or audit.seq < bumped:
        where = "no audit recorded" if audit is None else f"the last audit is entry {audit.seq}"
        gates.append(
            Gate(
                "audit-conclusive-after-bump",
                False,
                f"{where}, not after the bump (entry {bumped}); run 'starter-cli audit record'",
            )
        )
    elif audit.payload.status != "conclusive":
        gates.append(
            Gate(
                "audit-conclusive-after-bump",
                False,
                f"the audit at entry {audit.seq} is inconclusive ({len(audit.payload.skipped)} "
                "skipped); audit again when everything can be checked",
            )
        )
    else:
        gates.append(
            Gate("audit-conclusive-after-bump", True, f"conclusive audit at entry {audit.seq}")
        )

    if audit is None:
        gates.append(Gate("no-open-findings", False, "no audit recorded"))
    else:
        blocking = [f for f in facts.audit.open if _at_or_above(f.severity, min_severity)]
        if blocking:
            shown = ", ".join(
                f"{f.id} in {f.package} {f.version} ({f.severity or 'unknown'})"
                for f in blocking[:5]
            )
            more = f" and {len(blocking) - 5} more" if len(blocking) > 5 else ""
            gates.append(
                Gate(
                    "no-open-findings",
                    False,
                    f"{len(blocking)} open findings at or above {min_severity}: {shown}{more}; "
                    "upgrade, or 'starter-cli audit waive'",
                )
            )
        else:
            gates.append(
                Gate("no-open-findings", True, f"no unwaived finding at or above {min_severity}")
            )

    gates.append(_keys_gate(facts.keys, now, warn_within))
    return gates


def _version_gate(state: ReleaseState) -> Gate:
    if state.current is None:
        return Gate(
            "version-bumped", False, "no version.bumped yet; run 'starter-cli release bump'"
        )
    if state.release(state.current) is not None:
        return Gate(
            "version-bumped",
            False,
            f"{state.current} is released already; run 'starter-cli release bump'",
        )
    return Gate("version-bumped", True, f"{state.current} (entry {state.bumped_seq})")


def _snapshots_gate(report: CheckReport | str) -> Gate:
    if isinstance(report, str):
        return Gate("contracts-frozen", False, report)
    if report.ok:
        return Gate("contracts-frozen", True, f"{report.folder} matches the last schema.frozen")
    reasons = list(report.problems)
    if report.changed_files:
        reasons.insert(0, f"{len(report.changed_files)} snapshot files differ from the code")
    return Gate(
        "contracts-frozen",
        False,
        f"{'; '.join(reasons)}; run 'starter-cli contracts check --ledger ...'",
    )


def _keys_gate(ring: KeyRing, now: dt.datetime, warn_within: dt.timedelta) -> Gate:
    if not ring.key_sets():
        return Gate(
            "keys-healthy",
            False,
            "no token-signing key; run 'starter-cli keys rotate --activate-now'",
        )
    warnings = ring.warnings(now, warn_within)
    if warnings:
        return Gate("keys-healthy", False, "; ".join(warnings))
    active = ", ".join(
        f"{k.kid} ({k.key_set}) until {k.not_after}"
        for k in (ring.active(s) for s in ring.key_sets())
        if k is not None
    )
    return Gate("keys-healthy", True, f"active: {active}")


def collect(
    ledger: Ledger,
    snapshots: Path,
    now: dt.datetime,
    *,
    sources: Sequence[Source] | None = None,
) -> GateFacts:
    """Read the facts the gates judge: the release projection, ``ledger verify``, ``contracts
    check`` of ``snapshots`` against the ledger, the SBOMs, the audit and the key ring."""
    from starter_ledger.audit import audit_state
    from starter_ledger.errors import InputRejectedError
    from starter_ledger.freeze import check
    from starter_ledger.sbom import recorded_sboms
    from starter_ledger.verify import verify_store
    from starter_ledger.versioning import load_state

    report = verify_store(ledger.store, now=now)
    checked: CheckReport | str
    try:
        checked = check(snapshots, ledger=ledger, sources=sources)
    except InputRejectedError as e:
        checked = e.message
    return GateFacts(
        state=load_state(ledger),
        verify=report,
        snapshots=checked,
        sboms=recorded_sboms(ledger),
        audit=audit_state(ledger, now),
        keys=ledger.key_ring(),
    )
