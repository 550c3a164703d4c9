"""Bench row 1m's floor writes our format, so the README's "floor of the format" is a fair one.

The floor (``bench/_baselines.py``: ``bare_append``) skips validation and trust rules to show the
least an append in our format costs in Python. Its figure means something only if its rows are
entries and checkpoints that our own decoders accept, with the same header and envelope members as
a ``Ledger``'s, signatures that verify and checkpoints over the right RFC 9162 roots.
"""

from __future__ import annotations

import base64
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from starter_ledger.checkpoint import expected_body
from starter_ledger.encoding import b64url_decode
from starter_ledger.entry import decode_entry
from starter_ledger.keys import Ed25519Signer, Verifier
from starter_ledger.ledger import Ledger
from starter_ledger.merkle import leaf_hash, root_from_leaves
from starter_ledger.note import key_id, parse_note

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bench's baselines module, imported as ``bench/run.py`` imports it."""
    monkeypatch.syspath_prepend(str(BENCH))
    import _baselines

    yield _baselines
    for name in ("_baselines", "_core"):
        sys.modules.pop(name, None)


def _floor_rows(bench: Any, db: Path, n: int) -> list[tuple[int, bytes, bytes, str]]:
    from _core import note_payload

    payloads = [note_payload(i, bench.PAYLOAD_BYTES) for i in range(n)]
    save, close = bench.bare_append(db, payloads)
    try:
        for i in range(n):
            save(i)
    finally:
        close()
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT seq, entry, nodes, checkpoint FROM ledger_entries"))


def test_floor_rows_are_entries_and_checkpoints_our_decoders_accept(
    bench: Any, tmp_path: Path
) -> None:
    """Every floor row is a valid entry (canonical header and envelope, signature by the key its
    kid names, the right seq and prev_root) with a signed checkpoint over the tree it ends."""
    rows = _floor_rows(bench, tmp_path / "bare.db", 20)
    signer = Ed25519Signer(bench.SEED)
    verifier = Verifier(b64url_decode(signer.public_jwk["x"]))
    origin = bench.ORIGIN
    assert [seq for seq, *_ in rows] == list(range(20))
    leaves: list[bytes] = []
    for seq, raw, nodes, note in rows:
        entry = decode_entry(raw)
        assert entry.kid == signer.kid
        assert entry.envelope.seq == seq
        assert entry.envelope.origin == origin
        assert base64.b64decode(entry.envelope.prev_root) == root_from_leaves(leaves)
        assert verifier.verify(entry.jws.signing_input, entry.jws.signature)
        leaves.append(leaf_hash(raw))
        assert nodes[:32] == leaves[-1]

        signed = parse_note(note)
        root = root_from_leaves(leaves)
        assert signed.text == expected_body(origin, seq + 1, root, [signer.kid])
        (sig,) = signed.signatures
        assert sig.name == origin
        assert sig.key_id == key_id(origin, verifier.public_key)
        assert verifier.verify(signed.text.encode(), sig.signature)


def test_floor_entries_have_the_ledgers_header_and_envelope_members(
    bench: Any, tmp_path: Path
) -> None:
    """A floor entry and a ``Ledger`` entry of the same note by the same key carry the same JWS
    header and the same envelope members, so the floor signs and stores as many bytes as ours."""
    from _core import ACTOR, note_payload

    (_, floor_raw, _, _), *_ = _floor_rows(bench, tmp_path / "bare.db", 1)
    signer = Ed25519Signer(bench.SEED)
    led = Ledger.open(f"sqlite:///{tmp_path / 'ours.db'}", create=True)
    try:
        led.init(bench.ORIGIN, signer, ACTOR)
        led.append("note.recorded", note_payload(0, bench.PAYLOAD_BYTES), signer, ACTOR)
        ((_, ours_raw),) = led.store.iter_entries(1, 2)
        ours = decode_entry(ours_raw)
    finally:
        led.close()
    floor = decode_entry(floor_raw)
    assert floor.jws.header == ours.jws.header
    ours_env = ours.envelope.model_dump(mode="json")
    floor_env = floor.envelope.model_dump(mode="json")
    assert set(floor_env) == set(ours_env)
    assert floor_env["payload"] == ours_env["payload"]
    assert floor_env["type"] == ours_env["type"] == "note.recorded"
