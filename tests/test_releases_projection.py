"""The release projection (``starter_events.releases``): current version, releases, changelog
slices and breaking freezes, from events alone. Deterministic, and versions only go up."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from _keys_helpers import follow, staged
from starter_events import validate_payload
from starter_events.releases import ReleaseState, project
from starter_ledger.versioning import next_version, to_pep440

DIGEST = "sha256:" + "0" * 64
T = "2026-11-24T12:00:00.000Z"


def _valid(type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    return validate_payload(type_, 1, payload).model_dump(mode="json")


def bumped(old: str | None, new: str, part: str = "minor") -> dict[str, Any]:
    return _valid(
        "version.bumped",
        {
            "old": old,
            "new": new,
            "pep440": to_pep440(new),
            "part": part,
            "snapshots": {"openapi.json": DIGEST},
        },
    )


def tagged(version: str, commit: str = "a" * 40) -> dict[str, Any]:
    return _valid(
        "release.tagged",
        {
            "version": version,
            "tag": f"v{version}",
            "commit": commit,
            "artifacts": [
                {
                    "file": f"starter_contracts-{version}-py3-none-any.whl",
                    "sha256": "1" * 64,
                    "size": 9,
                }
            ],
            "checkpoint": "example.com/t\n3\nAAAA\n\n- sig\n",
        },
    )


def change(kind: str, breaking: bool, where: str = "/properties/a") -> dict[str, Any]:
    return {"kind": kind, "breaking": breaking, "snapshot": "Thing.schema.json", "where": where}


def frozen(*changes: dict[str, Any]) -> dict[str, Any]:
    return _valid(
        "schema.frozen",
        {
            "contracts_version": "0.1.0",
            "snapshots": {"Thing.schema.json": DIGEST},
            "changes": list(changes),
            "breaking": any(c["breaking"] for c in changes),
        },
    )


def note(category: str, text: str) -> dict[str, Any]:
    return _valid("changelog.added", {"category": category, "text": text})


def feed(events: list[tuple[str, dict[str, Any]]]) -> ReleaseState:
    return project((seq, T, type_, payload) for seq, (type_, payload) in enumerate(events))


def view(state: ReleaseState) -> dict[str, Any]:
    """Everything the projection answers, comparable."""
    return {
        "current": state.current,
        "versions": state.versions,
        "releases": [r.to_dict() for r in state.all_releases()],
        "unreleased": state.unreleased,
        "breaking": (state.breaking_since_release, state.breaking_since_bump),
        "problems": state.problems,
    }


def test_current_version_is_the_last_bump() -> None:
    """The current version is the newest version.bumped; None before the first."""
    assert feed([]).current is None
    state = feed(
        [("version.bumped", bumped(None, "0.2.0")), ("version.bumped", bumped("0.2.0", "0.3.0"))]
    )
    assert state.current == "0.3.0"
    assert state.versions == ["0.2.0", "0.3.0"]


def test_a_version_that_goes_down_is_not_applied() -> None:
    """A version.bumped to a lower or equal version (appended by hand) is a problem, not the
    current version."""
    state = feed(
        [
            ("version.bumped", bumped(None, "1.0.0")),
            ("version.bumped", bumped("1.0.0", "0.9.0")),
            ("version.bumped", bumped("1.0.0", "1.0.0")),
        ]
    )
    assert state.current == "1.0.0"
    assert len(state.problems) == 2
    assert "entry 1" in state.problems[0]


def test_release_slices_and_security_lines() -> None:
    """Each release holds the changelog since the previous one; key activations/revocations are
    Security lines, schema changes Changed (or Removed when breaking removals); the release
    records the keys active when it was tagged, the artifacts published for it, the SBOM and
    audit before it."""
    key_a = staged("a")
    events: list[tuple[str, dict[str, Any]]] = [
        ("key.staged", key_a),
        ("key.activated", follow("key.activated", key_a)),
        ("changelog.added", note("Added", "Bumps from the ledger")),
        ("schema.frozen", frozen(change("field-added", False))),
        ("version.bumped", bumped(None, "0.2.0")),
        ("release.tagged", tagged("0.2.0")),
        (
            "artifact.published",
            _valid(
                "artifact.published",
                {"version": "0.2.0", "file": "extra.tar.gz", "sha256": "2" * 64, "size": 3},
            ),
        ),
        ("schema.frozen", frozen(change("field-removed", True), change("type-changed", True))),
        ("key.revoked", follow("key.revoked", key_a, reason="leaked\nin CI")),
    ]
    state = feed(events)
    (release,) = state.all_releases()
    assert release.version == "0.2.0"
    assert release.date == "2026-11-24"
    assert [k["kid"] for k in release.keys] == [key_a["kid"]]
    assert [a["file"] for a in release.artifacts] == [
        "extra.tar.gz",
        "starter_contracts-0.2.0-py3-none-any.whl",
    ]
    assert release.sbom is None
    assert [(c.category, c.seq) for c in release.changes] == [
        ("Security", 1),
        ("Added", 2),
        ("Changed", 3),
    ]
    assert [(c.category, c.text) for c in state.unreleased] == [
        ("Removed", "Contracts: field-removed in `Thing.schema.json /properties/a`"),
        ("Changed", "**Breaking:** Contracts: type-changed in `Thing.schema.json /properties/a`"),
        (
            "Security",
            f"Token-signing key `{key_a['kid']}` (EdDSA, key set default) revoked: leaked in CI",
        ),
    ]
    reference, freezes = state.breaking_reference()
    assert reference == "0.2.0"
    assert [(f.seq, f.change.kind) for f in freezes] == [(7, "field-removed")]


def test_breaking_reference_before_any_release_is_the_last_bump() -> None:
    """Before the first release, only breaking freezes since the last bump count, against the
    current version."""
    state = feed(
        [
            ("schema.frozen", frozen(change("field-removed", True))),
            ("version.bumped", bumped(None, "0.2.0")),
        ]
    )
    assert state.breaking_reference() == ("0.2.0", [])
    assert len(state.breaking_since_release) == 1


# -- properties --------------------------------------------------------------------------------

_STEP = st.one_of(
    st.tuples(st.just("bump"), st.sampled_from(["major", "minor", "patch", "prerelease"])),
    st.tuples(st.just("note"), st.sampled_from(["Added", "Fixed", "Security"])),
    st.tuples(st.just("tag"), st.just("")),
    st.tuples(st.just("freeze"), st.sampled_from(["field-added", "field-removed"])),
    st.tuples(st.just("rogue"), st.sampled_from(["0.0.1", "1.0.0", "3.1.4-rc.1", "9.9.9"])),
)


def _events(steps: list[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """A plausible history: bumps computed from the current version, releases of the current
    version, and hand-appended ("rogue") bumps to arbitrary versions."""
    out: list[tuple[str, dict[str, Any]]] = []
    current: str | None = None
    for kind, arg in steps:
        if kind == "bump":
            new = next_version(current or "0.1.0", arg)
            out.append(("version.bumped", bumped(current, new, arg)))
            current = new
        elif kind == "note":
            out.append(("changelog.added", note(arg, f"{arg} line {len(out)}")))
        elif kind == "tag" and current is not None:
            out.append(("release.tagged", tagged(current)))
        elif kind == "freeze":
            out.append(("schema.frozen", frozen(change(arg, arg.endswith("removed")))))
        elif kind == "rogue":
            out.append(("version.bumped", bumped(current, arg)))
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(_STEP, max_size=30))
def test_projection_is_deterministic_and_versions_only_go_up(steps: list[tuple[str, str]]) -> None:
    """The same events give the same projection, and its versions and releases are strictly
    increasing whatever was appended."""
    import semver

    events = _events(steps)
    first, second = feed(events), feed(events)
    assert view(first) == view(second)
    versions = [semver.Version.parse(v) for v in first.versions]
    assert all(a < b for a, b in itertools.pairwise(versions))
    released = [semver.Version.parse(r.version) for r in first.releases]
    assert all(a < b for a, b in itertools.pairwise(released))
    assert first.current == (first.versions[-1] if first.versions else None)
    listed = [c.seq for r in first.releases for c in r.changes] + [c.seq for c in first.unreleased]
    assert listed == sorted(listed)
