"""``starter-cli ledger ...`` end to end, in subprocesses, as a user or a CI job runs it.

Happy paths check the printed JSON against the library (proofs are re-verified with
``starter_ledger.merkle``); bad input checks the error contract: one ``error:`` line naming the
problem, an optional ``hint:`` line, the documented exit code, and a ledger left exactly as it was.
A CLI run costs ~0.7 s of imports, so ledgers a test only needs as a starting point are built
in-process with the library and the same deterministic key; the CLI runs the command under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from conftest import ORIGIN, CliResult, keyfile, make_signer
from starter_ledger import Ledger
from starter_ledger.clock import FixedClock
from starter_ledger.encoding import b64_encode
from starter_ledger.keys import public_key_bytes
from starter_ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from starter_ledger.note import parse_checkpoint, parse_note

Run = Callable[..., CliResult]

APPEND = ["ledger", "append", "--type", "note.recorded", "--payload", "-"]
GOOD = b'{"text": "hello"}'


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _json(result: CliResult) -> Any:
    assert result.code == 0, result
    return json.loads(result.stdout)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The ledger file that cli_env's STARTER_LEDGER_URL points at."""
    return tmp_path / "ledger" / "ledger.db"


@pytest.fixture
def genesis_key(tmp_path: Path, cli_env: dict[str, str]) -> str:
    """A deterministic signing key, made the CLI's default through STARTER_LEDGER_KEY."""
    url = keyfile(tmp_path, "genesis")
    cli_env["STARTER_LEDGER_KEY"] = url  # run_cli reads this same dict
    return url


class Lib:
    """The ledger at ``db`` seen through the library, for setup and for independent answers."""

    def __init__(self, db: Path, clock: FixedClock) -> None:
        self.url = f"sqlite:///{db}"
        self.clock = clock

    def init(self) -> dict[str, Any]:
        with Ledger.open(self.url, create=True, clock=self.clock) as led:
            result = led.init(ORIGIN, make_signer("genesis"), "tester")
        return {
            "kid": make_signer("genesis").kid,
            "genesis_sha256": hashlib.sha256(result.entries[0]).hexdigest(),
            "checkpoint": result.checkpoint,
        }

    def notes(self, *texts: str) -> None:
        with Ledger.open(self.url, clock=self.clock) as led:
            for text in texts:
                led.append("note.recorded", {"text": text}, make_signer("genesis"), "tester")

    def root(self, size: int | None = None) -> str:
        with Ledger.open(self.url) as led:
            return b64_encode(led.root(size))

    def entries(self) -> list[bytes]:
        with Ledger.open(self.url) as led:
            return [raw for _, raw in led.store.iter_entries()]

    def signers(self) -> list[str]:
        with Ledger.open(self.url) as led:
            return sorted(led.signer_set().authorised)


@pytest.fixture
def lib(db: Path, clock: FixedClock) -> Lib:
    return Lib(db, clock)


@pytest.fixture
def init(lib: Lib, genesis_key: str) -> dict[str, Any]:
    """An initialised ledger (genesis only), signed with the genesis key; returns its pins."""
    return lib.init()


# -- happy paths ---------------------------------------------------------------------------------


def test_init_reports_the_ledger(run_cli: Run, genesis_key: str, lib: Lib, db: Path) -> None:
    """init creates the ledger, signs genesis with the given key and prints its pin."""
    out = _json(run_cli("ledger", "init", "--origin", ORIGIN, "--description", "d", "--json"))
    assert out["origin"] == ORIGIN
    assert out["kid"] == make_signer("genesis").kid
    assert out["key"] == genesis_key
    assert out["key_created"] is False
    assert out["size"] == 1
    assert db.is_file()
    (genesis,) = lib.entries()
    assert out["genesis_sha256"] == hashlib.sha256(genesis).hexdigest()
    cp = parse_checkpoint(parse_note(out["checkpoint"]).text)
    assert (cp.origin, cp.size, cp.root_hash) == (ORIGIN, 1, lib.root())


