"""The scripted release (``just release-demo``) runs end to end: bump and freeze, SBOM and audit,
gates, a signed tag, publishing to a local index, the changelog and verification."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_the_release_demo_runs_end_to_end() -> None:
    """A release manager's whole run succeeds on a copy, and each step reports what it proved."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "release_demo.py")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for step in (
        "release bump minor",
        "release gates: all 7 green",
        "git tag -v: good SSH signature",
        "pip download gives the ledger's sha256",
        "changelog write",
        "release check: git tags and the ledger agree",
        "ledger verify:",
        "release demo passed",
    ):
        assert step in proc.stdout, (step, proc.stdout)
