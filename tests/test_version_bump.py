"""Version bumps: SemVer arithmetic, the PEP 440 form, the breaking-change rule, and
``starter-cli release bump`` writing the version file, re-freezing the snapshots and recording
``version.bumped`` (or refusing, with the ledger and the files unchanged)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _keys_helpers import assert_error, snapshot
from conftest import ROOT, CliResult, make_signer
from starter_ledger import Ledger
from starter_ledger.errors import InputRejectedError
from starter_ledger.freeze import check, freeze
from starter_ledger.storage import MemoryStore
from starter_ledger.versioning import (
    breaking_allows,
    bump,
    from_pep440,
    load_state,
    next_version,
    read_version_file,
    render_version_file,
    to_pep440,
)

SIGNER = make_signer("genesis")


@pytest.mark.parametrize(
    ("current", "part", "pre", "expected"),
    [
        ("1.2.3", "major", None, "2.0.0"),
        ("1.2.3", "minor", None, "1.3.0"),
        ("1.2.3", "patch", None, "1.2.4"),
        ("1.2.3", "prerelease", None, "1.2.4-rc.1"),
        ("1.2.4-rc.1", "prerelease", None, "1.2.4-rc.2"),
        ("1.2.4-rc.1", "prerelease", "rc", "1.2.4-rc.2"),
        ("1.2.4-alpha.3", "prerelease", "beta", "1.2.4-beta.1"),
        ("1.2.4-rc.2", "patch", None, "1.2.4"),
        ("1.3.0-rc.1", "minor", None, "1.3.0"),
        ("2.0.0-rc.1", "major", None, "2.0.0"),
        ("1.2.3", "major", "rc", "2.0.0-rc.1"),
        ("0.1.0", "minor", "alpha", "0.2.0-alpha.1"),
        ("0.1.0", "major", None, "1.0.0"),
    ],
)
def test_next_version(current: str, part: str, pre: str | None, expected: str) -> None:
    """Each part moves to the SemVer 2.0 version a user expects, pre-releases included."""
    assert next_version(current, part, pre) == expected


@pytest.mark.parametrize(
    ("semver", "pep440"),
    [
        ("1.2.4", "1.2.4"),
        ("1.2.4-rc.1", "1.2.4rc1"),
        ("0.3.0-alpha.2", "0.3.0a2"),
        ("3.0.0-beta.10", "3.0.0b10"),
    ],
)
def test_pep440_round_trip(semver: str, pep440: str) -> None:
    """The wheel's PEP 440 version and the SemVer version map both ways."""
    assert to_pep440(semver) == pep440
    assert from_pep440(pep440) == semver


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: next_version("1.2", "patch"), "not a SemVer"),
        (lambda: next_version("v1.2.3", "patch"), "not a SemVer"),
        (lambda: next_version("1.2.3", "huge"), "unknown version part"),
        (lambda: next_version("1.2.3", "prerelease", "dev"), "not supported"),
        (lambda: to_pep440("1.2.3-nightly.1"), "no PEP 440 form"),
        (lambda: to_pep440("1.2.3+build.5"), "build metadata"),
        (lambda: from_pep440("1.2"), "not a PEP 440 version"),
        (lambda: from_pep440("1.2.3.post1"), "not a PEP 440 version"),
    ],
)
def test_bad_versions_are_refused(call: Callable[[], object], says: str) -> None:
    """An invalid version, part or token is an input error (exit 3) naming it."""
    with pytest.raises(InputRejectedError, match=says):
        call()


@pytest.mark.parametrize(
    ("reference", "new", "allowed"),
    [
        ("1.2.3", "2.0.0", True),
        ("1.2.3", "1.3.0", False),
        ("1.2.3", "2.0.0-rc.1", True),
        ("0.2.0", "0.3.0", True),
        ("0.2.0", "0.2.1", False),
        ("0.2.0", "1.0.0", True),
    ],
)
def test_breaking_rule(reference: str, new: str, allowed: bool) -> None:
    """A breaking change needs a major bump, or a minor one before 1.0.0."""
    assert breaking_allows(reference, new) is allowed


# -- bump against a temporary version file and snapshot folder ---------------------------------


