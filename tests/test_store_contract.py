"""The ledger-storage contract, run against every backend, plus SQLite's own guarantees.

``TestLedgerStoreContract`` is the one suite every ``LedgerStore`` must pass (memory, SQLite, and
later PostgreSQL); the ``sqlite_*`` tests check what only the SQLite file can show: triggers,
pragmas, and how foreign or newer files are refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from starter_ledger.errors import ConflictError, LedgerError, LedgerUnavailableError
from starter_ledger.merkle import Frontier, frontier_coords, leaf_hash
from starter_ledger.storage import AppendBatch, LedgerStore, MemoryStore, NewEntry, open_store
from starter_ledger.storage._schema import APPEND_ONLY_TABLES, SCHEMA_VERSION
from starter_ledger.storage.sqlite import SQLiteStore

TYPES = ("note.recorded", "signer.added", "ledger.genesis")


class Writer:
    """Builds valid append batches for a store and remembers what was written."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.frontier = Frontier()
        self.entries: list[tuple[int, bytes]] = []
        self.types: list[str] = []
        self.checkpoints: dict[int, str] = {}
        self.nodes: dict[tuple[int, int], bytes] = {}

    def batch(self, n: int, *, checkpoint_size: int | None = None) -> AppendBatch:
        """The next batch of ``n`` entries (without writing it)."""
        frontier = self.frontier.copy()
        start = frontier.size
        entries, nodes = [], []
        for seq in range(start, start + n):
            raw = f"entry-{seq}".encode() + bytes([seq % 256, 0, 255])
            entries.append(NewEntry(seq, raw, TYPES[seq % len(TYPES)], f"kid-{seq % 2}"))
            nodes.extend(frontier.append(leaf_hash(raw)))
        size = frontier.size if checkpoint_size is None else checkpoint_size
        return AppendBatch(start, entries, nodes, (size, f"checkpoint {size}\n"))

    def write(self, n: int) -> AppendBatch:
        batch = self.batch(n)
        self.store.append(batch)
        for e in batch.entries:
            self.entries.append((e.seq, e.entry))
            self.types.append(e.type)
            self.frontier.append(leaf_hash(e.entry))
        for level, index, h in batch.nodes:
            self.nodes[(level, index)] = h
        self.checkpoints[batch.checkpoint[0]] = batch.checkpoint[1]
        return batch


def _state(store: LedgerStore) -> tuple[object, ...]:
    """Everything a reader can see of a store."""
    size = store.size()
    coords = [(level, index) for level in range(12) for index in range(size >> level)]
    return (
        size,
        list(store.iter_entries()),
        store.entries_of_types(TYPES),
        store.read_nodes(coords),
        store.latest_checkpoint(),
        list(store.iter_checkpoints()),
    )


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    """A fresh, empty store on each backend."""
    if request.param == "memory":
        s: LedgerStore = MemoryStore("contract")
    elif request.param == "postgresql":
        s = open_store(request.getfixturevalue("postgres_url"), create=True)
    else:
        s = SQLiteStore(f"sqlite:///{tmp_path / 'contract.db'}", create=True)
    yield s
    s.close()


