"""``starter-cli release tag|check|allowed-signers``: a release is tagged only when every gate is
green, from the ledger alone; the tag is SSH-signed by the ledger key and verified by the real
``git tag -v``; refusals leave the ledger byte-identical; drift between git and the ledger is
reported.

Each test works in a temporary git repository holding a copy of ``contracts/`` (first on
PYTHONPATH, so the snapshot sources read that copy) and a ledger beside it, with git's global and
system configuration switched off and a fixed committer date, so the wheel is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from _keys_helpers import assert_error, snapshot
from conftest import DATA, ROOT, CliResult
from starter_ledger.gitsign import tag_message
from test_artifacts import Index, index  # noqa: F401  (the local pypiserver fixture)

PRINCIPAL = "release@example.com"
COMMIT_DATE = "2024-05-01T12:00:00+00:00"


def _git(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )


def _sbom(path: Path) -> Path:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "components": [{"type": "library", "name": "pydantic", "version": "2.9.0"}],
    }
    path.write_text(json.dumps(doc))
    return path


class Project:
    """A git clone with contracts/, a ledger beside it, and the CLI runner."""

    def __init__(self, tmp_path: Path, env: dict[str, str], run_cli: Any) -> None:
        self.tmp = tmp_path
        self.env = env
        self.run = run_cli
        self.repo = tmp_path / "repo"
        self.contracts = self.repo / "contracts"
        self.db = tmp_path / "ledger" / "ledger.db"
        self.dist = tmp_path / "dist"

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _git(self.repo, self.env, *args)

    def commit(self, message: str) -> None:
        assert self.git("add", "-A").returncode == 0
        done = self.git("commit", "-q", "-m", message)
        assert done.returncode == 0, done.stderr

    def cli(self, *args: str) -> CliResult:
        result: CliResult = self.run(*args)
        return result

    def tag(self, *args: str) -> CliResult:
        return self.cli("release", "tag", "--repo", str(self.repo), "--out", str(self.dist), *args)

    def make_green(self) -> None:
        """Record an SBOM and a clean audit after the bump, and an active token key."""
        sbom = self.cli("sbom", "record", "--from", str(_sbom(self.tmp / "env.cdx.json")))
        assert sbom.code == 0, sbom.stderr
        audit = self.cli("audit", "record", "--from", str(DATA / "pip-audit" / "clean.json"))
        assert audit.code == 0, audit.stderr
        keys = self.cli("keys", "rotate", "--activate-now")
        assert keys.code == 0, keys.stderr


@pytest.fixture
def project(tmp_path: Path, cli_env: dict[str, str], run_cli: Any) -> Project:
    """A committed copy of contracts/ bumped to 0.2.0 by the ledger; no SBOM, audit or key."""
    cli_env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        HOME=str(tmp_path),
        STARTER_RELEASE_PRINCIPAL=PRINCIPAL,
    )
    for who in ("AUTHOR", "COMMITTER"):
        cli_env[f"GIT_{who}_NAME"] = "Release Bot"
        cli_env[f"GIT_{who}_EMAIL"] = PRINCIPAL
        cli_env[f"GIT_{who}_DATE"] = COMMIT_DATE
    p = Project(tmp_path, cli_env, run_cli)
    p.repo.mkdir()
    shutil.copytree(
        ROOT / "contracts",
        p.contracts,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"),
    )
    (p.repo / ".gitignore").write_text("__pycache__/\n*.pyc\ndist/\n")
    cli_env["PYTHONPATH"] = str(p.contracts)
    assert p.git("init", "-q", "-b", "main").returncode == 0
    p.commit("contracts")
    assert p.cli("ledger", "init", "--origin", "example.com/test-ledger").code == 0
    bumped = p.cli(
        "release",
        "bump",
        "minor",
        "--version-file",
        str(p.contracts / "starter_contracts" / "_version.py"),
        "--snapshots",
        str(p.contracts / "snapshots"),
    )
    assert bumped.code == 0, bumped.stderr
    p.commit("release 0.2.0")
    return p


def test_red_gates_refuse_the_tag_listing_every_failed_gate(project: Project) -> None:
    """Without SBOM, audit and key after the bump: exit 3 naming each red gate, nothing
    recorded, no tag, no wheel; `release gates` shows the same gates and exits 1."""
    before = snapshot(project.db)
    result = project.tag()
    assert_error(result, 3, "release 0.2.0 is refused: 4 of 7 gates failed")
    for name in ("sbom-after-bump", "audit-conclusive-after-bump", "no-open-findings"):
        assert name in result.stderr
    assert "keys-healthy" in result.stderr
    assert snapshot(project.db) == before
    assert project.git("tag", "-l").stdout == ""
    assert not project.dist.exists()

    gates = project.cli("release", "gates", "--repo", str(project.repo), "--json")
    assert gates.code == 1, gates.stderr
    out = json.loads(gates.stdout)
    assert out["version"] == "0.2.0"
    assert [g["name"] for g in out["gates"] if not g["ok"]] == [
        "sbom-after-bump",
        "audit-conclusive-after-bump",
        "no-open-findings",
        "keys-healthy",
    ]


def test_green_gates_tag_a_signed_release_that_git_verifies(project: Project) -> None:
    """With every gate green the wheel is built and recorded, the tag carries the checkpoint and
    `git tag -v` accepts it with the printed allowed-signers line; tagging twice is refused and
    `release check` agrees with git."""
    project.make_green()
    gates = project.cli("release", "gates", "--repo", str(project.repo))
    assert gates.code == 0, gates.stdout + gates.stderr

    result = project.tag("--json")
    assert result.code == 0, result.stderr
    out = json.loads(result.stdout)
    head = project.git("rev-parse", "HEAD").stdout.strip()
    assert (out["version"], out["tag"], out["commit"], out["signed"]) == (
        "0.2.0",
        "v0.2.0",
        head,
        True,
    )
    wheel = project.dist / out["artifacts"][0]["file"]
    assert wheel.name == "starter_contracts-0.2.0-py3-none-any.whl"
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == out["artifacts"][0]["sha256"]

    shown = json.loads(project.cli("release", "show", "0.2.0", "--json").stdout)
    assert shown["commit"] == head
    assert shown["artifacts"][0]["sha256"] == out["artifacts"][0]["sha256"]

    signers = project.cli("release", "allowed-signers")
    assert signers.code == 0, signers.stderr
    assert signers.stdout.startswith(f'{PRINCIPAL} namespaces="git" ssh-ed25519 ')
    assert "PRIVATE" not in signers.stdout
    signers_file = project.tmp / "allowed_signers"
    signers_file.write_text(signers.stdout)
    verified = project.git(
        "-c", f"gpg.ssh.allowedSignersFile={signers_file}", "tag", "-v", "v0.2.0"
    )
    assert verified.returncode == 0, verified.stderr
    assert f'Good "git" signature for {PRINCIPAL}' in verified.stderr
    assert tag_message(project.repo, "v0.2.0").rstrip("\n") == out["checkpoint"].rstrip("\n")
    assert out["checkpoint"].startswith("example.com/test-ledger\n")

    checked = project.cli("release", "check", "--repo", str(project.repo))
    assert checked.code == 0, checked.stdout + checked.stderr
    verified_ledger = project.cli("ledger", "verify")
    assert verified_ledger.code == 0, verified_ledger.stdout + verified_ledger.stderr

    before = snapshot(project.db)
    assert_error(project.tag(), 3, "0.2.0 is tagged already")
    assert snapshot(project.db) == before


def test_release_check_reports_drift_and_a_rerun_finishes_a_crashed_tag(project: Project) -> None:
    """A tag the ledger does not know, a tag at another commit and a recorded release without
    its tag are drift (exit 1); `release tag` again only recreates the missing tag."""
    project.make_green()
    assert project.tag().code == 0
    check = ["release", "check", "--repo", str(project.repo), "--json"]

    assert project.git("tag", "v9.9.9").returncode == 0
    drift = project.cli(*check)
    assert drift.code == 1
    assert [(d["tag"], d["kind"]) for d in json.loads(drift.stdout)["drift"]] == [
        ("v9.9.9", "not-in-ledger")
    ]
    assert project.git("tag", "-d", "v9.9.9").returncode == 0

    # The crash between the append and the tag: the release is recorded, the tag is missing.
    assert project.git("tag", "-d", "v0.2.0").returncode == 0
    drift = project.cli(*check)
    assert drift.code == 1
    assert json.loads(drift.stdout)["drift"][0]["kind"] == "not-in-git"

    (project.repo / "NOTES").write_text("later\n")
    project.commit("later work")
    assert project.git("tag", "-a", "-m", "moved", "v0.2.0").returncode == 0
    drift = project.cli(*check)
    assert drift.code == 1
    assert json.loads(drift.stdout)["drift"][0]["kind"] == "other-commit"
    assert_error(project.tag(), 3, "0.2.0 is tagged already")
    assert project.git("tag", "-d", "v0.2.0").returncode == 0

    before = snapshot(project.db)
    resumed = project.tag("--json")
    assert resumed.code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed"] is True
    assert snapshot(project.db) == before
    assert project.cli(*check).code == 0


def test_missing_repository_is_refused_with_the_ledger_unchanged(project: Project) -> None:
    """`release tag` outside a git clone: one error, exit 3, nothing recorded."""
    project.make_green()
    before = snapshot(project.db)
    missing = project.cli("release", "tag", "--repo", str(project.tmp / "nowhere"))
    assert_error(missing, 3, "is not a git repository")
    assert snapshot(project.db) == before
    check = project.cli("release", "check", "--repo", str(project.tmp / "nowhere"))
    assert_error(check, 3, "is not a git repository")


def test_uncommitted_changes_are_refused(project: Project) -> None:
    """The wheel must be the commit's: a modified tracked file refuses the tag, ledger unchanged."""
    project.make_green()
    readme = project.contracts / "README.md"
    readme.write_text(readme.read_text() + "\nlocal edit\n")
    before = snapshot(project.db)
    assert_error(project.tag(), 3, "has uncommitted changes")
    assert snapshot(project.db) == before


