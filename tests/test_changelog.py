"""CHANGELOG.md as a projection of the ledger (Keep a Changelog 1.1.0), and the `changelog` and
`release list|show` commands: regenerating changes nothing, `check` catches drift, bad input
changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _keys_helpers import assert_error, follow, snapshot, staged
from starter_ledger import Ledger
from starter_ledger.changelog import check, read_header, render, write
from starter_ledger.keystore import open_keystore
from test_releases_projection import bumped, change, feed, frozen, note, tagged

HEADER = "# Changelog\n\nHand-written intro, kept as it is.\n"


def _history() -> list[tuple[str, dict[str, Any]]]:
    key = staged("a")
    return [
        ("changelog.added", note("Added", "Version bumps from the ledger")),
        ("key.staged", key),
        ("key.activated", follow("key.activated", key)),
        ("changelog.added", note("Fixed", "A   crash\non start")),
        ("version.bumped", bumped(None, "0.2.0")),
        ("release.tagged", tagged("0.2.0")),
        ("schema.frozen", frozen(change("field-removed", True), change("field-added", False))),
        ("changelog.added", note("Deprecated", "The old flag")),
    ]


def test_render_golden() -> None:
    """The file is the header, Unreleased, then each release newest first with its date; the
    categories in Keep a Changelog's order; each entry one line."""
    kid = staged("a")["kid"]
    expected = f"""# Changelog

Hand-written intro, kept as it is.

## [Unreleased]

### Changed

- Contracts: field-added in `Thing.schema.json /properties/a`

### Deprecated

- The old flag

### Removed

- Contracts: field-removed in `Thing.schema.json /properties/a`

## [0.2.0] - 2026-11-24

### Added

- Version bumps from the ledger

### Fixed

- A crash on start

### Security

- Token-signing key `{kid}` (EdDSA, key set default) activated
"""
    assert render(feed(_history()), HEADER) == expected


def test_empty_ledger_renders_an_empty_unreleased_slice() -> None:
    """With no events the file still has its header and an Unreleased heading."""
    assert render(feed([]), HEADER) == HEADER + "\n## [Unreleased]\n"


def test_write_twice_changes_nothing_and_keeps_the_header(tmp_path: Path) -> None:
    """`changelog write` keeps the file's title and intro, replaces the rest, and a second run
    changes no byte; `check` is empty then and shows a diff after a hand edit."""
    path = tmp_path / "CHANGELOG.md"
    path.write_text(HEADER + "\n## [Unreleased]\n\n### Added\n\n- hand-written\n")
    state = feed(_history())
    assert write(path, state) is True
    first = path.read_bytes()
    assert first.decode().startswith(HEADER)
    assert "hand-written" not in first.decode()
    assert write(path, state) is False
    assert path.read_bytes() == first
    assert check(path, state) == ""
    path.write_text(first.decode().replace("The old flag", "The old flag (edited)"))
    diff = check(path, state)
    assert "-- The old flag (edited)" in diff
    assert "+- The old flag" in diff


def test_missing_file_gets_the_default_header(tmp_path: Path) -> None:
    """A changelog that does not exist yet is created with the default header."""
    path = tmp_path / "CHANGELOG.md"
    assert read_header(path).startswith("# Changelog\n")
    write(path, feed([]))
    assert path.read_text().endswith("## [Unreleased]\n")


# -- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def ledger_db(tmp_path: Path, run_cli: Any) -> Path:
    assert run_cli("ledger", "init", "--origin", "example.com/test-ledger").code == 0
    return tmp_path / "ledger" / "ledger.db"


def _append(db: Path, events: list[tuple[str, dict[str, Any]]]) -> None:
    signer = open_keystore(f"file://{db.parent / 'keys' / 'signer.pem'}").load()
    with Ledger.open(f"sqlite:///{db}") as led:
        for type_, payload in events:
            led.append(type_, payload, signer, "tester")


def test_cli_add_write_check(ledger_db: Path, run_cli: Any, tmp_path: Path) -> None:
    """`changelog add` records an entry; `write` puts it in the file; `check` passes, then fails
    with a diff (exit 1) once the ledger has moved on."""
    added = run_cli("changelog", "add", "--category", "fixed", "Bad  input\tnow refused", "--json")
    assert added.code == 0, added.stderr
    assert json.loads(added.stdout)["category"] == "Fixed"
    assert run_cli("changelog", "write").code == 0
    text = (tmp_path / "CHANGELOG.md").read_text()
    assert "### Fixed\n\n- Bad input now refused\n" in text
    assert run_cli("changelog", "write").stdout.endswith("is up to date\n")
    assert run_cli("changelog", "check").code == 0
    assert run_cli("changelog", "add", "-c", "Security", "Pinned the signer").code == 0
    drift = run_cli("changelog", "check")
    assert drift.code == 1
    assert "+- Pinned the signer" in drift.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--category", "Improved", "text"], "unknown changelog category"),
        (["--category", "Added", "   "], "the changelog text is empty"),
        (["--category", "Added", "bell \x07 here"], "control characters"),
    ],
)
def test_cli_add_bad_input_changes_nothing(
    ledger_db: Path, run_cli: Any, args: list[str], says: str
) -> None:
    """An unknown category, empty text or control characters: one error, exit 3, ledger
    unchanged."""
    before = snapshot(ledger_db)
    assert_error(run_cli("changelog", "add", *args), 3, says)
    assert snapshot(ledger_db) == before


def test_cli_release_list_and_show(ledger_db: Path, run_cli: Any) -> None:
    """`release list` and `release show` answer from the ledger alone: version, date, commit,
    artifacts and the keys active when the release was tagged."""
    _append(ledger_db, _history())
    listed = run_cli("release", "list", "--json")
    assert listed.code == 0, listed.stderr
    out = json.loads(listed.stdout)
    assert out["current"] == "0.2.0"
    assert [r["version"] for r in out["releases"]] == ["0.2.0"]
    assert out["unreleased"] == 3
    shown = run_cli("release", "show", "0.2.0", "--json")
    release = json.loads(shown.stdout)
    assert release["commit"] == "a" * 40
    assert release["date"] == release["occurred_at"][:10]
    assert release["keys"] == [
        {"kid": staged("a")["kid"], "key_set": "default", "alg": "EdDSA"},
    ]
    assert release["artifacts"][0]["sha256"] == "1" * 64
    text = run_cli("release", "show", "v0.2.0")
    assert text.code == 0, text.stderr
    assert "commit    " + "a" * 40 in text.stdout
    assert "sbom      none recorded before the tag" in text.stdout


@pytest.mark.parametrize(
    ("version", "says"),
    [("1.2", "is not a SemVer 2.0 version"), ("9.9.9", "the ledger has no release 9.9.9")],
)
def test_cli_release_show_bad_version(
    ledger_db: Path, run_cli: Any, version: str, says: str
) -> None:
    """An invalid or unknown version: one error line, exit 3."""
    assert_error(run_cli("release", "show", version), 3, says)


def test_cli_corrupt_changelog_is_refused(ledger_db: Path, run_cli: Any, tmp_path: Path) -> None:
    """A changelog that is not UTF-8 or has no title is refused by name, and not overwritten."""
    path = tmp_path / "CHANGELOG.md"
    path.write_bytes(b"\xff\xfe not text")
    assert_error(run_cli("changelog", "write"), 3, "cannot read changelog")
    assert path.read_bytes() == b"\xff\xfe not text"
    path.write_text("no title\n")
    assert_error(run_cli("changelog", "check"), 3, "does not start with a '# ' title line")
