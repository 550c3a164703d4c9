"""The schema freeze: ``contracts freeze`` records the snapshots in the ledger, ``contracts check``
catches every drift in CI.

The library (``starter_ledger.freeze``) runs with injected snapshot sources built from two versions
of a pydantic model; the CLI runs in-process with the installed entry points replaced by the same
sources, and once in a subprocess against the real entry points (contracts and backend). Bad input
must fail naming the file and the command that regenerates it, with the ledger untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from conftest import ORIGIN, make_signer
from starter_events import SchemaFrozenPayload
from starter_ledger import Ledger, verify_store
from starter_ledger import freeze as freeze_mod
from starter_ledger.clock import FixedClock
from starter_ledger.encoding import b64_encode, b64url_decode, b64url_encode
from starter_ledger.entry import decode_entry, encode_entry
from starter_ledger.errors import InputRejectedError
from starter_ledger.freeze import FROZEN_FILE, REGENERATE, Source, check, freeze, render
from starter_ledger.keys import Ed25519Signer
from starter_ledger.keystore import FileKeyStore
from starter_ledger.merkle import leaf_hash
from starter_ledger.storage import MemoryStore

VERSION = "0.1.0"


class ReleaseV1(BaseModel):
    """A release (version 1)."""

    model_config = ConfigDict(title="Release")

    name: str = Field(max_length=64)
    size: int
    channel: Literal["stable", "beta"] = "stable"


class ReleaseV2(BaseModel):
    """A release (version 2): ``size`` is a string, ``owner`` is required, ``beta`` is gone."""

    model_config = ConfigDict(title="Release")

    name: str = Field(max_length=64)
    size: str
    channel: Literal["stable"] = "stable"
    owner: str


class ReleaseV1Plus(ReleaseV1):
    """Version 1 and an optional field: a compatible change."""

    model_config = ConfigDict(title="Release")

    note: str | None = None


class Checksum(BaseModel):
    """A second model, to have a snapshot to drop."""

    sha256: str


def source(*models: type[BaseModel], label: str = "test (tests.models)") -> Source:
    def produce() -> dict[str, Any]:
        return {
            f"{m.model_config.get('title') or m.__name__}.schema.json": m.model_json_schema()
            for m in models
        }

    return label, produce


V1 = [source(ReleaseV1)]
V2 = [source(ReleaseV2)]


@pytest.fixture
def signer() -> Ed25519Signer:
    return make_signer("genesis")


@pytest.fixture
def led(signer: Ed25519Signer, clock: FixedClock) -> Iterator[Ledger]:
    """An in-memory ledger holding its genesis entry."""
    ledger = Ledger(MemoryStore(), clock=clock)
    ledger.init(ORIGIN, signer, "tester")
    yield ledger
    ledger.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "contracts" / "snapshots"


def do_freeze(led: Ledger, signer: Ed25519Signer, folder: Path, sources: list[Source]) -> Any:
    return freeze(led, signer, "tester", folder, contracts_version=VERSION, sources=sources)


def record(folder: Path) -> dict[str, Any]:
    return json.loads((folder / FROZEN_FILE).read_text())


def write_record(folder: Path, doc: dict[str, Any]) -> None:
    (folder / FROZEN_FILE).write_bytes(render(doc))


# -- freeze and check ---------------------------------------------------------------------------


def test_freeze_then_check_passes(led: Ledger, signer: Ed25519Signer, folder: Path) -> None:
    """A first freeze writes canonical snapshots and a record that verifies offline, and the
    schema.frozen entry passes ``ledger verify``."""
    result = do_freeze(led, signer, folder, V1)
    assert result.appended
    assert (result.seq, result.changes, result.breaking) == (1, [], False)
    assert sorted(p.name for p in folder.iterdir()) == [FROZEN_FILE, "Release.schema.json"]
    data = (folder / "Release.schema.json").read_bytes()
    assert data == render(ReleaseV1.model_json_schema())
    report = check(folder, sources=V1)
    assert report.ok, report.problems
    assert (report.record.seq, report.record.signer_kid, report.record.trusted) == (
        1,
        signer.kid,
        None,
    )
    assert report.record.payload is not None
    assert report.record.payload.contracts_version == VERSION
    assert verify_store(led.store).ok


def test_freeze_twice_appends_nothing(led: Ledger, signer: Ed25519Signer, folder: Path) -> None:
    """Freezing unchanged code again appends nothing and rewrites nothing."""
    do_freeze(led, signer, folder, V1)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = do_freeze(led, signer, folder, V1)
    assert (again.appended, again.seq, led.size()) == (False, 1, 2)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_changed_model_fails_check_until_frozen(
    led: Ledger, signer: Ed25519Signer, folder: Path
) -> None:
    """Changing a model without freezing fails the check with the classified breaking changes and
    a diff; freezing records them in the event, and the check passes again."""
    do_freeze(led, signer, folder, V1)
    report = check(folder, sources=V2)
    assert not report.ok
    assert report.breaking
    assert report.problems == []  # the record still matches the (old) files
    assert report.changed_files == ["Release.schema.json"]
    assert {(c.kind, c.where) for c in report.changes} == {
        ("type-changed", "/properties/size"),
        ("required-added", "/properties/owner"),
        ("enum-value-removed", "/properties/channel"),
    }
    assert '-      "type": "integer"' in report.unified_diff
    assert '+      "type": "string"' in report.unified_diff

    result = do_freeze(led, signer, folder, V2)
    assert (result.appended, result.seq, result.breaking) == (True, 2, True)
    assert result.changes == report.changes
    payload = SchemaFrozenPayload.model_validate(led.entry(2).envelope.payload)
    assert payload.breaking
    assert payload.changes == report.changes
    assert check(folder, sources=V2).ok
    assert verify_store(led.store).ok


def test_compatible_change_is_recorded_as_not_breaking(
    led: Ledger, signer: Ed25519Signer, folder: Path
) -> None:
    """An added optional field still fails the check (it is not frozen) but is not breaking."""
    do_freeze(led, signer, folder, V1)
    report = check(folder, sources=[source(ReleaseV1Plus)])
    assert not report.ok
    assert [(c.kind, c.breaking) for c in report.changes] == [("field-added", False)]
    result = do_freeze(led, signer, folder, [source(ReleaseV1Plus)])
    assert result.appended
    assert not result.breaking


def test_snapshot_no_longer_produced_is_removed(
    led: Ledger, signer: Ed25519Signer, folder: Path
) -> None:
    """A model dropped from the contracts is a breaking snapshot-removed, and its file goes; a JSON
    file that no freeze wrote is left alone, for the check to report."""
    do_freeze(led, signer, folder, [source(ReleaseV1, Checksum)])
    result = do_freeze(led, signer, folder, V1)
    assert result.removed == ["Checksum.schema.json"]
    assert [(c.kind, c.breaking) for c in result.changes] == [("snapshot-removed", True)]
    assert not (folder / "Checksum.schema.json").exists()
    assert check(folder, sources=V1).ok
    (folder / "notes.json").write_bytes(render({"mine": True}))
    do_freeze(led, signer, folder, [source(ReleaseV1Plus)])
    assert (folder / "notes.json").exists()
    report = check(folder, sources=[source(ReleaseV1Plus)])
    assert report.problems == ["snapshot notes.json is not part of the freeze of entry 3"]
    assert [(c.kind, c.snapshot) for c in report.changes] == [("snapshot-removed", "notes.json")]


def test_crlf_checkout_is_accepted(led: Ledger, signer: Ed25519Signer, folder: Path) -> None:
    """Snapshots checked out with CRLF line ends (git on Windows) still check."""
    do_freeze(led, signer, folder, V1)
    path = folder / "Release.schema.json"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert check(folder, sources=V1).ok


# -- bad input ----------------------------------------------------------------------------------


def test_hand_edited_formatting_names_file_and_command(
    led: Ledger, signer: Ed25519Signer, folder: Path
) -> None:
    """A snapshot reformatted by hand is refused, naming the file and the regenerating command."""
    do_freeze(led, signer, folder, V1)
    path = folder / "Release.schema.json"
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4))
    with pytest.raises(InputRejectedError) as info:
        check(folder, sources=V1)
    assert str(path) in info.value.message
    assert "edited by hand" in info.value.message
    assert REGENERATE in (info.value.hint or "")
    assert info.value.exit_code == 3


def test_hand_edited_content_fails_naming_file(
    led: Ledger, signer: Ed25519Signer, folder: Path
) -> None:
    """A snapshot whose content was edited (in canonical form) no longer matches the freeze."""
    do_freeze(led, signer, folder, V1)
    path = folder / "Release.schema.json"
    doc = json.loads(path.read_text())
    doc["properties"]["size"]["minimum"] = 0
    path.write_bytes(render(doc))
    report = check(folder, sources=V1)
    assert not report.ok
    assert any("Release.schema.json does not match its digest" in p for p in report.problems)
    assert [c.kind for c in report.changes] == ["constraint-changed"]


def test_invalid_json_names_file_and_command(
    led: Ledger, signer: Ed25519Signer, folder: Path
) -> None:
    """A snapshot that is not JSON is an error naming the file and the command."""
    do_freeze(led, signer, folder, V1)
    (folder / "Release.schema.json").write_text('{"type": ')
    with pytest.raises(InputRejectedError) as info:
        check(folder, sources=V1)
    assert "Release.schema.json is not valid JSON" in info.value.message
    assert REGENERATE in (info.value.hint or "")


@pytest.mark.parametrize("what", ["folder", "record", "empty"])
def test_missing_folder_or_record(
    what: str, led: Ledger, signer: Ed25519Signer, folder: Path
) -> None:
    """A missing snapshot folder, an empty one, or a missing FROZEN.json is an error naming the
    command that creates it."""
    do_freeze(led, signer, folder, V1)
    if what == "folder":
        shutil.rmtree(folder)
    elif what == "record":
        (folder / FROZEN_FILE).unlink()
    else:
        (folder / "Release.schema.json").unlink()
    with pytest.raises(InputRejectedError) as info:
        check(folder, sources=V1)
    assert str(folder) in info.value.message
    assert REGENERATE in (info.value.hint or "")


def test_duplicate_and_missing_sources(led: Ledger, signer: Ed25519Signer, folder: Path) -> None:
    """Two sources of one file name fail naming both; no sources at all says how to reinstall;
    a failing source is named; and none of these appends anything."""
    with pytest.raises(InputRejectedError, match=r"sources a \(x\) and b \(y\) both produce"):
        do_freeze(
            led,
            signer,
            folder,
            [source(ReleaseV1, label="a (x)"), source(ReleaseV1, label="b (y)")],
        )
    with pytest.raises(InputRejectedError) as info:
        do_freeze(led, signer, folder, [])
    assert "pip install -e ./contracts -e ." in (info.value.hint or "")

    def broken() -> dict[str, Any]:
        raise ModuleNotFoundError("No module named 'starter_backend'")

    with pytest.raises(InputRejectedError, match=r"snapshot source openapi \(m:f\) failed"):
        do_freeze(led, signer, folder, [("openapi (m:f)", broken)])
    assert led.size() == 1
    assert not folder.exists()


def test_refused_freeze_leaves_ledger_and_folder_unchanged(
    led: Ledger, signer: Ed25519Signer, tmp_path: Path
) -> None:
    """A snapshot folder that cannot be written refuses before anything is appended."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(InputRejectedError, match="cannot write the snapshot folder"):
        do_freeze(led, signer, blocker / "snapshots", V1)
    assert led.size() == 1