def test_publish_checks_the_digest_uploads_and_records_the_repository(
    project: Project,
    index: Index,  # noqa: F811  (the fixture imported from test_artifacts)
) -> None:
    """`release publish` refuses a wheel whose SHA-256 is not the ledger's, uploads the tagged
    one to a real local index, records a second artifact.published with the repository, and
    refuses to publish the same file there twice (ledger unchanged)."""
    project.make_green()
    tagged = project.tag("--json")
    assert tagged.code == 0, tagged.stderr
    art = json.loads(tagged.stdout)["artifacts"][0]
    wheel = project.dist / art["file"]
    project.env.update(TWINE_USERNAME="release-bot", TWINE_PASSWORD=secrets.token_urlsafe(16))
    publish = ["release", "publish", "--repository", index.upload_url, "--out", str(project.dist)]

    good = wheel.read_bytes()
    wheel.write_bytes(good + b"\0")
    before = snapshot(project.db)
    assert_error(project.cli(*publish), 3, "it is not the tagged build")
    assert snapshot(project.db) == before
    wheel.write_bytes(good)

    done = project.cli(*publish, "--json")
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["repository"] == index.upload_url
    uploaded = index.packages / art["file"]
    assert hashlib.sha256(uploaded.read_bytes()).hexdigest() == art["sha256"]
    shown = json.loads(project.cli("release", "show", "0.2.0", "--json").stdout)
    assert shown["artifacts"][0]["repository"] == index.upload_url

    before = snapshot(project.db)
    assert_error(project.cli(*publish), 3, "is recorded as uploaded to")
    assert snapshot(project.db) == before
