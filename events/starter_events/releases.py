"""The release projection: current version, releases and changelog, from the ledger's events.

For: ``ReleaseState``, fed entry by entry in ledger order (``apply(seq, occurred_at, type,
payload)``), which knows

- the current version (the ``new`` of the last ``version.bumped``; None before the first bump),
- every release (``release.tagged``) with the artifacts published for its version, the newest
  SBOM and dependency audit recorded before its tag, and the token-signing keys active then,
- the changelog: human entries (``changelog.added``), key activations, retirements and
  revocations (Security) and frozen schema changes (Changed, or Removed for breaking removals),
  each in the slice of the release that followed it or in Unreleased,
- the breaking schema freezes since the last release (and since the last bump), which decide
  whether a bump must be major.

Deterministic and pure: no I/O, no clock; the same events give the same state. Versions only go
up: a ``version.bumped`` or ``release.tagged`` whose version is not above the one before is not
applied but listed in ``problems`` (the ledger accepts any valid payload; only
``starter-cli release bump`` enforces the order). Not for: computing the next version or
writing files (``starter_ledger.versioning``, ``starter_ledger.changelog``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import semver
from pydantic import BaseModel, ValidationError

from starter_contracts.keys import KeyState
from starter_events.errors import KeyTransitionError
from starter_events.keyring import KeyRing
from starter_events.keys import KEY_EVENT_TYPES
from starter_events.release import (
    CHANGELOG_CATEGORIES,
    ArtifactPublishedPayload,
    ChangelogAddedPayload,
    ReleaseTaggedPayload,
    VersionBumpedPayload,
)
from starter_events.schemas import SchemaChange, SchemaFrozenPayload
from starter_events.supplychain import AuditRecordedPayload, SbomRecordedPayload

__all__ = [
    "RELEASE_EVENT_TYPES",
    "BreakingFreeze",
    "ChangelogItem",
    "Release",
    "ReleaseState",
    "project",
    "sort_items",
]

#: Event types the projection reads; every other type is ignored.
RELEASE_EVENT_TYPES = (
    "version.bumped",
    "changelog.added",
    "artifact.published",
    "release.tagged",
    "schema.frozen",
    "sbom.recorded",
    "audit.recorded",
    *KEY_EVENT_TYPES,
)
#: The payload model and the method that applies each (non-key) event type.
_HANDLERS: dict[str, tuple[type[BaseModel], str]] = {
    "version.bumped": (VersionBumpedPayload, "_bumped"),
    "changelog.added": (ChangelogAddedPayload, "_changelog"),
    "artifact.published": (ArtifactPublishedPayload, "_artifact"),
    "release.tagged": (ReleaseTaggedPayload, "_tagged"),
    "schema.frozen": (SchemaFrozenPayload, "_frozen"),
    "sbom.recorded": (SbomRecordedPayload, "_sbom_recorded"),
    "audit.recorded": (AuditRecordedPayload, "_audit_recorded"),
}
_KEY_LINES = {"key.activated": "activated", "key.retired": "retired", "key.revoked": "revoked"}


@dataclass(frozen=True, slots=True)
class ChangelogItem:
    """One line of a changelog slice: its category, its text and the entry it came from."""

    category: str
    text: str
    seq: int


@dataclass(frozen=True, slots=True)
class BreakingFreeze:
    """A ``schema.frozen`` entry with breaking changes: where, and its first breaking change."""

    seq: int
    change: SchemaChange

    def describe(self) -> str:
        where = f"{self.change.snapshot} {self.change.where}".strip()
        return f"{self.change.kind} in {where} ({self.change.detail}), frozen at entry {self.seq}"


@dataclass(frozen=True, slots=True)
class Release:
    """A tagged release and what the ledger said about it when it was tagged (and after, for
    artifacts published for its version)."""

    version: str
    tag: str
    commit: str
    seq: int
    occurred_at: str
    #: ``{file, sha256, size, repository}`` by file name: the tag's artifacts, plus every
    #: ``artifact.published`` for this version.
    artifacts: tuple[dict[str, Any], ...]
    #: The newest ``sbom.recorded`` before the tag (its payload and ``seq``), or None.
    sbom: dict[str, Any] | None
    #: The newest ``audit.recorded`` before the tag, summarised, or None.
    audit: dict[str, Any] | None
    #: ``{kid, key_set, alg}`` of every key active when the tag was recorded.
    keys: tuple[dict[str, str], ...]
    #: The changelog slice of this release.
    changes: tuple[ChangelogItem, ...]

    @property
    def date(self) -> str:
        return self.occurred_at[:10]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "tag": self.tag,
            "commit": self.commit,
            "seq": self.seq,
            "date": self.date,
            "occurred_at": self.occurred_at,
            "artifacts": [dict(a) for a in self.artifacts],
            "sbom": self.sbom,
            "audit": self.audit,
            "keys": [dict(k) for k in self.keys],
            "changes": [
                {"category": c.category, "text": c.text, "seq": c.seq} for c in self.changes
            ],
        }


def _parse(version: str) -> semver.Version | None:
    try:
        return semver.Version.parse(version)
    except ValueError:
        return None


@dataclass
class ReleaseState:
    """The projection. Feed every entry with ``apply``, in ledger order."""

    #: The newest version bumped to, or None before the first ``version.bumped``.
    current: str | None = None
    #: Entry of the last applied ``version.bumped``.
    bumped_seq: int | None = None
    #: Every version bumped to, in order (strictly increasing).
    versions: list[str] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    #: The changelog slice not yet released.
    unreleased: list[ChangelogItem] = field(default_factory=list)
    #: Breaking freezes after the last ``release.tagged`` (all of them before the first).
    breaking_since_release: list[BreakingFreeze] = field(default_factory=list)
    #: Breaking freezes after the last ``version.bumped``.
    breaking_since_bump: list[BreakingFreeze] = field(default_factory=list)
    #: Entries that were not applied, and why.
    problems: list[str] = field(default_factory=list)
    _keys: KeyRing = field(default_factory=KeyRing, repr=False)
    _published: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _sbom: dict[str, Any] | None = field(default=None, repr=False)
    _audit: dict[str, Any] | None = field(default=None, repr=False)

    # -- reading ---------------------------------------------------------------------------

    @property
    def last_release(self) -> Release | None:
        return self.releases[-1] if self.releases else None

    def release(self, version: str) -> Release | None:
        """The release of ``version``, with artifacts published since its tag."""
        for found in self.releases:
            if found.version == version:
                return self._with_published(found)
        return None

    def all_releases(self) -> list[Release]:
        """Every release, oldest first, with artifacts published since its tag."""
        return [self._with_published(r) for r in self.releases]

    def breaking_reference(self) -> tuple[str | None, list[BreakingFreeze]]:
        """The version a breaking change is measured against and the breaking freezes that
        count: the last release and the freezes since it; before any release, the current
        version and the freezes since the last bump."""
        if self.releases:
            return self.releases[-1].version, list(self.breaking_since_release)
        return self.current, list(self.breaking_since_bump)

    def _with_published(self, release: Release) -> Release:
        merged = {a["file"]: a for a in release.artifacts}
        for name, artifact in sorted(self._published.get(release.version, {}).items()):
            merged[name] = {**merged.get(name, {}), **artifact}
        artifacts = tuple(merged[n] for n in sorted(merged))
        if artifacts == release.artifacts:
            return release
        return Release(
            release.version,
            release.tag,
            release.commit,
            release.seq,
            release.occurred_at,
            artifacts,
            release.sbom,
            release.audit,
            release.keys,
            release.changes,
        )

    # -- applying ----------------------------------------------------------------------------

    def apply(self, seq: int, occurred_at: str, type_: str, payload: Mapping[str, Any]) -> None:
        """Apply one entry (any type; those the projection does not read are ignored)."""
        if type_ not in RELEASE_EVENT_TYPES:
            return
        if type_ in KEY_EVENT_TYPES:
            self._key(seq, type_, payload)
            return
        model, method = _HANDLERS[type_]
        try:
            parsed = model.model_validate(dict(payload))
        except ValidationError:
            self.problems.append(f"entry {seq}: {type_} payload is invalid; not applied")
            return
        getattr(self, method)(seq, occurred_at, parsed)

    def _key(self, seq: int, type_: str, payload: Mapping[str, Any]) -> None:
        try:
            record = self._keys.apply(type_, dict(payload), seq)
        except (KeyTransitionError, KeyError, TypeError, ValueError) as e:
            self.problems.append(f"entry {seq}: {type_} not applied: {e}")
            return
        verb = _KEY_LINES.get(type_)
        if verb is None:
            return
        text = f"Token-signing key `{record.kid}` ({record.alg}, key set {record.key_set}) {verb}"
        if type_ == "key.revoked" and record.reason:
            text += f": {' '.join(record.reason.split())}"
        self.unreleased.append(ChangelogItem("Security", text, seq))

    def _bumped(self, seq: int, _: str, p: VersionBumpedPayload) -> None:
        new = _parse(p.new)
        old = _parse(self.current) if self.current is not None else None
        if new is None or (old is not None and new <= old):
            self.problems.append(
                f"entry {seq}: version.bumped to {p.new} does not go above {self.current}; "
                "not applied"
            )
            return
        self.current = p.new
        self.bumped_seq = seq
        self.versions.append(p.new)
        self.breaking_since_bump = []

    def _changelog(self, seq: int, _: str, p: ChangelogAddedPayload) -> None:
        self.unreleased.append(ChangelogItem(p.category, " ".join(p.text.split()), seq))

    def _artifact(self, seq: int, _: str, p: ArtifactPublishedPayload) -> None:
        entry: dict[str, Any] = {"file": p.file, "sha256": p.sha256, "size": p.size}
        entry["repository"] = p.repository
        entry["published_seq"] = seq
        self._published.setdefault(p.version, {})[p.file] = entry

    def _tagged(self, seq: int, occurred_at: str, p: ReleaseTaggedPayload) -> None:
        new = _parse(p.version)
        last = self.last_release
        if new is None or (last is not None and new <= semver.Version.parse(last.version)):
            before = last.version if last is not None else None
            self.problems.append(
                f"entry {seq}: release.tagged {p.version} does not go above {before}; not applied"
            )
            return
        keys = tuple(
            {"kid": k.kid, "key_set": k.key_set, "alg": k.alg}
            for k in sorted(self._keys.records(), key=lambda k: (k.key_set, k.kid))
            if k.state is KeyState.ACTIVE
        )
        artifacts = tuple(
            {"file": a.file, "sha256": a.sha256, "size": a.size}
            for a in sorted(p.artifacts, key=lambda a: a.file)
        )
        self.releases.append(
            Release(
                version=p.version,
                tag=p.tag,
                commit=p.commit,
                seq=seq,
                occurred_at=occurred_at,
                artifacts=artifacts,
                sbom=self._sbom,
                audit=self._audit,
                keys=keys,
                changes=tuple(self.unreleased),
            )
        )
        self.unreleased = []
        self.breaking_since_release = []

    def _frozen(self, seq: int, _: str, p: SchemaFrozenPayload) -> None:
        for change in p.changes:
            where = f"{change.snapshot} {change.where}".strip()
            text = f"Contracts: {change.kind} in `{where}`"
            if change.detail:
                text += f": {' '.join(change.detail.split())}"
            if change.breaking and change.kind.endswith("-removed"):
                self.unreleased.append(ChangelogItem("Removed", text, seq))
            elif change.breaking:
                self.unreleased.append(ChangelogItem("Changed", f"**Breaking:** {text}", seq))
            else:
                self.unreleased.append(ChangelogItem("Changed", text, seq))
        first = next((c for c in p.changes if c.breaking), None)
        if first is not None:
            self.breaking_since_release.append(BreakingFreeze(seq, first))
            self.breaking_since_bump.append(BreakingFreeze(seq, first))

    def _sbom_recorded(self, seq: int, _: str, p: SbomRecordedPayload) -> None:
        self._sbom = {
            "seq": seq,
            "sha256": p.sha256,
            "spec_version": p.spec_version,
            "components": p.components,
            "subject": p.subject,
        }

    def _audit_recorded(self, seq: int, _: str, p: AuditRecordedPayload) -> None:
        self._audit = {
            "seq": seq,
            "status": p.status,
            "tool": p.tool,
            "dependencies": p.dependencies,
            "findings": len(p.findings),
            "skipped": len(p.skipped),
            "report_sha256": p.report_sha256,
        }


def sort_items(items: list[ChangelogItem]) -> dict[str, list[ChangelogItem]]:
    """Items grouped by category in Keep a Changelog's order (ledger order within each)."""
    return {c: [i for i in items if i.category == c] for c in CHANGELOG_CATEGORIES}


def project(entries: Iterable[tuple[int, str, str, Mapping[str, Any]]]) -> ReleaseState:
    """The projection of ``(seq, occurred_at, type, payload)`` tuples, in order."""
    state = ReleaseState()
    for seq, occurred_at, type_, payload in entries:
        state.apply(seq, occurred_at, type_, payload)
    return state
