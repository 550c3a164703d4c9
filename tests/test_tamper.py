"""Property tests of tamper evidence: whatever an attacker with write access to the file changes,
``verify`` fails and names the first entry that no longer holds.

A base SQLite ledger of 32 entries (two signers, a revocation, a batch) is built once for the
module; each example copies it to a fresh temporary folder and tampers with the copy through
``sqlite3`` after dropping the append-only triggers, as an attacker with file access would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ORIGIN, make_signer
from starter_ledger import (
    Ledger,
    VerifyReport,
    open_store,
    verify_bundle,
    verify_from_checkpoint,
    verify_store,
)
from starter_ledger.bundle import BundleSource, export_bundle
from starter_ledger.clock import FixedClock
from starter_ledger.ledger import Event
from starter_ledger.storage._schema import APPEND_ONLY_TABLES
from starter_ledger.trust import make_proof_of_possession

PROPS = settings(max_examples=40, deadline=None)


@dataclass(frozen=True)
class Base:
    path: Path
    entries: tuple[bytes, ...]
    #: tree size -> stored checkpoint note
    checkpoints: dict[int, str]
    bundle: Path

    @property
    def size(self) -> int:
        return len(self.entries)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    folder = tmp_path_factory.mktemp("tamper-base")
    path = folder / "base.db"
    clock = FixedClock(dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC))
    first, second = make_signer("genesis"), make_signer("second")
    with Ledger.open(f"sqlite:///{path}", create=True, clock=clock) as led:
        led.init(ORIGIN, first, "tester")
        for i in range(8):
            clock.advance(dt.timedelta(seconds=1))
            led.append("note.recorded", {"text": f"first signer note {i}"}, first, "tester")
        pop = make_proof_of_possession(ORIGIN, second)
        payload = {"jwk": second.public_jwk, "note": "rotation", "proof_of_possession": pop}
        led.append("signer.added", payload, first, "tester")
        for i in range(8):
            led.append("note.recorded", {"text": f"second signer note {i}"}, second, "other")
        led.append("signer.revoked", {"kid": first.kid, "reason": "rotated"}, second, "other")
        batch = [Event("note.recorded", {"text": f"batched note {i}"}) for i in range(6)]
        led.append_many(batch, second, "other")
        for i in range(7):
            led.append("note.recorded", {"text": f"after batch {i}"}, second, "other")
        assert led.size() == 32
        entries = tuple(raw for _, raw in led.store.iter_entries())
        checkpoints = dict(led.store.iter_checkpoints())
        bundle = folder / "base.jsonl"
        export_bundle(led.store, bundle, origin=ORIGIN)
        report = verify_store(led.store)
    assert report.ok, report.first_failure
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return Base(path, entries, checkpoints, bundle)


@contextlib.contextmanager
def tampered_copy(base: Base) -> Iterator[Path]:
    """A private copy of the base ledger, in a folder removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tamper-") as folder:
        copy = Path(folder) / "ledger.db"
        shutil.copyfile(base.path, copy)
        yield copy


def attack(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Run SQL on the file as an attacker: drop the append-only triggers, then write."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for table in APPEND_ONLY_TABLES:
            for op in ("update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()


def verify(path: Path, **kwargs: object) -> VerifyReport:
    store = open_store(f"sqlite:///{path}")
    try:
        return verify_store(store, **kwargs)  # type: ignore[arg-type]
    finally:
        store.close()


def verify_incremental(path: Path, trusted: str) -> VerifyReport:
    store = open_store(f"sqlite:///{path}")
    try:
        return verify_from_checkpoint(store, trusted)
    finally:
        store.close()


def test_base_ledger_verifies_and_triggers_block_plain_edits(base: Base) -> None:
    """The untouched ledger verifies, and unless triggers are dropped UPDATE and DELETE fail."""
    with tampered_copy(base) as path:
        assert verify(path).ok
        with contextlib.closing(sqlite3.connect(path)) as conn:
            for sql in (
                "UPDATE ledger_entries SET entry = x'00' WHERE seq = 3",
                "DELETE FROM ledger_entries WHERE seq = 31",
                "UPDATE ledger_entries SET checkpoint = NULL WHERE seq = 31",
                "UPDATE ledger_entries SET nodes = x'00' WHERE seq = 0",
                "DELETE FROM ledger_schema",
            ):
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    conn.execute(sql)
        assert verify(path).ok


@PROPS
@given(data=st.data())
def test_any_changed_entry_byte_is_named(base: Base, data: st.DataObject) -> None:
    """Changing any one byte of any stored entry makes verify fail at exactly that entry."""
    seq = data.draw(st.integers(0, base.size - 1), label="seq")
    raw = base.entries[seq]
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]), label="byte")
    changed = raw[:pos] + bytes([new]) + raw[pos + 1 :]
    with tampered_copy(base) as path:
        attack(path, ("UPDATE ledger_entries SET entry = ? WHERE seq = ?", (changed, seq)))
        report = verify(path)
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.seq == seq, report.first_failure