# -- the freeze record --------------------------------------------------------------------------


def _resign(entry: bytes, key: Ed25519Signer, edit: Callable[[dict[str, Any]], None]) -> str:
    envelope = decode_entry(entry).envelope.model_dump(mode="json")
    edit(envelope)
    return encode_entry(envelope, key).decode("ascii")


def _tamper_payload(doc: dict[str, Any], led: Ledger) -> None:
    head, body, sig = doc["entry"].split(".")
    envelope = json.loads(b64url_decode(body))
    envelope["payload"]["breaking"] = False
    doc["entry"] = ".".join([head, b64url_encode(json.dumps(envelope).encode()), sig])


def _other_key_same_jwk(doc: dict[str, Any], led: Ledger) -> None:
    doc["entry"] = _resign(doc["entry"].encode(), make_signer("mallory"), lambda e: None)


def _other_key_and_jwk(doc: dict[str, Any], led: Ledger) -> None:
    mallory = make_signer("mallory")
    doc["entry"] = _resign(doc["entry"].encode(), mallory, lambda e: None)
    doc["signer"] = mallory.public_jwk
    doc["leaf_hash"] = b64_encode(leaf_hash(doc["entry"].encode()))  # a careful forger


def _checkpoint_without_it(doc: dict[str, Any], led: Ledger) -> None:
    led.append("note.recorded", {"text": "later"}, make_signer("genesis"), "tester")
    doc["checkpoint"] = led.latest_checkpoint()  # a bigger tree: the old proof does not fit


