"""`ledger verify` checks the release projection: versions and release tags only go up, and a tag
names only artifacts published for its version, with the same digest, before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import ORIGIN, make_signer
from starter_ledger import Ledger
from starter_ledger.verify import verify_from_checkpoint, verify_store

SIGNER = make_signer("release-verify")
SNAPSHOTS = {"openapi.json": "sha256:" + "0" * 64}
WHEEL = {"file": "starter_contracts-0.2.0-py3-none-any.whl", "sha256": "ab" * 32, "size": 10}


def _bump(new: str, old: str | None = None) -> tuple[str, dict[str, Any]]:
    part = "minor"
    return "version.bumped", {
        "old": old,
        "new": new,
        "pep440": new,
        "part": part,
        "snapshots": SNAPSHOTS,
    }


def _published(version: str = "0.2.0", sha256: str = WHEEL["sha256"]) -> tuple[str, dict[str, Any]]:
    return "artifact.published", {"version": version, **WHEEL, "sha256": sha256}


def _tagged(version: str = "0.2.0") -> tuple[str, dict[str, Any]]:
    return "release.tagged", {
        "version": version,
        "tag": f"v{version}",
        "commit": "c" * 40,
        "artifacts": [WHEEL],
        "checkpoint": "a checkpoint",
    }


def _ledger(tmp_path: Path, events: list[tuple[str, dict[str, Any]]]) -> Ledger:
    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    led.init(ORIGIN, SIGNER, "tester")
    for type_, payload in events:
        led.append(type_, payload, SIGNER, "tester")
    return led


def test_a_proper_release_history_verifies(tmp_path: Path) -> None:
    """Bump, publish, tag, bump again: verify passes."""
    with _ledger(
        tmp_path, [_bump("0.2.0"), _published(), _tagged(), _bump("0.3.0", "0.2.0")]
    ) as led:
        report = verify_store(led.store)
    assert report.ok, report.first_failure


@pytest.mark.parametrize(
    ("events", "seq", "words"),
    [
        ([_bump("0.2.0"), _tagged()], 2, "no earlier artifact.published"),
        ([_bump("0.2.0"), _published(sha256="cd" * 32), _tagged()], 3, "no earlier"),
        ([_bump("0.2.0"), _published(version="0.1.0"), _tagged()], 3, "no earlier"),
        ([_bump("0.2.0"), _bump("0.1.0", "0.2.0")], 2, "does not go above 0.2.0"),
        ([_bump("0.2.0"), _bump("0.2.0", "0.2.0")], 2, "does not go above 0.2.0"),
        (
            [_bump("0.2.0"), _published(), _tagged(), _published(), _tagged()],
            5,
            "does not go above 0.2.0",
        ),
    ],
    ids=[
        "tag-without-artifact",
        "other-digest",
        "other-version",
        "version-down",
        "version-again",
        "tag-twice",
    ],
)
def test_a_broken_release_history_fails_at_its_entry(
    tmp_path: Path, events: list[tuple[str, dict[str, Any]]], seq: int, words: str
) -> None:
    """A tag naming an unpublished artifact, or a version or tag that does not go up, fails
    verification with check release-projection at that entry."""
    with _ledger(tmp_path, events) as led:
        report = verify_store(led.store)
    assert not report.ok
    assert report.first_failure is not None
    assert (report.first_failure.seq, report.first_failure.check) == (seq, "release-projection")
    assert words in report.first_failure.message


def test_incremental_verification_does_not_misjudge_earlier_releases(tmp_path: Path) -> None:
    """From a trusted checkpoint taken after the artifact was published, a later tag still
    verifies (the release rules are a full verification's job)."""
    with _ledger(tmp_path, [_bump("0.2.0"), _published()]) as led:
        pin = led.latest_checkpoint()
        t, p = _tagged()
        led.append(t, p, SIGNER, "tester")
        report = verify_from_checkpoint(led.store, pin)
    assert report.ok, report.first_failure