def test_changed_entry_is_named_with_worker_processes(base: Base) -> None:
    """Verification in worker processes (--jobs) names the same tampered entry as in-process."""
    seq = 17
    raw = base.entries[seq]
    changed = raw[:-5] + (b"A" if raw[-5:-4] != b"A" else b"B") + raw[-4:]
    with tampered_copy(base) as path:
        attack(path, ("UPDATE ledger_entries SET entry = ? WHERE seq = ?", (changed, seq)))
        serial, parallel = verify(path, jobs=1), verify(path, jobs=2)
    assert not serial.ok
    assert not parallel.ok
    assert serial.first_failure == parallel.first_failure
    assert parallel.first_failure is not None
    assert parallel.first_failure.seq == seq


@PROPS
@given(data=st.data())
def test_deleted_entry_is_named(base: Base, data: st.DataObject) -> None:
    """Deleting any entry row makes verify (pinned to a saved checkpoint) name that position.

    Deleting the newest row takes its checkpoint with it, a clean cut that only the pin reveals.
    """
    seq = data.draw(st.integers(0, base.size - 1), label="seq")
    with tampered_copy(base) as path:
        attack(path, ("DELETE FROM ledger_entries WHERE seq = ?", (seq,)))
        report = verify(path, checkpoint=base.checkpoints[base.size])
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.seq == seq, report.first_failure


@PROPS
@given(data=st.data())
def test_swapped_entries_name_the_earlier_one(base: Base, data: st.DataObject) -> None:
    """Swapping the bytes of two entries makes verify fail at the earlier of the two positions."""
    i, j = data.draw(
        st.lists(st.integers(0, base.size - 1), min_size=2, max_size=2, unique=True).map(sorted),
        label="seqs",
    )
    swap = "UPDATE ledger_entries SET entry = ? WHERE seq = ?"
    with tampered_copy(base) as path:
        attack(path, (swap, (base.entries[j], i)), (swap, (base.entries[i], j)))
        report = verify(path)
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.seq == i, report.first_failure


def _truncate(n: int) -> list[tuple[str, tuple[object, ...]]]:
    """SQL that cuts the ledger back to its first n entries (their nodes and checkpoints go too:
    a SQLite row holds an entry, the tree nodes it completed and its checkpoint)."""
    return [("DELETE FROM ledger_entries WHERE seq >= ?", (n,))]


def _truncated_bundle(base: Base, folder: Path, n: int) -> Path:
    """The base bundle with every entry line from seq n on removed but all checkpoint lines kept."""
    lines = base.bundle.read_bytes().split(b"\n")
    kept = [
        line
        for line in lines
        if not (line.startswith(b'{"entry"') and int(line.rsplit(b":", 1)[1][:-1]) >= n)
    ]
    out = folder / "truncated.jsonl"
    out.write_bytes(b"\n".join(kept))
    return out


def _clean_cuts(base: Base) -> list[int]:
    """Sizes an attacker can cut back to that have their own checkpoint (not inside a batch)."""
    return [n for n in sorted(base.checkpoints) if n < base.size]