class TestLedgerStoreContract:
    """What every ledger store promises the ledger."""

    def test_new_store_is_empty(self, store: LedgerStore) -> None:
        """A new store has no entries, no checkpoints and names its location."""
        assert store.size() == 0
        assert list(store.iter_entries()) == []
        assert store.entries_of_types(TYPES) == []
        assert store.latest_checkpoint() is None
        assert store.checkpoint_at(0) is None
        assert list(store.iter_checkpoints()) == []
        assert store.read_nodes([]) == []
        assert isinstance(store.url, str)
        assert store.url

    def test_batches_append_in_order(self, store: LedgerStore) -> None:
        """Appended batches are stored verbatim, in order, with their nodes and checkpoints."""
        w = Writer(store)
        for n in (1, 3, 1, 7, 4):
            w.write(n)
            assert store.size() == len(w.entries)
        assert list(store.iter_entries()) == w.entries
        for _, raw in store.iter_entries():
            assert type(raw) is bytes
        coords = list(w.nodes)
        assert store.read_nodes(coords) == [w.nodes[c] for c in coords]
        size = store.size()
        root = Frontier(size, store.read_nodes(frontier_coords(size))).root()
        assert root == w.frontier.root()

    def test_stale_empty_batch_conflicts(self, store: LedgerStore) -> None:
        """The expected size is checked before anything else, whatever the batch holds."""
        Writer(store).write(2)
        with pytest.raises(ConflictError):
            store.append(AppendBatch(0, [], [], (0, "x\n")))
        assert store.size() == 2

    @pytest.mark.parametrize("expected", [0, 2, 4, 100])
    def test_expected_size_conflict(self, store: LedgerStore, expected: int) -> None:
        """A batch prepared against a stale or future size is refused and writes nothing."""
        w = Writer(store)
        w.write(3)
        before = _state(store)
        good = w.batch(1)
        stale = AppendBatch(expected, good.entries, good.nodes, good.checkpoint)
        with pytest.raises(ConflictError):
            store.append(stale)
        assert _state(store) == before
        w.write(1)  # the store still accepts the right batch afterwards
        assert store.size() == 4

    @pytest.mark.parametrize("batch_size", [1, 3])
    def test_a_batch_built_on_another_history_conflicts(
        self, store: LedgerStore, batch_size: int
    ) -> None:
        """A batch whose expected last leaf is not the stored one (a view of the same size but
        of another history) is refused and writes nothing; the right leaf is accepted."""
        w = Writer(store)
        w.write(2)
        w.write(1)
        before = _state(store)
        good = w.batch(batch_size)
        other = dataclasses.replace(good, expected_last_leaf=leaf_hash(b"another entry 2"))
        with pytest.raises(ConflictError, match="entry 2 is not the one"):
            store.append(other)
        assert _state(store) == before
        right = dataclasses.replace(good, expected_last_leaf=leaf_hash(w.entries[-1][1]))
        store.append(right)
        assert store.size() == 3 + batch_size

    def test_same_batch_twice_conflicts(self, store: LedgerStore) -> None:
        """Two appenders racing with the same batch: the second gets ConflictError."""
        w = Writer(store)
        w.write(1)
        batch = w.write(2)
        before = _state(store)
        with pytest.raises(ConflictError):
            store.append(batch)
        assert _state(store) == before

    @pytest.mark.parametrize("seqs", [[3, 5], [4], [3, 3], [2]], ids=["gap", "skip", "dup", "old"])
    def test_entries_must_follow_the_expected_size(
        self, store: LedgerStore, seqs: list[int]
    ) -> None:
        """A batch whose entry positions do not continue the ledger is refused, writing nothing."""
        w = Writer(store)
        w.write(3)
        before = _state(store)
        entries = [
            NewEntry(s, f"bad-{i}".encode(), "note.recorded", "k") for i, s in enumerate(seqs)
        ]
        with pytest.raises(ConflictError):
            store.append(AppendBatch(3, entries, [], (3 + len(seqs), "x\n")))
        assert _state(store) == before

    def test_iter_entries_ranges_and_chunks(self, store: LedgerStore) -> None:
        """Any [start, end) range streams the same entries whatever the chunk size."""
        w = Writer(store)
        w.write(10)
        w.write(7)
        everything = w.entries
        for chunk in (1, 2, 3, 5, 16, 2048):
            assert list(store.iter_entries(chunk=chunk)) == everything
            for start, end in [(0, 17), (0, 1), (3, 9), (16, 17), (5, 5), (9, 3), (0, None)]:
                got = list(store.iter_entries(start, end, chunk=chunk))
                assert got == everything[start:end], (start, end, chunk)
        assert list(store.iter_entries(17)) == []
        assert list(store.iter_entries(30, 40)) == []
        assert list(store.iter_entries(15, 40)) == everything[15:]

    def test_iter_entries_is_lazy(self, store: LedgerStore) -> None:
        """Entries are streamed: a reader can stop after the first one."""
        w = Writer(store)
        w.write(5)
        it = store.iter_entries(chunk=2)
        assert next(it) == w.entries[0]

    def test_entries_of_types(self, store: LedgerStore) -> None:
        """Entries of given types come back in order, optionally below an end position."""
        w = Writer(store)
        w.write(4)
        w.write(8)
        typed = list(zip(w.entries, w.types, strict=True))

        def expect(types: tuple[str, ...], end: int | None = None) -> list[tuple[int, bytes]]:
            return [e for e, t in typed if t in types and (end is None or e[0] < end)]

        for types in [("note.recorded",), ("signer.added", "ledger.genesis"), TYPES, ("none",)]:
            assert store.entries_of_types(types) == expect(types)
            for end in (0, 1, 5, 12, 50):
                assert store.entries_of_types(types, end=end) == expect(types, end)
        assert store.entries_of_types([]) == []

    def test_read_nodes_in_the_order_asked(self, store: LedgerStore) -> None:
        """Nodes come back in the order asked, duplicates included."""
        w = Writer(store)
        w.write(9)
        coords = [(3, 0), (0, 8), (0, 0), (3, 0), (1, 2)]
        assert store.read_nodes(coords) == [w.nodes[c] for c in coords]

    def test_read_many_nodes(self, store: LedgerStore) -> None:
        """A request for more nodes than one SQL statement binds is still answered in full."""
        w = Writer(store)
        w.write(1500)
        coords = sorted(w.nodes, reverse=True)
        assert len(coords) > 1000
        assert store.read_nodes(coords) == [w.nodes[c] for c in coords]

    @pytest.mark.parametrize("missing", [[(0, 5)], [(3, 0)], [(0, 0), (0, 99)], [(-1, 0)]])
    def test_read_nodes_missing_is_unavailable(
        self, store: LedgerStore, missing: list[tuple[int, int]]
    ) -> None:
        """A node the store does not hold is a LedgerUnavailableError, never a wrong hash."""
        Writer(store).write(5)
        with pytest.raises(LedgerUnavailableError):
            store.read_nodes(missing)

    def test_checkpoints(self, store: LedgerStore) -> None:
        """The latest checkpoint, the one at a size and those from a size are all retrievable."""
        w = Writer(store)
        for n in (1, 2, 3, 4):
            w.write(n)
            assert store.latest_checkpoint() == (store.size(), w.checkpoints[store.size()])
        sizes = sorted(w.checkpoints)
        assert sizes == [1, 3, 6, 10]
        for size in sizes:
            assert store.checkpoint_at(size) == w.checkpoints[size]
        for size in (0, 2, 4, 11):
            assert store.checkpoint_at(size) is None
        for start in (0, 1, 2, 3, 6, 7, 10, 11):
            want = [(s, w.checkpoints[s]) for s in sizes if s >= start]
            assert list(store.iter_checkpoints(start)) == want
        assert list(store.iter_checkpoints()) == [(s, w.checkpoints[s]) for s in sizes]

    def test_failed_checkpoint_insert_leaves_nothing(self, store: LedgerStore) -> None:
        """A batch whose checkpoint cannot be stored (its size is taken) is refused whole."""
        w = Writer(store)
        w.write(2)
        w.write(1)
        before = _state(store)
        batch = w.batch(2, checkpoint_size=3)  # a checkpoint for size 3 exists already
        with pytest.raises(LedgerError):
            store.append(batch)
        assert _state(store) == before
        assert store.checkpoint_at(3) == w.checkpoints[3]
        with pytest.raises(LedgerUnavailableError):
            store.read_nodes([(0, 3)])
        w.write(2)  # and the store still accepts a good batch afterwards
        assert store.size() == 5