def _not_schema_frozen(doc: dict[str, Any], led: Ledger) -> None:
    doc["entry"] = led.entry(0).raw.decode("ascii")


def _wrong_seq(doc: dict[str, Any], led: Ledger) -> None:
    doc["seq"] = 0


TAMPERING: list[tuple[str, Callable[[dict[str, Any], Ledger], None], str]] = [
    ("payload edited", _tamper_payload, "FROZEN.json"),
    ("signed by another key", _other_key_same_jwk, "not by the signer FROZEN.json names"),
    ("another key and its JWK", _other_key_and_jwk, "checkpoint in FROZEN.json is not signed"),
    ("checkpoint without it", _checkpoint_without_it, "is not in the checkpoint's tree"),
    ("another event", _not_schema_frozen, "is a ledger.genesis event, not schema.frozen"),
    ("wrong seq", _wrong_seq, "is entry 1 of"),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), [t[1:] for t in TAMPERING], ids=[t[0] for t in TAMPERING]
)
def test_tampered_record_fails(
    tamper: Callable[[dict[str, Any], Ledger], None],
    expected: str,
    led: Ledger,
    signer: Ed25519Signer,
    folder: Path,
) -> None:
    """A FROZEN.json that was altered, signed by another key, or whose checkpoint does not include
    its entry, fails the check (exit 1), saying why."""
    do_freeze(led, signer, folder, V1)
    doc = record(folder)
    tamper(doc, led)
    write_record(folder, doc)
    report = check(folder, sources=V1)
    assert not report.ok
    assert report.changed_files == []
    assert any(expected in p for p in report.problems), report.problems