def test_init_creates_a_private_key_when_none_is_given(run_cli: Run, db: Path) -> None:
    """Without --key, init creates a mode-0600 key beside the ledger and later commands use it."""
    out = _json(run_cli("ledger", "init", "--origin", ORIGIN, "--json"))
    key = db.parent / "keys" / "signer.pem"
    assert out["key_created"] is True
    assert out["key"] == f"file://{key}"
    assert key.stat().st_mode & 0o777 == 0o600
    assert _json(run_cli(*APPEND, "--json", input=GOOD))["size"] == 2


def test_append_from_file_and_stdin_then_show(
    run_cli: Run, init: dict[str, Any], lib: Lib, tmp_path: Path
) -> None:
    """Events are appended from a file or stdin and shown back with their verbatim entries."""
    payload_file = tmp_path / "payload.json"
    payload_file.write_text(json.dumps({"text": "from a file"}))
    first = _json(
        run_cli(
            "ledger", "append", "--type", "note.recorded", "--payload", str(payload_file), "--json"
        )
    )
    assert (first["seq"], first["size"], first["root_hash"]) == (1, 2, lib.root())
    assert first["checkpoint"].startswith(f"{ORIGIN}\n2\n{first['root_hash']}\n")
    text = run_cli(*APPEND, input=b'{"text": "from stdin"}')
    assert text.code == 0, text
    assert text.stdout == "appended note.recorded as entry 2; ledger size 3\n"

    shown = _json(run_cli("ledger", "show", "--json"))
    assert [e["seq"] for e in shown] == [0, 1, 2]
    assert [e["envelope"]["type"] for e in shown] == ["ledger.genesis", *["note.recorded"] * 2]
    assert [e["envelope"]["payload"] for e in shown[1:]] == [
        {"text": "from a file"},
        {"text": "from stdin"},
    ]
    assert [e["entry"].encode() for e in shown] == lib.entries()
    for e in shown:
        assert e["kid"] == init["kid"]
        assert e["envelope"]["actor"] == "tester"
        assert e["envelope"]["origin"] == ORIGIN
        assert _b64(e["leaf_hash"]) == leaf_hash(e["entry"].encode())
    table = run_cli("ledger", "show", "--from", "1", "--to", "1")
    assert table.code == 0, table
    assert "from a file" in table.stdout
    assert "from stdin" not in table.stdout


def test_checkpoint_and_verify(
    run_cli: Run, init: dict[str, Any], lib: Lib, tmp_path: Path
) -> None:
    """The latest checkpoint is printed and saved, and verify --json reports ok with exit 0."""
    lib.notes("one", "two")
    out = tmp_path / "cp.txt"
    cp = _json(run_cli("ledger", "checkpoint", "--out", str(out), "--json"))
    assert out.read_text() == cp["note"]
    assert (cp["origin"], cp["size"], cp["root_hash"]) == (ORIGIN, 3, lib.root())
    assert parse_note(cp["note"]).verify(
        ORIGIN, public_key_bytes(make_signer("genesis").public_jwk)
    )

    report = run_cli("ledger", "verify", "--json")
    assert report.code == 0, report
    doc = json.loads(report.stdout)
    assert doc["ok"] is True
    assert doc["size"] == 3
    assert doc["root_hash"] == cp["root_hash"]
    assert doc["origin"] == ORIGIN
    assert doc["entries_checked"] == 3
    assert doc["checkpoints_checked"] == 3
    assert doc["genesis_sha256"] == init["genesis_sha256"]
    assert doc["signers"] == [init["kid"]]
    assert doc["first_failure"] is None

    lib.notes("three")
    pinned = run_cli(
        "ledger", "verify", "--checkpoint", str(out), "--genesis", init["genesis_sha256"]
    )
    assert pinned.code == 0, pinned
    assert pinned.stdout.startswith("verified ")
    assert "size 4" in pinned.stdout