class Repo:
    """A temporary version file and snapshot folder, with a snapshot source that reads the
    version file (as the real OpenAPI source reads starter_contracts.__version__)."""

    def __init__(self, root: Path) -> None:
        self.version_file = root / "_version.py"
        self.version_file.write_bytes(render_version_file("0.1.0"))
        self.folder = root / "snapshots"
        self.folder.mkdir()
        self.properties: dict[str, Any] = {"a": {"type": "string"}, "b": {"type": "integer"}}
        self.ledger = Ledger(MemoryStore())
        self.ledger.init("example.com/test-ledger", SIGNER, "tester")

    def documents(self) -> dict[str, Any]:
        return {
            "Thing.schema.json": {"type": "object", "properties": dict(self.properties)},
            "openapi.json": {
                "openapi": "3.1.0",
                "info": {"title": "t", "version": read_version_file(self.version_file)},
                "paths": {},
            },
        }

    @property
    def sources(self) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        return [("test", self.documents)]

    def freeze(self) -> None:
        freeze(
            self.ledger,
            SIGNER,
            "tester",
            self.folder,
            contracts_version="0.1.0",
            sources=self.sources,
        )

    def bump(self, part: str, pre: str | None = None) -> Any:
        return bump(
            self.ledger,
            SIGNER,
            "tester",
            part,
            pre=pre,
            version_file=self.version_file,
            snapshots=self.folder,
            sources=self.sources,
        )

    def contents(self) -> tuple[Any, ...]:
        files = {p.name: p.read_bytes() for p in sorted(self.folder.iterdir())}
        entries = list(self.ledger.store.iter_entries())
        return entries, files, self.version_file.read_bytes()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path)
    r.freeze()
    return r


def test_first_bump_starts_from_the_version_file(repo: Repo) -> None:
    """The first bump starts from the version file (old = None), writes the new version, keeps
    the snapshots checked in and records their digests."""
    result = repo.bump("minor")
    assert (result.old, result.new, result.pep440) == (None, "0.2.0", "0.2.0")
    assert read_version_file(repo.version_file) == "0.2.0"
    assert check(repo.folder, sources=repo.sources).ok
    entry = repo.ledger.entry(result.seq).envelope
    assert entry.type == "version.bumped"
    assert entry.payload["snapshots"] == result.snapshots
    assert entry.payload["old"] is None
    second = repo.bump("prerelease")
    assert (second.old, second.new, second.pep440) == ("0.2.0", "0.2.1-rc.1", "0.2.1rc1")
    assert load_state(repo.ledger).versions == ["0.2.0", "0.2.1-rc.1"]


def test_breaking_change_needs_a_major_bump(repo: Repo) -> None:
    """After a breaking freeze, a patch bump is refused naming the change and its entry, with
    nothing written; a minor bump (before 1.0.0) goes through."""
    repo.bump("major")  # 1.0.0
    del repo.properties["b"]
    repo.freeze()
    breaking_seq = repo.ledger.size() - 1
    before = repo.contents()
    with pytest.raises(InputRejectedError) as refused:
        repo.bump("minor")
    assert "needs a major bump" in refused.value.message
    assert "field-removed in Thing.schema.json /properties/b" in refused.value.message
    assert f"frozen at entry {breaking_seq}" in refused.value.message
    assert repo.contents() == before
    assert repo.bump("major").new == "2.0.0"


def test_unfrozen_breaking_change_counts_too(repo: Repo) -> None:
    """A breaking change still waiting in the code (contracts check) also needs a major bump."""
    repo.bump("major")
    repo.properties["a"] = {"type": "integer"}
    before = repo.contents()
    with pytest.raises(InputRejectedError, match="not frozen yet"):
        repo.bump("patch")
    assert repo.contents() == before
    result = repo.bump("major")
    assert repo.ledger.entry(result.seq).envelope.payload["breaking_since_release"] is True


def test_hand_edited_version_file_is_refused(repo: Repo) -> None:
    """A version file that does not hold the ledger's current version is refused unchanged."""
    repo.bump("minor")
    repo.version_file.write_bytes(render_version_file("0.7.0"))
    before = repo.contents()
    with pytest.raises(
        InputRejectedError, match=r"says 0\.7\.0, but the ledger's current version is 0\.2\.0"
    ):
        repo.bump("patch")
    assert repo.contents() == before


def test_corrupt_version_file_is_refused(repo: Repo) -> None:
    """A version file without exactly one version line is refused, naming the file."""
    repo.version_file.write_text("__version__ = '0.1.0'\n")
    before = repo.contents()
    with pytest.raises(InputRejectedError, match="must hold exactly one line"):
        repo.bump("patch")
    assert repo.contents() == before