#: A size inside the six-event batch (entries 19-24, one checkpoint at 25): it has no checkpoint.
MID_BATCH = 22


def test_base_ledger_has_a_batch_without_inner_checkpoints(base: Base) -> None:
    """A batch append writes one checkpoint, so sizes inside it have none (cuts tested below)."""
    assert MID_BATCH not in base.checkpoints
    assert {19, 25} <= set(base.checkpoints)


@PROPS
@given(data=st.data())
def test_truncated_tail_fails_against_pinned_checkpoint(base: Base, data: st.DataObject) -> None:
    """Cutting off the newest entries, checkpoints and nodes fails against a saved checkpoint."""
    n = data.draw(st.sampled_from(_clean_cuts(base)), label="new size")
    pinned = base.checkpoints[base.size]
    with tampered_copy(base) as path:
        attack(path, *_truncate(n))
        unpinned = verify(path)
        report = verify(path, checkpoint=pinned)
        incremental = verify_incremental(path, pinned)
    # a clean cut is self-consistent: only the saved checkpoint can reveal it
    assert unpinned.ok, unpinned.first_failure
    assert unpinned.size == n
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.check == "checkpoint-pin", report.first_failure
    assert report.first_failure.seq == n
    assert not incremental.ok
    assert incremental.first_failure is not None
    assert incremental.first_failure.check == "checkpoint-pin", incremental.first_failure
    assert incremental.first_failure.seq == n


@PROPS
@given(data=st.data())
def test_truncated_tail_with_checkpoints_left_is_caught(base: Base, data: st.DataObject) -> None:
    """A bundle missing its newest entries but keeping their checkpoints fails at the first gap."""
    n = data.draw(st.sampled_from(_clean_cuts(base)), label="new size")
    pinned = base.checkpoints[base.size]
    with tempfile.TemporaryDirectory(prefix="bundle-") as folder:
        bundle = BundleSource(_truncated_bundle(base, Path(folder), n))
        reports = [verify_bundle(bundle), verify_bundle(bundle, checkpoint=pinned)]
    for report in reports:
        assert not report.ok
        assert report.first_failure is not None
        assert report.first_failure.check in {"checkpoint", "checkpoint-pin"}, report.first_failure
        assert report.first_failure.seq == n


def test_cut_inside_a_batch_is_caught_without_a_pin(base: Base) -> None:
    """Even without a saved checkpoint, cutting the ledger inside a batch fails (no checkpoint)."""
    with tampered_copy(base) as path:
        attack(path, *_truncate(MID_BATCH))
        report = verify(path)
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.check == "checkpoint", report.first_failure
    assert report.first_failure.seq == MID_BATCH - 1


def test_cut_inside_a_batch_is_named_as_truncation(base: Base, tmp_path: Path) -> None:
    """When the evidence shows entries were removed, a cut inside a batch names the new size."""
    with tampered_copy(base) as path:
        attack(path, *_truncate(MID_BATCH))
        pinned = verify(path, checkpoint=base.checkpoints[base.size])
    left = verify_bundle(BundleSource(_truncated_bundle(base, tmp_path, MID_BATCH)))
    for report, expected in ((pinned, {"checkpoint-pin"}), (left, {"checkpoint"})):
        assert not report.ok
        assert report.first_failure is not None
        assert report.first_failure.check in expected, report.first_failure
        assert report.first_failure.seq == MID_BATCH, report.first_failure


@PROPS
@given(data=st.data())
def test_tampered_checkpoint_body_is_caught(base: Base, data: st.DataObject) -> None:
    """Changing any character of a stored checkpoint's body fails at the entry it checkpoints."""
    size = data.draw(st.sampled_from(sorted(base.checkpoints)), label="size")
    note = base.checkpoints[size]
    body = note[: note.index("\n\n") + 1]
    pos = data.draw(st.integers(0, len(body) - 1), label="pos")
    alphabet = st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\n")
    new = data.draw(alphabet.filter(lambda c: c != body[pos]), label="char")
    changed = note[:pos] + new + note[pos + 1 :]
    with tampered_copy(base) as path:
        attack(
            path, ("UPDATE ledger_entries SET checkpoint = ? WHERE seq = ?", (changed, size - 1))
        )
        report = verify(path)
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.check == "checkpoint", report.first_failure
    assert report.first_failure.seq == size - 1