def test_proofs_verify_against_the_roots(run_cli: Run, init: dict[str, Any], lib: Lib) -> None:
    """Printed inclusion and consistency proofs verify against independently obtained roots."""
    lib.notes("a", "b", "c", "d")
    entries = lib.entries()
    root1 = parse_checkpoint(parse_note(init["checkpoint"]).text).root_hash
    root5 = lib.root()

    doc = _json(run_cli("ledger", "proof", "inclusion", "--index", "3", "--json"))
    assert (doc["leaf_index"], doc["tree_size"], doc["root_hash"]) == (3, 5, root5)
    assert _b64(doc["leaf_hash"]) == leaf_hash(entries[3])
    verify_inclusion(leaf_hash(entries[3]), 3, 5, [_b64(h) for h in doc["proof"]], _b64(root5))

    doc = _json(run_cli("ledger", "proof", "inclusion", "--index", "1", "--size", "3", "--json"))
    assert (doc["tree_size"], doc["root_hash"]) == (3, lib.root(3))
    verify_inclusion(
        leaf_hash(entries[1]), 1, 3, [_b64(h) for h in doc["proof"]], _b64(lib.root(3))
    )

    doc = _json(run_cli("ledger", "proof", "consistency", "--old", "1", "--json"))
    assert (doc["size1"], doc["size2"], doc["root1"], doc["root2"]) == (1, 5, root1, root5)
    verify_consistency(1, 5, [_b64(h) for h in doc["proof"]], _b64(root1), _b64(root5))

    text = run_cli("ledger", "proof", "consistency", "--old", "3", "--new", "4")
    assert text.code == 0, text
    lines = text.stdout.splitlines()
    assert lines[:4] == ["size1: 3", "size2: 4", f"root1: {lib.root(3)}", f"root2: {lib.root(4)}"]
    proof = [_b64(line.strip()) for line in lines[lines.index("proof:") + 1 :]]
    verify_consistency(3, 4, proof, _b64(lib.root(3)), _b64(lib.root(4)))


def test_export_and_verify_bundle(
    run_cli: Run, init: dict[str, Any], lib: Lib, tmp_path: Path
) -> None:
    """An exported bundle verifies offline with verify --bundle."""
    lib.notes("one")
    bundle = tmp_path / "export" / "bundle.jsonl"
    bundle.parent.mkdir()
    out = _json(run_cli("ledger", "export", "--out", str(bundle), "--json"))
    assert out == {"out": str(bundle), "entries": 2, "origin": ORIGIN}
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["bundle.jsonl"]
    report = run_cli(
        "ledger", "verify", "--bundle", str(bundle), "--genesis", init["genesis_sha256"], "--json"
    )
    assert report.code == 0, report
    doc = json.loads(report.stdout)
    assert (doc["ok"], doc["size"], doc["source"]) == (True, 2, str(bundle))
    assert doc["root_hash"] == lib.root()


def test_verify_from_checkpoint(
    run_cli: Run, init: dict[str, Any], lib: Lib, tmp_path: Path
) -> None:
    """verify --from-checkpoint checks only the entries appended since the saved checkpoint."""
    early = tmp_path / "early.txt"
    early.write_text(init["checkpoint"])
    lib.notes("one", "two")
    report = run_cli("ledger", "verify", "--from-checkpoint", str(early), "--json")
    assert report.code == 0, report
    doc = json.loads(report.stdout)
    assert doc["ok"] is True
    assert (doc["verified_from"], doc["entries_checked"], doc["size"]) == (1, 2, 3)
    plain = run_cli("ledger", "verify", "--from-checkpoint", str(early))
    assert plain.code == 0, plain
    assert "2 new entries since size 1" in plain.stdout