def test_interrupted_bump_is_finished_not_repeated(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the version file was written leaves it ahead of the ledger; the same bump
    again finishes the job without skipping a version."""
    repo.bump("minor")
    from starter_ledger import versioning

    real = Ledger.append

    def crash(self: Ledger, type_: str, *args: Any, **kwargs: Any) -> Any:
        if type_ == "version.bumped":
            raise KeyboardInterrupt
        return real(self, type_, *args, **kwargs)

    monkeypatch.setattr(Ledger, "append", crash)
    with pytest.raises(KeyboardInterrupt):
        repo.bump("minor")
    monkeypatch.setattr(Ledger, "append", real)
    assert read_version_file(repo.version_file) == "0.3.0"
    assert load_state(repo.ledger).current == "0.2.0"
    result = repo.bump("minor")
    assert (result.old, result.new, result.resumed) == ("0.2.0", "0.3.0", True)
    assert versioning.load_state(repo.ledger).versions == ["0.2.0", "0.3.0"]


def test_failed_freeze_restores_the_version_file(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the snapshot folder cannot be written, nothing is appended and the version file is
    put back."""
    import starter_ledger.freeze as freeze_module

    def refuse(*_: object) -> None:
        raise InputRejectedError("cannot write the snapshot folder (test)")

    monkeypatch.setattr(freeze_module, "stage", refuse)
    before = repo.contents()
    with pytest.raises(InputRejectedError, match="cannot write the snapshot folder"):
        repo.bump("minor")
    assert repo.contents() == before


# -- the CLI end to end ------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, cli_env: dict[str, str], run_cli: Any) -> dict[str, Any]:
    """A copy of the contracts package (first on PYTHONPATH, so the installed snapshot sources
    read its version file) and of the committed snapshots, and an initialised ledger."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "contracts" / "starter_contracts",
        src / "starter_contracts",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copytree(ROOT / "contracts" / "snapshots", tmp_path / "snapshots")
    cli_env["PYTHONPATH"] = str(src)
    cli_env["STARTER_SNAPSHOTS_DIR"] = str(tmp_path / "snapshots")
    assert run_cli("ledger", "init", "--origin", "example.com/test-ledger").code == 0
    version_file = src / "starter_contracts" / "_version.py"
    return {"version_file": version_file, "db": tmp_path / "ledger" / "ledger.db"}


def _bump(run_cli: Any, project: dict[str, Any], *args: str) -> CliResult:
    result: CliResult = run_cli(
        "release", "bump", *args, "--version-file", str(project["version_file"])
    )
    return result


def test_cli_bump_writes_the_version_and_keeps_contracts_check_green(
    project: dict[str, Any], run_cli: Any
) -> None:
    """`release bump minor` writes the version file, the OpenAPI snapshot carries the version,
    `contracts check` passes, and `release list` shows the current version."""
    import json

    result = _bump(run_cli, project, "minor", "--json")
    assert result.code == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["old"], out["new"], out["pep440"]) == (None, "0.2.0", "0.2.0")
    assert read_version_file(project["version_file"]) == "0.2.0"
    openapi = json.loads(
        (project["version_file"].parents[2] / "snapshots" / "openapi.json").read_text()
    )
    assert openapi["info"]["version"] == "0.2.0"
    checked = run_cli("contracts", "check")
    assert checked.code == 0, checked.stdout + checked.stderr
    listed = run_cli("release", "list", "--json")
    assert json.loads(listed.stdout)["current"] == "0.2.0"
    again = _bump(run_cli, project, "prerelease", "--pre", "beta")
    assert again.code == 0, again.stderr
    assert "0.2.0 -> 0.2.1-beta.1 (PEP 440 0.2.1b1)" in again.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["huge"], "unknown version part"),
        (["prerelease", "--pre", "nightly"], "not supported"),
    ],
)
def test_cli_bad_bump_changes_nothing(
    project: dict[str, Any], run_cli: Any, args: list[str], says: str
) -> None:
    """A bad part or token: one error line, exit 3, ledger and version file unchanged."""
    before = snapshot(project["db"]), project["version_file"].read_bytes()
    assert_error(_bump(run_cli, project, *args), 3, says)
    assert (snapshot(project["db"]), project["version_file"].read_bytes()) == before


def test_cli_corrupt_version_file_changes_nothing(project: dict[str, Any], run_cli: Any) -> None:
    """A corrupt version file: one error naming it, exit 3, ledger unchanged."""
    project["version_file"].write_text('__version__ = "one"\n')
    before = snapshot(project["db"])
    assert_error(_bump(run_cli, project, "patch"), 3, "not a PEP 440 version")
    assert snapshot(project["db"]) == before


def test_cli_refuses_a_version_file_the_code_does_not_read(
    project: dict[str, Any], run_cli: Any, tmp_path: Path
) -> None:
    """Bumping a version file other than the installed package's would freeze the wrong
    OpenAPI version: refused, exit 3."""
    other = tmp_path / "other_version.py"
    other.write_bytes(render_version_file("0.1.0"))
    before = snapshot(project["db"])
    result = run_cli("release", "bump", "minor", "--version-file", str(other))
    assert_error(result, 3, "is not the one the installed starter-contracts reads")
    assert snapshot(project["db"]) == before
