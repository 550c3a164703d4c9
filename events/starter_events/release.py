"""Release events: version bumps, changelog entries, published artifacts and release tags.

For: the payload models of ``version.bumped``, ``changelog.added``, ``artifact.published`` and
``release.tagged``. The current version, the changelog and the list of releases are projections
of these events (``starter_events.releases``). Not for: computing versions or building artifacts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from starter_events._registry import register
from starter_events.schemas import check_snapshots

__all__ = [
    "CHANGELOG_CATEGORIES",
    "SEMVER",
    "ArtifactPublishedPayload",
    "ArtifactRef",
    "ChangelogAddedPayload",
    "ChangelogCategory",
    "ReleaseTaggedPayload",
    "VersionBumpedPayload",
]

#: SemVer 2.0 (semver.org's recommended regular expression, anchored).
SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
#: Keep a Changelog's categories, in its order.
ChangelogCategory = Literal["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"]
CHANGELOG_CATEGORIES: tuple[str, ...] = (
    "Added",
    "Changed",
    "Deprecated",
    "Removed",
    "Fixed",
    "Security",
)
_HEX64 = r"^[0-9a-f]{64}$"
_FILE = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}$"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@register("version.bumped", 1, "records a new version of the contracts and the OpenAPI document")
class VersionBumpedPayload(_Payload):
    """Payload of ``version.bumped`` v1: the version moved from ``old`` to ``new``."""

    #: The previous version (SemVer 2.0), or None for the first bump.
    old: str | None = Field(default=None, pattern=SEMVER)
    #: The new version (SemVer 2.0); never equal to or below ``old``.
    new: str = Field(pattern=SEMVER, max_length=128)
    #: The same version in PEP 440 form, as the wheel carries it.
    pep440: str = Field(min_length=1, max_length=128, pattern=r"^[0-9A-Za-z.+!-]+$")
    part: Literal["major", "minor", "patch", "prerelease"]
    #: Snapshot file name -> ``sha256:<hex>``: the contracts' schemas and the OpenAPI document
    #: at the new version.
    snapshots: dict[str, str] = Field(min_length=1, max_length=512)
    #: True when a breaking contracts change was frozen since the last release.
    breaking_since_release: bool = False

    _snapshots = field_validator("snapshots")(check_snapshots)


@register("changelog.added", 1, "records one human changelog entry")
class ChangelogAddedPayload(_Payload):
    """Payload of ``changelog.added`` v1: one line of the next release's changelog slice."""

    category: ChangelogCategory
    text: str = Field(min_length=1, max_length=2000)


class ArtifactRef(_Payload):
    """A built file, by name and content."""

    file: str = Field(pattern=_FILE)
    sha256: str = Field(pattern=_HEX64)
    size: int = Field(ge=0)


@register("artifact.published", 1, "records a built release artifact")
class ArtifactPublishedPayload(_Payload):
    """Payload of ``artifact.published`` v1: a file built for ``version``, and where it went."""

    version: str = Field(pattern=SEMVER, max_length=128)
    file: str = Field(pattern=_FILE)
    sha256: str = Field(pattern=_HEX64)
    size: int = Field(ge=0)
    #: The package index it was uploaded to (no credentials), or None when only built.
    repository: str | None = Field(default=None, max_length=1024)


@register("release.tagged", 1, "records a release tag and what it contains")
class ReleaseTaggedPayload(_Payload):
    """Payload of ``release.tagged`` v1: ``tag`` names ``commit`` and these artifacts."""

    version: str = Field(pattern=SEMVER, max_length=128)
    tag: str = Field(pattern=r"^v[0-9A-Za-z.+-]{1,128}$")
    #: The git commit the tag points at (40 or 64 hex digits).
    commit: str = Field(pattern=r"^([0-9a-f]{40}|[0-9a-f]{64})$")
    artifacts: list[ArtifactRef] = Field(min_length=1, max_length=64)
    #: The signed checkpoint of the ledger just before this entry (C2SP signed note).
    checkpoint: str = Field(min_length=1, max_length=8192)
