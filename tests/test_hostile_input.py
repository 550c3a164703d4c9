"""Hostile and damaged input: verification reports instead of crashing, refused commands leave
nothing behind, and terminal output cannot be hijacked."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ORIGIN, keyfile, make_signer
from starter_ledger import Ledger, verify_bundle, verify_from_checkpoint, verify_store
from starter_ledger.bundle import BundleSource, export_bundle
from starter_ledger.storage._schema import APPEND_ONLY_TABLES


def _ledger(path: Path, notes: int = 5) -> Ledger:
    led = Ledger.open(f"sqlite:///{path}", create=True)
    led.init(ORIGIN, make_signer("genesis"), "tester")
    for i in range(notes):
        led.append("note.recorded", {"text": f"note {i}"}, make_signer("genesis"), "tester")
    return led


def _attack(path: Path, sql: str, params: tuple[object, ...]) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for table in APPEND_ONLY_TABLES:
            for op in ("update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        conn.execute(sql, params)
        conn.commit()


@pytest.mark.parametrize(
    "line",
    [
        '{"entry":"x","seq":' + "9" * 5000 + "}",
        "[" * 100_000 + "]" * 100_000,
        '{"entry":"a.b.c","entry":"a.b.c","seq":1}',
        '{"checkpoint":"o\\n' + "9" * 5000 + '\\nx\\n"}',
    ],
    ids=["huge-integer", "deep-nesting", "duplicate-member", "huge-checkpoint-size"],
)
def test_hostile_bundle_lines_give_a_report_not_a_crash(tmp_path: Path, line: str) -> None:
    """A bundle crafted to break the JSON parser fails verification with a named check."""
    with _ledger(tmp_path / "l.db") as led:
        export_bundle(led.store, tmp_path / "b.jsonl", origin=ORIGIN)
    lines = (tmp_path / "b.jsonl").read_text().splitlines()
    (tmp_path / "bad.jsonl").write_text("\n".join([*lines[:2], line, *lines[2:]]) + "\n")
    report = verify_bundle(BundleSource(tmp_path / "bad.jsonl"))
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.check in {"entry-format", "checkpoint", "seq"}


@pytest.mark.parametrize(
    "payload",
    [b'{"a":' + b"9" * 5000 + b"}", b"[" * 100_000 + b"]" * 100_000],
    ids=["huge-integer", "deep-nesting"],
)
def test_hostile_stored_entry_gives_a_report_not_a_crash(tmp_path: Path, payload: bytes) -> None:
    """An entry whose JWS payload breaks the JSON parser is reported at its seq."""
    import base64

    path = tmp_path / "l.db"
    _ledger(path).close()
    b64 = base64.urlsafe_b64encode(payload).rstrip(b"=")
    header = b"eyJhbGciOiJFZERTQSJ9"
    _attack(
        path, "UPDATE ledger_entries SET entry = ? WHERE seq = 3", (header + b"." + b64 + b".AA",)
    )
    with Ledger.open(f"sqlite:///{path}") as led:
        report = verify_store(led.store, jobs=1)
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.seq == 3


def test_sparse_seq_fails_fast_instead_of_hanging(tmp_path: Path) -> None:
    """A row planted at a huge seq is reported as a missing entry within seconds."""
    path = tmp_path / "l.db"
    _ledger(path).close()
    _attack(
        path,
        "INSERT INTO ledger_entries VALUES (?, ?, ?, ?, NULL)",
        (10**15, b"x.y.z", "note.recorded", b""),
    )
    code = (
        "import sys; from starter_ledger import Ledger, verify_store\n"
        f"led = Ledger.open('sqlite:///{path}')\n"
        "r = verify_store(led.store)\n"
        "print(r.first_failure.check, r.first_failure.seq)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["seq", "6"]


def test_tampered_interior_tree_nodes_are_named(tmp_path: Path) -> None:
    """Stored tree nodes that proofs are built from must match the recomputed tree."""
    path = tmp_path / "l.db"
    _ledger(path).close()
    _attack(path, "UPDATE ledger_entries SET nodes = ? WHERE seq = 1", (b"\x00" * 64,))
    with Ledger.open(f"sqlite:///{path}") as led:
        report = verify_store(led.store)
    assert not report.ok
    assert report.first_failure is not None
    assert (report.first_failure.seq, report.first_failure.check) == (1, "tree-nodes")


def test_incremental_verify_checks_the_stored_newest_checkpoint(tmp_path: Path) -> None:
    """With nothing new since the pin, a forged stored newest checkpoint still fails."""
    path = tmp_path / "l.db"
    with _ledger(path) as led:
        trusted = led.latest_checkpoint()
        size = led.size()
    forged = trusted[:-10] + ("A" if trusted[-10] != "A" else "B") + trusted[-9:]
    _attack(path, "UPDATE ledger_entries SET checkpoint = ? WHERE seq = ?", (forged, size - 1))
    with Ledger.open(f"sqlite:///{path}") as led:
        report = verify_from_checkpoint(led.store, trusted)
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.check == "checkpoint"


def test_refused_init_leaves_no_files(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An init refused for a bad actor creates neither the database nor a key."""
    result = run_cli("ledger", "init", "--origin", ORIGIN, "--actor", "a\nb")
    assert result.code == 3, result
    assert result.stderr.startswith("error: actor")
    assert not (tmp_path / "ledger").exists() or not any((tmp_path / "ledger").rglob("*"))


def test_refused_signer_add_leaves_no_new_key(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Adding a signer with an unauthorised key is refused before the new key is created."""
    assert run_cli("ledger", "init", "--origin", ORIGIN).code == 0
    outsider = keyfile(tmp_path, "outsider")
    new = tmp_path / "new.pem"
    result = run_cli("ledger", "signer", "add", "--new-key", f"file://{new}", "--key", outsider)
    assert result.code == 4, result
    assert not new.exists()


def test_read_command_leaves_an_empty_file_untouched(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Pointing verify at an empty file refuses it and does not turn it into a database."""
    empty = tmp_path / "empty.db"
    empty.touch()
    result = run_cli("ledger", "verify", "--ledger", f"sqlite:///{empty}")
    assert result.code == 5, result
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("empty")) == ["empty.db"]


def test_checkpoint_pin_with_crlf_line_ends_is_accepted(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A pin committed through git with CRLF line ends still pins the ledger."""
    assert run_cli("ledger", "init", "--origin", ORIGIN).code == 0
    saved = tmp_path / "cp.txt"
    assert run_cli("ledger", "checkpoint", "--out", str(saved)).code == 0
    saved.write_bytes(saved.read_bytes().replace(b"\n", b"\r\n"))
    result = run_cli("ledger", "verify", "--checkpoint", str(saved))
    assert result.code == 0, result


def test_show_escapes_terminal_control_characters(run_cli) -> None:  # type: ignore[no-untyped-def]
    """An actor or payload carrying escape sequences cannot drive the operator's terminal."""
    assert run_cli("ledger", "init", "--origin", ORIGIN).code == 0
    evil = "x\x1b]0;pwned\x07"
    appended = run_cli(
        "ledger",
        "append",
        "--type",
        "note.recorded",
        "--payload",
        "-",
        "--actor",
        evil,
        input=b'{"text": "\\u001b[2J"}',
    )
    assert appended.code == 0, appended
    shown = run_cli("ledger", "show")
    assert shown.code == 0
    assert "\x1b" not in shown.stdout
    assert "\\x1b" in shown.stdout  # shown, escaped