def test_trusted_kids_pin_the_signer(led: Ledger, signer: Ed25519Signer, folder: Path) -> None:
    """With trusted kids given, a freeze by any other signer fails; by a trusted one it passes."""
    do_freeze(led, signer, folder, V1)
    assert check(folder, sources=V1, trusted_kids={signer.kid}).record.trusted is True
    other = make_signer("other").kid
    report = check(folder, sources=V1, trusted_kids={other})
    assert not report.ok
    assert report.record.trusted is False
    assert report.problems == [
        f"the freeze is signed by {signer.kid}, which is not a trusted signer"
    ]


def test_snapshots_older_than_the_ledger_fail_against_it(
    led: Ledger, signer: Ed25519Signer, folder: Path, tmp_path: Path, clock: FixedClock
) -> None:
    """Against the ledger, a record older than its last freeze fails, and so does a record from
    another ledger; offline, the older record alone still verifies."""
    do_freeze(led, signer, folder, V1)
    old = tmp_path / "old-checkout"
    shutil.copytree(folder, old)
    do_freeze(led, signer, folder, V2)
    assert check(old, sources=V1).ok
    report = check(old, sources=V1, ledger=led)
    assert not report.ok
    assert report.problems == [
        f"the snapshots are older than the last freeze in the ledger: {led.store.url} froze "
        f"again at entry 2, {FROZEN_FILE} holds entry 1"
    ]
    assert check(folder, sources=V2, ledger=led).ok
    with Ledger(MemoryStore("other"), clock=clock) as other:
        other.init(ORIGIN, signer, "tester")
        report = check(folder, sources=V2, ledger=other)
    assert not report.ok
    assert "is not in ledger memory://other" in report.problems[0]


class Crash(BaseException):
    """A process killed half way."""