def test_signer_add_list_revoke(
    run_cli: Run, init: dict[str, Any], lib: Lib, tmp_path: Path
) -> None:
    """Signers are added with a proof of possession, listed, used, and revoked."""
    second = make_signer("second")
    second_key = keyfile(tmp_path, "second")
    added = _json(run_cli("ledger", "signer", "add", "--new-key", second_key, "--json"))
    assert added == {"seq": 1, "kid": second.kid, "key": second_key, "key_created": False}
    listed = _json(run_cli("ledger", "signer", "list", "--json"))
    assert listed == {"origin": ORIGIN, "size": 2, "signers": sorted([init["kid"], second.kid])}

    by_second = run_cli(*APPEND, "--key", second_key, "--json", input=GOOD)
    assert _json(by_second)["seq"] == 2
    revoked = _json(
        run_cli("ledger", "signer", "revoke", second.kid, "--reason", "rotated", "--json")
    )
    assert revoked == {"seq": 3, "kid": second.kid}
    plain = run_cli("ledger", "signer", "list")
    assert plain.stdout.split() == [init["kid"]]

    refused = run_cli(*APPEND, "--key", second_key, input=GOOD)
    _assert_error(refused, 4, "may not sign entry 4")
    assert lib.signers() == [init["kid"]]


def test_signer_add_creates_a_new_key(
    run_cli: Run, init: dict[str, Any], lib: Lib, tmp_path: Path
) -> None:
    """signer add with a key path that does not exist creates a 0600 key there."""
    path = tmp_path / "keys" / "fresh.pem"
    added = _json(run_cli("ledger", "signer", "add", "--new-key", f"file://{path}", "--json"))
    assert added["key_created"] is True
    assert path.stat().st_mode & 0o777 == 0o600
    assert lib.signers() == sorted([init["kid"], added["kid"]])


_COMMANDS = [
    [],
    ["ledger"],
    ["ledger", "init"],
    ["ledger", "append"],
    ["ledger", "show"],
    ["ledger", "verify"],
    ["ledger", "checkpoint"],
    ["ledger", "export"],
    ["ledger", "proof"],
    ["ledger", "proof", "inclusion"],
    ["ledger", "proof", "consistency"],
    ["ledger", "signer"],
    ["ledger", "signer", "list"],
    ["ledger", "signer", "add"],
    ["ledger", "signer", "revoke"],
]


@pytest.mark.parametrize("command", _COMMANDS, ids=lambda c: " ".join(c) or "starter-cli")
def test_help(run_cli: Run, command: list[str], tmp_path: Path) -> None:
    """Every command documents itself with --help and exits 0 without touching any ledger."""
    result = run_cli(*command, "--help")
    assert result.code == 0, result
    assert "Usage:" in result.stdout
    assert result.stderr == ""
    assert not (tmp_path / "ledger").exists()


# -- bad input -----------------------------------------------------------------------------------


def _assert_error(result: CliResult, code: int, says: str, hint: str | None = None) -> None:
    """Exactly one ``error:`` line naming the problem, at most one ``hint:`` line, exit ``code``."""
    assert result.code == code, result
    lines = result.stderr.splitlines()
    assert lines, result
    assert lines[0].startswith("error: "), result.stderr
    assert says in lines[0], result.stderr
    assert "internal error" not in lines[0]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), result.stderr
    if hint is not None:
        assert len(lines) == 2, result.stderr
        assert hint in lines[1], result.stderr
    assert result.stdout == ""


def _snapshot(db: Path) -> tuple[dict[str, str], list[str]]:
    """Raw file hashes of the ledger and all its SQLite side files, plus a full logical dump.

    Each run (CLI or library) closes its connection before it ends; when SQLite's last connection
    to a WAL database closes, it checkpoints the WAL into the main file and deletes the -wal and
    -shm files. So between commands the whole ledger lives in ledger.db, and hashing every
    ``ledger.db*`` file catches any write (a write left in a -wal file shows up as a new file).
    The logical dump (schema, triggers and every row) is taken from a copy in another folder, so
    reading it cannot itself change the files under test, and it makes a failure readable.
    """
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.parent.iterdir())
        if p.name.startswith(db.name)
    }
    with tempfile.TemporaryDirectory() as scratch:
        for name in files:
            shutil.copyfile(db.parent / name, Path(scratch) / name)
        with closing(sqlite3.connect(Path(scratch) / db.name)) as conn:
            dump = list(conn.iterdump())
    return files, dump


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage" / "ledger.db"
    path.parent.mkdir()
    path.write_bytes(hashlib.sha256(b"seed").digest() * 512)
    return path


