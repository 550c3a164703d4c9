"""The baselines that the durable-append rows measure ours against, in the same run.

For: the ``eventsourcing`` library's ``SQLiteApplicationRecorder`` at our durability (WAL and
``synchronous=FULL``), optionally also making the two Ed25519 signatures each of our appends
makes; raw ``sqlite3`` inserts of ~1 KB blobs; the floor of our format in Python
(``bare_append``, row 1m); and the durability check every store of rows 1 and 2 passes before it
is timed. Not for: timing or reporting (``_single``, ``_durable``).
"""

from __future__ import annotations

import base64
import functools
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _core import ORIGIN, note_text

#: The ~1 KB payload of rows 1, 2 and 6: ``{"text": "..."}`` is 1,024 bytes in RFC 8785 form.
PAYLOAD_BYTES = 1024
#: The floor's fixed signing-key seed (a bench key: it signs nothing that is kept).
SEED = b"\x07" * 32


# -- the eventsourcing baseline --------------------------------------------------------------


@functools.cache
def eventsourcing() -> dict[str, Any]:
    """eventsourcing's pieces, imported lazily (a row that does not use them does not pay).

    Made once per process: eventsourcing registers each event class under its topic once."""
    from eventsourcing.domain import DomainEvent
    from eventsourcing.persistence import (
        DatetimeAsISO,
        DecimalAsStr,
        JSONTranscoder,
        Mapper,
        UUIDAsHex,
    )
    from eventsourcing.sqlite import (
        SQLiteApplicationRecorder,
        SQLiteConnection,
        SQLiteConnectionPool,
        SQLiteDatastore,
    )

    class FullSyncPool(SQLiteConnectionPool):
        """eventsourcing's SQLite pool with ``PRAGMA synchronous=FULL`` on every connection.

        eventsourcing 9.x (``eventsourcing/sqlite.py``) opens its connections in
        ``SQLiteConnectionPool._create_connection``: autocommit mode, and ``journal_mode=WAL`` on
        file databases, but it never sets ``synchronous`` and has no setting for it (its
        environment knows only SQLITE_DBNAME, SQLITE_LOCK_TIMEOUT and SINGLE_ROW_TRACKING).
        So the bench patches the connection creation: it lets the library make the connection
        as usual, then sets ``synchronous=FULL`` on it, the durability our store runs at. (With
        SQLite's stock build the WAL default is FULL already; setting it makes that explicit.)
        """

        def _create_connection(self) -> SQLiteConnection:
            conn = super()._create_connection()
            conn._sqlite_conn.execute("PRAGMA synchronous=FULL")
            return conn

    class NoteRecorded(DomainEvent):
        """The same note as ours, as an eventsourcing domain event."""

        text: str

    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        transcoder.register(transcoding)

    def open_recorder(db: Path) -> tuple[Any, Any]:
        datastore = SQLiteDatastore(str(db))
        # The datastore's own pool has made no connection yet; swap in the FULL one.
        datastore.pool = FullSyncPool(db_name=str(db))
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        return datastore, recorder

    return {
        "open": open_recorder,
        "event": NoteRecorded,
        "mapper": Mapper(transcoder=transcoder),
        "timestamp": DomainEvent.create_timestamp,
    }


def es_pragmas(datastore: Any) -> tuple[str, int]:
    with datastore.transaction(commit=False) as cur:
        cur.execute("PRAGMA journal_mode")
        mode = str(cur.fetchone()[0])
        cur.execute("PRAGMA synchronous")
        sync = int(cur.fetchone()[0])
    return mode, sync


def check_durability(who: str, mode: str, sync: int) -> None:
    if mode.lower() != "wal" or sync != 2:
        raise RuntimeError(f"{who} runs journal_mode={mode} synchronous={sync}, not WAL/FULL")


def es_saver(
    es: dict[str, Any], recorder: Any, texts: Sequence[str], *, signed: bool = False
) -> Callable[[int], None]:
    """Saves note ``i`` (text ``texts[i]``, made before timing, as ours gets its payloads) as one
    stored event in its own transaction, as an application would: domain event object -> mapper
    (JSON transcoder) -> ``recorder.insert_events([stored])``.

    ``signed`` adds the two Ed25519 signatures each of our appends makes, with the same library
    and key type, over bytes of the same sizes: one over the stored event's state (our entry's
    JWS signing input) and one over a ~250-byte text (our checkpoint note). The signatures are
    computed and dropped; the stored rows are unchanged."""
    event_cls, mapper, timestamp = es["event"], es["mapper"], es["timestamp"]
    originator = uuid.uuid4()
    sign: Callable[[bytes], bytes] | None = None
    if signed:
        from starter_ledger.keys import Ed25519Signer

        sign = Ed25519Signer.generate().sign

    def save(i: int) -> None:
        event = event_cls(
            originator_id=originator,
            originator_version=i + 1,
            timestamp=timestamp(),
            text=texts[i],
        )
        stored = mapper.to_stored_event(event)
        if sign is not None:
            sign(base64.urlsafe_b64encode(stored.state))
            sign(f"{ORIGIN}\n{i + 2}\n{stored.originator_id}\n".ljust(250).encode())
        recorder.insert_events([stored])

    return save


