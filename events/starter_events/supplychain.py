"""Supply-chain events: SBOMs, dependency audits and waivers.

For: the payload models of ``sbom.recorded`` (a CycloneDX SBOM stored content-addressed beside
the ledger, with its component diff against the previous one), ``audit.recorded`` (every finding
of a dependency audit; an audit that could not check everything is ``inconclusive``, never
"clean") and ``audit.waived`` (a finding accepted until an expiry). Not for: running the tools
(``starter_ledger.sbom``, ``starter_ledger.audit``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from starter_events._registry import register

__all__ = [
    "AuditFinding",
    "AuditRecordedPayload",
    "AuditRecordedPayloadV1",
    "AuditSkipped",
    "AuditWaivedPayload",
    "ComponentChange",
    "ComponentRef",
    "SbomDiff",
    "SbomRecordedPayload",
]

_HEX64 = r"^[0-9a-f]{64}$"
#: RFC 3339 UTC with milliseconds and ``Z`` (as the key events).
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
_NAME = Field(min_length=1, max_length=256)
_VERSION = Field(min_length=1, max_length=128)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ComponentRef(_Model):
    name: str = _NAME
    version: str = _VERSION


class ComponentChange(_Model):
    name: str = _NAME
    old: str = _VERSION
    new: str = _VERSION


class SbomDiff(_Model):
    """Components added, removed and changed against the previous SBOM (all added for the
    first), each list sorted by name."""

    added: list[ComponentRef] = Field(default_factory=list, max_length=10_000)
    removed: list[ComponentRef] = Field(default_factory=list, max_length=10_000)
    changed: list[ComponentChange] = Field(default_factory=list, max_length=10_000)


@register("sbom.recorded", 1, "records a CycloneDX SBOM stored beside the ledger")
class SbomRecordedPayload(_Model):
    """Payload of ``sbom.recorded`` v1."""

    #: SHA-256 (hex) of the SBOM file's bytes; the file is stored as ``sboms/<sha256>.cdx.json``.
    sha256: str = Field(pattern=_HEX64)
    spec_version: str = Field(pattern=r"^1\.[0-9]+$")
    components: int = Field(ge=0)
    #: What was described: ``environment`` or the file name of a wheel.
    subject: str = Field(min_length=1, max_length=256)
    diff: SbomDiff


class AuditFinding(_Model):
    """One known vulnerability of one installed package."""

    package: str = _NAME
    version: str = _VERSION
    id: str = Field(min_length=1, max_length=128)
    aliases: list[str] = Field(default_factory=list, max_length=64)
    fix_versions: list[str] = Field(default_factory=list, max_length=64)
    #: The advisory's severity when the source gives one (``low`` .. ``critical``), else None.
    severity: Literal["low", "medium", "high", "critical"] | None = None


class AuditSkipped(_Model):
    """A dependency the audit could not check, and why."""

    package: str = _NAME
    reason: str = Field(min_length=1, max_length=1024)


@register("audit.recorded", 1, "records a dependency audit and every finding")
class AuditRecordedPayloadV1(_Model):
    """Payload of ``audit.recorded`` v1. ``inconclusive`` when anything was skipped or the
    vulnerability service could not be reached: it never means "no vulnerabilities"."""

    status: Literal["conclusive", "inconclusive"]
    #: The tool and its version, e.g. ``pip-audit 2.10.1``.
    tool: str = Field(min_length=1, max_length=128)
    #: Where the findings came from: run now, or ingested from a pip-audit JSON file.
    source: Literal["run", "file"]
    #: SHA-256 (hex) of the pip-audit JSON the findings were read from.
    report_sha256: str = Field(pattern=_HEX64)
    dependencies: int = Field(ge=0)
    findings: list[AuditFinding] = Field(default_factory=list, max_length=10_000)
    skipped: list[AuditSkipped] = Field(default_factory=list, max_length=10_000)


@register("audit.recorded", 2, "records a dependency audit, every finding and what was left out")
class AuditRecordedPayload(AuditRecordedPayloadV1):
    """Payload of ``audit.recorded`` v2: v1 plus ``excluded``. A v1 payload reads as a v2 one
    that excluded nothing; a reader that knows only v1 refuses v2 by its schema version."""

    #: Dependencies left out on purpose (editable installs, with ``--skip-editable``): named
    #: here so that the record shows what a conclusive audit did not cover.
    excluded: list[AuditSkipped] = Field(default_factory=list, max_length=10_000)


@register("audit.waived", 1, "accepts one audit finding until an expiry")
class AuditWaivedPayload(_Model):
    """Payload of ``audit.waived`` v1: finding ``id`` (of ``package``, or of any package when
    None) is accepted until ``expires``; after that it counts again."""

    id: str = Field(min_length=1, max_length=128)
    package: str | None = Field(default=None, min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=1024)
    expires: str = Field(pattern=_TIME)