def test_interrupted_freeze_is_caught_then_repaired(
    led: Ledger, signer: Ed25519Signer, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A freeze that dies after its append leaves a folder the check refuses; the next freeze
    rewrites the folder from the ledger without appending again."""
    do_freeze(led, signer, folder, V1)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash

    with monkeypatch.context() as m:
        m.setattr(freeze_mod, "_write_folder", crash)
        with pytest.raises(Crash):
            do_freeze(led, signer, folder, V2)
    assert led.size() == 3
    assert not check(folder, sources=V2).ok
    repaired = do_freeze(led, signer, folder, V2)
    assert (repaired.appended, repaired.seq, led.size()) == (False, 2, 3)
    assert repaired.written == ["Release.schema.json"]
    assert check(folder, sources=V2, ledger=led).ok
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_fresh_checkout_without_folder_is_rewritten_from_the_ledger(
    led: Ledger, signer: Ed25519Signer, folder: Path
) -> None:
    """When the ledger's newest freeze is of the code, a lost folder is rebuilt without an append,
    its record proven against the checkpoint right after that entry."""
    do_freeze(led, signer, folder, V1)
    led.append("note.recorded", {"text": "later"}, signer, "tester")
    shutil.rmtree(folder)
    result = do_freeze(led, signer, folder, V1)
    assert (result.appended, result.seq, led.size()) == (False, 1, 3)
    assert check(folder, sources=V1, ledger=led).ok


# -- the CLI ------------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """``starter-cli`` in-process, in tmp_path, with a SQLite ledger and its key beside it, and
    the snapshot sources set by ``cli.sources``."""
    db = tmp_path / "ledger" / "ledger.db"
    with Ledger.open(f"sqlite:///{db}", create=True) as ledger:
        ledger.init(ORIGIN, make_signer("genesis"), "tester")
    FileKeyStore(db.parent / "keys" / "signer.pem").store(make_signer("genesis"))
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("STARTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STARTER_LEDGER_URL", f"sqlite:///{db}")
    monkeypatch.setenv("STARTER_ACTOR", "tester")
    sources: list[list[Source]] = [V1]
    monkeypatch.setattr(freeze_mod, "snapshot_sources", lambda: sources[0])

    from starter_cli.app import main

    def run(*args: str) -> Run:
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0
        else:
            code = 0
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    run.sources = sources  # type: ignore[attr-defined]
    run.db = db  # type: ignore[attr-defined]
    return run


def _size(db: Path) -> int:
    with Ledger.open(f"sqlite:///{db}") as ledger:
        return ledger.size()


def test_cli_freeze_and_check(cli: Callable[..., Run]) -> None:
    """``contracts freeze`` then ``contracts check`` pass; a second freeze says it is done."""
    first = cli("contracts", "freeze")
    assert first.code == 0, first.err
    assert "froze 1 snapshot in contracts/snapshots at ledger entry 1" in first.out
    assert "already frozen: ledger entry 1" in cli("contracts", "freeze").out
    ok = cli("contracts", "check")
    assert ok.code == 0, ok.out + ok.err
    assert ok.out.startswith("ok: 1 snapshot in contracts/snapshots matches the code")
    assert "--trusted-kid" in ok.err
    assert cli("ledger", "verify").code == 0


def test_cli_check_drift_is_readable(cli: Callable[..., Run]) -> None:
    """A changed model fails the check (exit 1) with one line per change, the diff and the fix;
    ``--json`` lists the changes; the ledger is unchanged."""
    cli("contracts", "freeze")
    size = _size(cli.db)  # type: ignore[attr-defined]
    cli.sources[0] = V2  # type: ignore[attr-defined]
    drift = cli("contracts", "check")
    assert drift.code == 1
    lines = drift.out.splitlines()
    assert lines[0].startswith("FAILED: the code's schemas differ from the frozen snapshots")
    assert (
        "  BREAKING   type-changed       Release.schema.json /properties/size: "
        "type integer -> string"
    ) in lines
    assert "--- contracts/snapshots/Release.schema.json (frozen)" in lines
    assert (
        "hint: run 'starter-cli contracts freeze' to freeze this change (it will be recorded as "
        "breaking), then commit contracts/snapshots"
    ) in drift.err
    report = json.loads(cli("contracts", "check", "--json").out)
    assert (report["ok"], report["breaking"], report["problems"]) == (False, True, [])
    assert {c["kind"] for c in report["changes"]} == {
        "type-changed",
        "required-added",
        "enum-value-removed",
    }
    assert report["record"]["seq"] == 1
    assert _size(cli.db) == size  # type: ignore[attr-defined]
    frozen = json.loads(cli("contracts", "freeze", "--json").out)
    assert (frozen["appended"], frozen["seq"], frozen["breaking"]) == (True, 2, True)
    assert cli("contracts", "check").code == 0


def test_cli_trusted_kid(cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    """``--trusted-kid`` (or STARTER_TRUSTED_KIDS) pins the freezing signer."""
    cli("contracts", "freeze")
    kid = make_signer("genesis").kid
    assert cli("contracts", "check", "--trusted-kid", kid).code == 0
    other = cli("contracts", "check", "--trusted-kid", make_signer("x").kid)
    assert other.code == 1
    assert "which is not a trusted signer" in other.out
    monkeypatch.setenv("STARTER_TRUSTED_KIDS", f"{make_signer('x').kid}, {kid}")
    assert cli("contracts", "check").code == 0
    monkeypatch.setenv("STARTER_TRUSTED_KIDS", make_signer("x").kid)
    assert cli("contracts", "check").code == 1


def test_cli_check_against_a_ledger(cli: Callable[..., Run], tmp_path: Path) -> None:
    """``--ledger`` compares the record with that ledger; a SQLite ledger that does not exist
    (a CI clone) is skipped with a note."""
    cli("contracts", "freeze")
    url = f"sqlite:///{cli.db}"  # type: ignore[attr-defined]
    assert cli("contracts", "check", "--ledger", url).code == 0
    missing = cli("contracts", "check", "--ledger", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.code == 0
    assert "checked offline only" in missing.err


def test_cli_bad_input_exit_3(cli: Callable[..., Run]) -> None:
    """Bad snapshot input is one error line naming the file and a hint naming the command."""
    missing = cli("contracts", "check")
    assert missing.code == 3
    assert "error: snapshot folder contracts/snapshots does not exist" in missing.err
    assert "hint: create it with 'starter-cli contracts freeze'" in missing.err
    cli("contracts", "freeze")
    Path("contracts/snapshots/Release.schema.json").write_text("not json")
    bad = cli("contracts", "check", "--json")
    assert bad.code == 3
    assert "error: snapshot contracts/snapshots/Release.schema.json is not valid JSON" in bad.err
    assert bad.out == ""


def test_cli_refused_freeze_leaves_the_ledger_unchanged(cli: Callable[..., Run]) -> None:
    """A freeze refused for a bad actor or an unusable key appends nothing."""
    size = _size(cli.db)  # type: ignore[attr-defined]
    assert cli("contracts", "freeze", "--actor", "").code == 3
    assert cli("contracts", "freeze", "--key", "file:///nonexistent/key.pem").code == 7
    assert _size(cli.db) == size  # type: ignore[attr-defined]
    assert not Path("contracts/snapshots").exists()


def test_cli_graph_check(cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    """``contracts graph --check`` fails (exit 1) with the fix when CONTRACTS.md is out of date."""
    from starter_cli import _graph as graph

    calls: list[tuple[Path, bool]] = []

    def sync(path: Path, *, check: bool) -> bool:
        calls.append((path, check))
        return True

    monkeypatch.setattr(graph, "sync_contracts_md", sync)
    stale = cli("contracts", "graph", "--check")
    assert stale.code == 1
    assert "CONTRACTS.md's import graph is out of date: run 'just contracts-graph'" in stale.err
    assert cli("contracts", "graph", "--file", "X.md").out == "updated X.md\n"
    assert calls == [(Path("CONTRACTS.md"), True), (Path("X.md"), False)]


# -- the real entry points, end to end ----------------------------------------------------------


def test_real_snapshots_freeze_and_check(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    """With the installed entry points (every contract model and the backend's OpenAPI document),
    freeze and check pass, and ``ledger verify`` accepts the schema.frozen entry."""
    assert run_cli("ledger", "init", "--origin", ORIGIN).code == 0
    frozen = run_cli("contracts", "freeze", "--json")
    assert frozen.code == 0, frozen.stderr
    names = json.loads(frozen.stdout)["snapshots"]
    assert "openapi.json" in names
    assert "Envelope.schema.json" in names
    checked = run_cli("contracts", "check")
    assert checked.code == 0, checked.stdout + checked.stderr
    assert run_cli("ledger", "verify").code == 0


_PROBE = """
import json, sys
from starter_cli.app import main
try:
    main(["contracts", *sys.argv[1:], "--help"])
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in
               {"sqlalchemy", "fastapi", "starlette", "uvicorn", "starter_backend", "grimp"})
sys.stderr.write("PROBE " + json.dumps(heavy) + "\\n")
"""


def test_contracts_help_is_light(tmp_path: Path) -> None:
    """``starter-cli contracts ... --help`` imports no database layer, web framework or backend."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, "check"],
        capture_output=True,
        cwd=tmp_path,
        text=True,
        timeout=60,
    )
    assert "Usage:" in proc.stdout
    probe = [line for line in proc.stderr.splitlines() if line.startswith("PROBE ")]
    assert probe == ["PROBE []"], proc.stderr