def test_tampered_latest_checkpoint_signature_is_caught(base: Base) -> None:
    """A forged signature on the newest checkpoint (the one clients fetch) fails verification."""
    note = base.checkpoints[base.size]
    sig_at = len(note) - 20  # inside the Ed25519 signature, past the 4-byte key ID
    assert note.rindex(" ") + 8 < sig_at
    forged = note[:sig_at] + ("A" if note[sig_at] != "A" else "B") + note[sig_at + 1 :]
    with tampered_copy(base) as path:
        forge = "UPDATE ledger_entries SET checkpoint = ? WHERE seq = ?"
        attack(path, (forge, (forged, base.size - 1)))
        report = verify(path)
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.check == "checkpoint"
    assert report.first_failure.seq == base.size - 1


# -- export bundles ----------------------------------------------------------------------------


def _entry_line(lines: list[bytes], seq: int) -> int:
    suffix = f'","seq":{seq}}}'.encode()
    return next(i for i, line in enumerate(lines) if line.endswith(suffix))


def _tamper_bundle(base: Base, folder: Path, seq: int, pos: int, new: bytes) -> Path:
    lines = base.bundle.read_bytes().split(b"\n")
    at = _entry_line(lines, seq)
    line = lines[at]
    start = len(b'{"entry":"')
    assert line[start + pos : start + pos + 1] != new
    lines[at] = line[: start + pos] + new + line[start + pos + 1 :]
    out = folder / "tampered.jsonl"
    out.write_bytes(b"\n".join(lines))
    return out


#: Bytes that keep an entry line valid JSON: printable ASCII except the quote and the backslash.
_JSON_SAFE = [bytes([b]) for b in range(0x20, 0x7F) if b not in b'"\\']


@PROPS
@given(data=st.data())
def test_tampered_bundle_entry_is_named(base: Base, data: st.DataObject) -> None:
    """Changing one character of an entry inside an export bundle fails offline at that entry."""
    seq = data.draw(st.integers(0, base.size - 1), label="seq")
    raw = base.entries[seq]
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    new = data.draw(st.sampled_from(_JSON_SAFE).filter(lambda b: b[0] != raw[pos]), label="byte")
    with tempfile.TemporaryDirectory(prefix="bundle-") as folder:
        report = verify_bundle(BundleSource(_tamper_bundle(base, Path(folder), seq, pos, new)))
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.seq == seq, report.first_failure


def test_untouched_bundle_verifies(base: Base) -> None:
    """The exported bundle of an intact ledger verifies offline to the same size and root."""
    report = verify_bundle(BundleSource(base.bundle), checkpoint=base.checkpoints[base.size])
    with tampered_copy(base) as path:
        stored = verify(path)
    assert report.ok, report.first_failure
    assert (report.size, report.root_hash) == (stored.size, stored.root_hash)


@pytest.mark.parametrize(
    "new",
    [b'"', b"\\", b"\x00", b"\xff"],
    ids=["quote", "backslash", "nul", "non-utf8"],
)
def test_unparseable_bundle_entry_line_is_named(base: Base, tmp_path: Path, new: bytes) -> None:
    """A byte breaking an entry line's JSON or UTF-8 is reported at that entry, not at genesis."""
    seq = 17
    raw = base.entries[seq]
    # a position followed by an upper-case letter, so that a backslash makes an invalid escape
    pos = next(p for p in range(40, len(raw) - 1) if chr(raw[p + 1]).isupper())
    report = verify_bundle(BundleSource(_tamper_bundle(base, tmp_path, seq, pos, new)))
    assert not report.ok
    assert report.first_failure is not None
    assert report.first_failure.seq == seq, report.first_failure