# -- SQLite only ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A SQLite ledger with a few entries, closed again."""
    path = tmp_path / "ledger.db"
    s = SQLiteStore(f"sqlite:///{path}", create=True)
    try:
        w = Writer(s)
        w.write(3)
        w.write(2)
    finally:
        s.close()
    return path


def _connect(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def _files(path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.parent.iterdir())
        if p.name.startswith(path.name)
    }


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET {column} = {column}",
        "DELETE FROM {table}",
        "DELETE FROM {table} {where}",
    ],
    ids=["update", "delete-all", "delete-one"],
)
def test_sqlite_triggers_refuse_update_and_delete(
    sqlite_path: Path, table: str, statement: str
) -> None:
    """Even a direct SQL client cannot UPDATE or DELETE a row of any ledger table."""
    # S608: every table name comes from the fixed APPEND_ONLY_TABLES constant, not from input.
    select_all = f"SELECT * FROM {table} ORDER BY 1, 2"  # noqa: S608
    with _connect(sqlite_path) as conn:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        before = conn.execute(select_all).fetchall()
        assert before, f"{table} has no rows to protect"
        where = f"WHERE {columns[0]} = (SELECT min({columns[0]}) FROM {table})"  # noqa: S608
        sql = statement.format(table=table, column=columns[-1], where=where)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
        assert conn.execute(select_all).fetchall() == before