def _loose_key(tmp_path: Path) -> str:
    url = keyfile(tmp_path, "loose")
    Path(url[len("file://") :]).chmod(0o644)
    return url


# (args built from tmp_path, stdin, exit code, text of the error line, text of the hint line)
_BAD: dict[str, tuple[Callable[[Path], list[str]], bytes, int, str, str | None]] = {
    "malformed-json": (lambda t: APPEND, b'{"text": ', 3, "payload is not valid JSON", "{"),
    "unknown-type": (
        lambda t: ["ledger", "append", "--type", "no.such.type", "--payload", "-"],
        GOOD,
        3,
        "unknown event type 'no.such.type'",
        "note.recorded (v1)",
    ),
    "schema-invalid": (lambda t: APPEND, b'{"text": 5}', 3, "text:", None),
    "too-large": (
        lambda t: [*APPEND, "--max-payload-bytes", "100"],
        json.dumps({"text": "x" * 200}).encode(),
        3,
        "over the limit of 100",
        "--max-payload-bytes",
    ),
    "unauthorised-key": (
        lambda t: [*APPEND, "--key", keyfile(t, "mallory")],
        GOOD,
        4,
        f"key {make_signer('mallory').kid} may not sign entry 2",
        "authorised signer",
    ),
    "missing-ledger": (
        lambda t: [*APPEND, "--ledger", f"sqlite:///{t / 'nowhere' / 'ledger.db'}"],
        GOOD,
        5,
        "no ledger at",
        "ledger init",
    ),
    "unreadable-ledger": (
        lambda t: [*APPEND, "--ledger", f"sqlite:///{_garbage(t)}"],
        GOOD,
        5,
        "cannot use the ledger",
        None,
    ),
    "key-mode-0644": (
        lambda t: [*APPEND, "--key", _loose_key(t)],
        GOOD,
        7,
        "readable by group or others",
        "chmod 600",
    ),
    "key-unknown-scheme": (
        lambda t: [*APPEND, "--key", "vault-transit://transit/keys/ledger"],
        GOOD,
        7,
        "unknown key store scheme 'vault-transit'",
        "known schemes: file://",
    ),
    "ledger-unknown-scheme": (
        lambda t: [*APPEND, "--ledger", "ftp://example.com/ledger"],
        GOOD,
        5,
        "unknown ledger URL scheme 'ftp'",
        "sqlite://",
    ),
    "revoke-last-signer": (
        lambda t: ["ledger", "signer", "revoke", make_signer("genesis").kid, "--reason", "x"],
        b"",
        3,
        "revokes the last authorised signer",
        None,
    ),
    "init-existing": (
        lambda t: ["ledger", "init", "--origin", ORIGIN],
        b"",
        8,
        "already has 2 entries",
        None,
    ),
}