# -- raw sqlite3 -----------------------------------------------------------------------------


def raw_sqlite(db: Path) -> Any:
    import sqlite3

    conn = sqlite3.connect(db, isolation_level=None)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.execute("PRAGMA synchronous=FULL")
    check_durability("raw sqlite3", mode, conn.execute("PRAGMA synchronous").fetchone()[0])
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    return conn


def blob(i: int) -> bytes:
    return note_text(i, PAYLOAD_BYTES).encode().ljust(PAYLOAD_BYTES, b" ")


# -- the floor: the least an append in our format can do in Python --------------------------


def bare_append(db: Path, payloads: Sequence[dict[str, str]]) -> tuple[Callable[[int], None], Any]:
    """An append that writes the same kind of bytes as ours and nothing more: the RFC 8785
    envelope (the standard library's encoder, sorted keys, which is RFC 8785 for these string and
    integer members), its JWS with one Ed25519 signature (our header, the key's thumbprint kid),
    the leaf hash and Merkle path, a checkpoint note (with our signers line) with a second
    signature, and one conditional INSERT of the row into the same table layout, at the same
    durability. No payload validation, no trust rules, no key events, no retries, no objects
    returned. Not a product path: the floor that shows how much of an append is the format
    itself. Returns ``(save, close)``."""
    import hashlib
    import json
    import sqlite3

    import nacl.bindings

    from starter_contracts import ENTRY_MEDIA_TYPE
    from starter_ledger.checkpoint import signers_line
    from starter_ledger.jcs import canonicalize
    from starter_ledger.keys import public_jwk, thumbprint
    from starter_ledger.merkle import Frontier
    from starter_ledger.note import key_id as note_key_id

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA page_size=16384")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.execute("PRAGMA wal_autocheckpoint=128")
    conn.execute("PRAGMA synchronous=FULL")
    check_durability("bare append", mode, conn.execute("PRAGMA synchronous").fetchone()[0])
    conn.execute(
        "CREATE TABLE ledger_entries(seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, "
        "type VARCHAR NOT NULL, nodes BLOB NOT NULL, checkpoint VARCHAR)"
    )
    insert = (
        "INSERT INTO ledger_entries(seq, entry, type, nodes, checkpoint) SELECT ?, ?, ?, ?, ? "
        "WHERE (SELECT coalesce(max(seq) + 1, 0) FROM ledger_entries) = ? AND "
        "(SELECT substr(nodes, 1, 32) FROM ledger_entries WHERE seq = ? - 1) IS ?"
    )
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
    public, secret = nacl.bindings.crypto_sign_seed_keypair(SEED)
    # The real header and key IDs, made once here (untimed), as ours caches them.
    kid = thumbprint(public_jwk(public))
    header = {"alg": "EdDSA", "kid": kid, "typ": ENTRY_MEDIA_TYPE}
    header_b64 = base64.urlsafe_b64encode(canonicalize(header)).rstrip(b"=") + b"."
    key_id = note_key_id(ORIGIN, public)
    signers = signers_line([kid])
    frontier = Frontier()
    state: dict[str, Any] = {"root": hashlib.sha256(b"").digest(), "last": None}

    def save(i: int) -> None:
        seq = frontier.size
        envelope = {
            "actor": "bench@localhost",
            "occurred_at": "2026-11-24T00:00:00.000Z",
            "origin": ORIGIN,
            "payload": payloads[i],
            "prev_root": base64.b64encode(state["root"]).decode(),
            "schema_version": 1,
            "seq": seq,
            "type": "note.recorded",
        }
        signing_input = header_b64 + base64.urlsafe_b64encode(encode(envelope).encode()).rstrip(
            b"="
        )
        signature = nacl.bindings.crypto_sign(signing_input, secret)[:64]
        entry = signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")
        leaf = hashlib.sha256(b"\x00" + entry).digest()
        nodes = b"".join(h for _, _, h in frontier.append(leaf))
        root = frontier.root()
        body = f"{ORIGIN}\n{seq + 1}\n{base64.b64encode(root).decode()}\n{signers}\n"
        note_sig = nacl.bindings.crypto_sign(body.encode(), secret)[:64]
        note = f"{body}\n\u2014 {ORIGIN} {base64.b64encode(key_id + note_sig).decode()}\n"
        params = (seq, entry, "note.recorded", nodes, note, seq, seq, state["last"])
        if conn.execute(insert, params).rowcount != 1:
            raise RuntimeError(f"bare append {seq} was refused")
        state["root"], state["last"] = root, leaf

    return save, conn.close