def test_sqlite_pragmas(tmp_path: Path) -> None:
    """Every SQLite ledger connection runs in WAL mode with synchronous=FULL (durable commits)."""
    s = SQLiteStore(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    try:
        # Private attribute: synchronous is per connection, so only the store's own one can tell.
        raw = s._raw
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        s.close()


def test_sqlite_wal_stays_small_while_appending(tmp_path: Path) -> None:
    """A long run of appends keeps the -wal file bounded (about 2 MiB), not growing with the
    ledger: the WAL is copied back into the database every 128 frames and then reused."""
    path = tmp_path / "w.db"
    s = SQLiteStore(f"sqlite:///{path}", create=True)
    try:
        w = Writer(s)
        for _ in range(600):  # 600 commits of one 16 KiB-page row each: ~10 MB of WAL frames
            w.write(1)
        wal = path.with_name("w.db-wal").stat().st_size
        assert 0 < wal < 3 * 1024 * 1024, wal
        assert s.size() == 600
    finally:
        s.close()


def test_sqlite_append_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    """An append that cannot get the write lock within the busy timeout is a conflict (which the
    ledger retries) and writes nothing."""
    path = tmp_path / "l.db"
    s = SQLiteStore(f"sqlite:///{path}", create=True, busy_timeout_ms=50)
    try:
        w = Writer(s)
        w.write(2)
        before = _state(s)
        with _connect(path) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(ConflictError, match="locked"):
                s.append(w.batch(1))
            other.execute("ROLLBACK")
        assert _state(s) == before
        w.write(1)
        assert s.size() == 3
    finally:
        s.close()


def test_sqlite_missing_file_without_create(tmp_path: Path) -> None:
    """Opening a ledger that does not exist fails (exit 5) and creates neither file nor folder."""
    path = tmp_path / "absent" / "ledger.db"
    with pytest.raises(LedgerUnavailableError, match="no ledger at") as info:
        SQLiteStore(f"sqlite:///{path}")
    assert info.value.exit_code == 5
    assert not path.parent.exists()
    with pytest.raises(LedgerUnavailableError):
        open_store(f"sqlite:///{tmp_path / 'x.db'}")
    assert list(tmp_path.iterdir()) == []


def test_sqlite_non_ledger_file_is_refused_and_untouched(tmp_path: Path) -> None:
    """Another application's SQLite file is refused as a ledger and left exactly as it was."""
    path = tmp_path / "app.db"
    with _connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    before = _files(path)
    with pytest.raises(LedgerUnavailableError, match="not a Starter ledger"):
        SQLiteStore(f"sqlite:///{path}")
    assert _files(path) == before
    with _connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_sqlite_garbage_file_is_refused_and_untouched(tmp_path: Path) -> None:
    """A file that is not SQLite at all is refused as unavailable and left byte for byte."""
    path = tmp_path / "garbage.db"
    path.write_bytes(bytes(range(256)) * 16)
    before = _files(path)
    with pytest.raises(LedgerUnavailableError, match="cannot use the ledger"):
        SQLiteStore(f"sqlite:///{path}")
    assert _files(path) == before


def test_sqlite_newer_schema_is_refused(sqlite_path: Path) -> None:
    """A ledger written by a newer version of the tool is refused, not misread."""
    with _connect(sqlite_path) as conn:
        conn.execute(
            "INSERT INTO ledger_schema(version, applied_at) VALUES (?, '2030-01-01T00:00:00')",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(LedgerUnavailableError, match="newer") as info:
        SQLiteStore(f"sqlite:///{sqlite_path}")
    assert info.value.hint is not None
    assert "upgrade" in info.value.hint


def test_sqlite_reopen_keeps_data(sqlite_path: Path) -> None:
    """A ledger closed and opened again holds exactly what was written, and accepts more."""
    url = f"sqlite:///{sqlite_path}"
    first = SQLiteStore(url)
    try:
        before = _state(first)
        assert first.size() == 5
    finally:
        first.close()
    again = SQLiteStore(url, create=True)  # create on an existing ledger changes nothing
    try:
        assert _state(again) == before
        with _connect(sqlite_path) as conn:
            version = conn.execute("SELECT max(version) FROM ledger_schema").fetchone()[0]
            assert version == SCHEMA_VERSION
            count = conn.execute("SELECT count(*) FROM ledger_schema").fetchone()[0]
            assert count == SCHEMA_VERSION
    finally:
        again.close()


def test_a_version_1_ledger_is_migrated_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger written by schema version 1 opens under this version: migrated in place, its
    rows untouched, the key-event index added."""
    from starter_ledger.storage import _schema, _sql

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with monkeypatch.context() as m:
        m.setattr(_sql, "SCHEMA_VERSION", 1)
        m.setattr(_sql, "MIGRATIONS", _schema.MIGRATIONS[:1])
        old = SQLiteStore(url, create=True)
        old.close()
    store = SQLiteStore(url)
    store.close()
    with _connect(tmp_path / "old.db") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM ledger_schema ORDER BY 1")]
        assert versions == [1, 2]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"ledger_signer_events", "ledger_key_events"} <= names


def test_open_store_unknown_scheme_names_known_ones() -> None:
    """An unknown ledger URL scheme fails (exit 5) listing the schemes that exist."""
    with pytest.raises(LedgerUnavailableError, match="unknown ledger URL scheme 'ftp'") as info:
        open_store("ftp://example.com/ledger")
    assert info.value.exit_code == 5
    assert info.value.hint is not None
    assert "memory://" in info.value.hint
    assert "sqlite://" in info.value.hint