@pytest.mark.parametrize("case", list(_BAD))
def test_bad_input_is_refused_and_ledger_unchanged(
    run_cli: Run, init: dict[str, Any], lib: Lib, db: Path, *, tmp_path: Path, case: str
) -> None:
    """Bad input fails with one clear error line and its exit code, and the ledger is untouched."""
    make_args, stdin, code, says, hint = _BAD[case]
    lib.notes("before")
    args = make_args(tmp_path)
    garbage = tmp_path / "garbage" / "ledger.db"
    garbage_before = garbage.read_bytes() if garbage.exists() else None
    before = _snapshot(db)
    result = run_cli(*args, input=stdin)
    _assert_error(result, code, says, hint)
    assert _snapshot(db) == before
    if garbage_before is not None:
        assert garbage.read_bytes() == garbage_before
        assert sorted(p.name for p in garbage.parent.iterdir()) == ["ledger.db"]
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "command",
    [APPEND, ["ledger", "show"], ["ledger", "verify"]],
    ids=lambda c: " ".join(c[1:2]),
)
def test_missing_ledger_is_reported_and_not_created(
    run_cli: Run, genesis_key: str, tmp_path: Path, command: list[str]
) -> None:
    """Commands on a missing ledger fail with exit 5 and create nothing."""
    result = run_cli(*command, input=GOOD)
    _assert_error(result, 5, "no ledger at", "ledger init")
    assert not (tmp_path / "ledger").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([*APPEND, "--max-payload-bytes", "0"], "--max-payload-bytes"),
        (["ledger", "append", "--payload", "-"], "--type"),
        (["ledger", "show", "--bogus"], "--bogus"),
        (["ledger", "bogus"], "bogus"),
    ],
    ids=["out-of-range", "missing-option", "unknown-option", "unknown-command"],
)
def test_usage_errors_exit_2(
    run_cli: Run, init: dict[str, Any], db: Path, args: list[str], says: str
) -> None:
    """A command-line mistake is a usage error (exit 2) naming the option, not an internal error."""
    before = _snapshot(db)
    result = run_cli(*args, input=GOOD)
    assert result.code == 2, result
    # Usage errors are rendered by typer (a usage line and an "Error" panel), not by the
    # StarterError boundary, so only their substance is checked here.
    assert "internal error" not in result.stderr
    assert result.stderr.startswith("Usage: starter-cli"), result.stderr
    assert "Error" in result.stderr
    assert says in result.stderr
    assert result.stdout == ""
    assert _snapshot(db) == before


# -- tampering -----------------------------------------------------------------------------------


def test_verify_detects_a_tampered_entry(
    run_cli: Run, init: dict[str, Any], lib: Lib, db: Path
) -> None:
    """An entry rewritten behind the ledger's back makes verify exit 1 naming entry and check."""
    lib.notes("one", "two")
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        triggers = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        ]
        assert "ledger_entries_no_update" in triggers
        for name in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        (raw,) = conn.execute("SELECT entry FROM ledger_entries WHERE seq = 1").fetchone()
        header, payload, sig = raw.split(b".")
        # Swap one base64url character in the middle of the signature: still canonical base64url
        # and 64 bytes, but no longer the signer's signature.
        i = len(sig) // 2
        swapped = b"B" if sig[i : i + 1] == b"A" else b"A"
        forged = b".".join([header, payload, sig[:i] + swapped + sig[i + 1 :]])
        conn.execute("UPDATE ledger_entries SET entry = ? WHERE seq = 1", (forged,))

    result = run_cli("ledger", "verify", "--json")
    assert result.code == 1, result
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    failure = doc["first_failure"]
    assert set(failure) == {"seq", "check", "message"}
    assert (failure["seq"], failure["check"]) == (1, "signature")
    assert "entry 1" in failure["message"]

    plain = run_cli("ledger", "verify")
    assert plain.code == 1
    assert plain.stderr.startswith("FAILED ")
    assert "entry 1: signature:" in plain.stderr


def test_cli_end_to_end_on_postgresql(run_cli, postgres_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same commands work against a PostgreSQL ledger, and init refuses to run twice."""
    args = ("--ledger", postgres_url)
    key = f"file://{tmp_path / 'pg-key.pem'}"
    assert run_cli("ledger", "init", "--origin", "example.com/pg", "--key", key, *args).code == 0
    appended = run_cli(
        "ledger",
        "append",
        "-t",
        "note.recorded",
        "-p",
        "-",
        "--key",
        key,
        *args,
        input=b'{"text": "on postgres"}',
    )
    assert appended.code == 0, appended
    again = run_cli("ledger", "init", "--origin", "example.com/pg", "--key", key, *args)
    assert again.code == 8, again
    verified = run_cli("ledger", "verify", "--json", *args)
    assert verified.code == 0, verified
    assert json.loads(verified.stdout)["size"] == 2
