"""``sqlite:///PATH`` ledger storage: one SQLite file in WAL mode with synchronous=FULL.

For: the embedded default. Each append is one ``BEGIN IMMEDIATE`` transaction that checks the
expected size (optimistic concurrency), inserts the entries, the tree nodes and the checkpoint, and
commits durably (WAL + ``synchronous=FULL``: the commit is on disk when ``append`` returns).
Triggers reject UPDATE and DELETE. A busy database is waited for up to the busy timeout, then
reported as a conflict the caller may retry. SQLAlchemy and sqlite3 exceptions never escape this
module. Not for: many machines sharing one ledger over a network file system.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from starter_ledger.errors import ConflictError, LedgerUnavailableError
from starter_ledger.merkle import NodeCoord
from starter_ledger.storage._schema import MIGRATIONS, SCHEMA_VERSION, SIGNER_TYPES_SQL
from starter_ledger.storage.interface import AppendBatch
from starter_ledger.trust import SIGNER_EVENT_TYPES

__all__ = ["SQLiteStore"]


def _as_bytes(value: object) -> bytes:
    """Column values as the bytes verification expects, whatever type a damaged file stored."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _rows(batch: AppendBatch) -> list[tuple[int, bytes, str, bytes, str | None]]:
    """One row per entry: its nodes (leaf first, then parents) and, on the last, the checkpoint."""
    first = batch.expected_size
    per_entry: list[list[bytes]] = [[] for _ in batch.entries]
    for level, idx, h in batch.nodes:
        owner = ((idx + 1) << level) - 1 - first
        if not 0 <= owner < len(per_entry) or len(per_entry[owner]) != level:
            raise ConflictError(f"tree node ({level}, {idx}) does not belong to this batch")
        per_entry[owner].append(h)
    size, note = batch.checkpoint
    if size != first + len(batch.entries):
        raise ConflictError(f"checkpoint size {size} is not the size after this batch")
    rows = []
    for i, e in enumerate(batch.entries):
        if e.seq != first + i:
            raise ConflictError(f"entry seq {e.seq} is not the next position")
        expected = 1 + ((e.seq + 1) & ~e.seq).bit_length() - 1
        if len(per_entry[i]) != expected:
            raise ConflictError(
                f"entry {e.seq} completes {expected} tree nodes, not {len(per_entry[i])}"
            )
        last = i == len(batch.entries) - 1
        rows.append((e.seq, e.entry, e.type, b"".join(per_entry[i]), note if last else None))
    return rows


#: SQLite page size of new ledger files.
PAGE_SIZE = 16384

#: How long a writer waits for another writer's transaction, in milliseconds.
BUSY_TIMEOUT_MS = 10_000


def _path_of(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise LedgerUnavailableError(
            f"SQLite ledger URL {url!r} must look like sqlite:///relative.db or sqlite:////abs.db"
        )
    return Path(url[len("sqlite:///") :].split("?", 1)[0])


class SQLiteStore:
    """A ledger in one SQLite file."""

    def __init__(
        self, url: str, *, create: bool = False, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        self._url = url
        self.path = _path_of(url)
        if not create and not self.path.exists():
            raise LedgerUnavailableError(
                f"no ledger at {self.path}",
                hint="create one with 'starter-cli ledger init', or pass --ledger / "
                "STARTER_LEDGER_URL",
            )
        if self.path.exists():
            if self.path.stat().st_size > 0:
                self._probe()
            elif not create:
                raise LedgerUnavailableError(
                    f"{self.path} is an empty file, not a Starter ledger",
                    hint="point --ledger at a ledger created by 'starter-cli ledger init'",
                )
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LedgerUnavailableError(
                    f"cannot create the folder of {self.path}: {e.strerror}"
                ) from None
        self._in_txn = False
        self._txn_size: int | None = None
        self._engine = self._make_engine(busy_timeout_ms)
        try:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._raw: Any = self._conn.connection.dbapi_connection
            self._migrate(create)
        except (SQLAlchemyError, sqlite3.Error) as e:
            self._engine.dispose()
            raise self._unavailable(e) from None
        except BaseException:
            self._engine.dispose()
            raise

    def _probe(self) -> None:
        """Refuse a file that is not a Starter ledger before anything writes to it."""
        try:
            probe = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                found = probe.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='ledger_schema'"
                ).fetchone()
            finally:
                probe.close()
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        if not found:
            raise LedgerUnavailableError(
                f"{self.path} is not a Starter ledger (no ledger_schema table)",
                hint="point --ledger at a ledger created by 'starter-cli ledger init'",
            )

    def _make_engine(self, busy_timeout_ms: int) -> Engine:
        engine = create_engine(
            f"sqlite:///{self.path}",
            poolclass=NullPool,
            connect_args={"timeout": busy_timeout_ms / 1000, "isolation_level": None},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            cur = dbapi_conn.cursor()
            # Takes effect only on a new file: rows of ~2.4 KB pack 6 to a 16 KiB page, where a
            # 4 KiB page would hold one and waste the rest. Commit cost is the same.
            cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.close()

        return engine

    def _unavailable(self, e: BaseException) -> LedgerUnavailableError:
        detail = str(getattr(e, "orig", e)) or type(e).__name__
        return LedgerUnavailableError(
            f"cannot use the ledger at {self.path}: {detail}",
            hint="check the path and its permissions, or restore it from an export",
        )

    def _schema_version(self) -> int | None:
        cur = self._raw.cursor()
        has_schema = cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='ledger_schema'"
        ).fetchone()
        if not has_schema:
            return None
        return int(cur.execute("SELECT coalesce(max(version), 0) FROM ledger_schema").fetchone()[0])

    def _migrate(self, create: bool) -> None:
        current = self._schema_version()
        if current is None and not create:
            raise LedgerUnavailableError(
                f"{self.path} is not a Starter ledger (no ledger_schema table)",
                hint="point --ledger at a ledger created by 'starter-cli ledger init'",
            )
        if (current or 0) > SCHEMA_VERSION:
            raise LedgerUnavailableError(
                f"ledger {self.path} has schema version {current}, newer than this tool's "
                f"{SCHEMA_VERSION}",
                hint="upgrade starter-ledger",
            )
        if current == SCHEMA_VERSION:
            return
        self._raw.execute("BEGIN IMMEDIATE")
        try:
            current = self._schema_version() or 0  # another process may have migrated meanwhile
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version - 1](self._conn)
                self._raw.execute(
                    "INSERT INTO ledger_schema(version, applied_at) VALUES (?, ?)",
                    (version, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
                )
            self._raw.execute("COMMIT")
        except BaseException:
            self._raw.execute("ROLLBACK")
            raise

    @property
    def url(self) -> str:
        return self._url

    def size(self) -> int:
        if self._txn_size is not None:
            return self._txn_size  # no other writer can move it while we hold the lock
        try:
            row = self._raw.execute("SELECT max(seq) FROM ledger_entries").fetchone()
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        size = 0 if row[0] is None else int(row[0]) + 1
        if self._in_txn:
            self._txn_size = size
        return size

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        if self._in_txn:
            yield
            return
        raw = self._raw
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise ConflictError(
                f"ledger {self.path} is locked by another writer: {e}",
                hint="try again; another process is appending",
            ) from None
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        self._in_txn = True
        try:
            yield
            raw.execute("COMMIT")
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                raw.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise ConflictError(
                    f"ledger {self.path} is locked: {e}", hint="try again"
                ) from None
            if isinstance(e, sqlite3.Error):
                raise self._unavailable(e) from None
            raise
        finally:
            self._in_txn = False
            self._txn_size = None

    def append(self, batch: AppendBatch) -> None:
        with self.writing():
            self._insert(batch)

    def _insert(self, batch: AppendBatch) -> None:
        raw = self._raw
        size = self.size()
        if size != batch.expected_size:
            raise ConflictError(
                f"ledger has {size} entries, the appender expected {batch.expected_size}",
                hint="re-read the ledger and append again",
            )
        rows = _rows(batch)
        try:
            raw.executemany(
                "INSERT INTO ledger_entries(seq, entry, type, nodes, checkpoint) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        except sqlite3.IntegrityError as e:
            raise ConflictError(
                f"another appender wrote position {batch.expected_size} first: {e}",
                hint="re-read the ledger and append again",
            ) from None
        self._txn_size = size + len(batch.entries)

    def iter_entries(
        self, start: int = 0, end: int | None = None, chunk: int = 2048
    ) -> Iterator[tuple[int, bytes]]:
        for seq, entry, _, _ in self.iter_rows(start, end, chunk):
            yield seq, entry

    def iter_rows(
        self, start: int = 0, end: int | None = None, chunk: int = 2048
    ) -> Iterator[tuple[int, bytes, str | None, bytes]]:
        """(seq, entry bytes, checkpoint or None, stored tree nodes) in order, in one pass."""
        stop = self.size() if end is None else end
        pos = start
        try:
            while pos < stop:
                # Paged by the last row seen, not by position: a sparse seq costs nothing extra.
                rows = self._raw.execute(
                    "SELECT seq, entry, checkpoint, nodes FROM ledger_entries "
                    "WHERE seq >= ? AND seq < ? ORDER BY seq LIMIT ?",
                    (pos, stop, chunk),
                ).fetchall()
                if not rows:
                    return
                for seq, entry, checkpoint, nodes in rows:
                    yield seq, _as_bytes(entry), _as_text(checkpoint), _as_bytes(nodes)
                pos = rows[-1][0] + 1
        except sqlite3.Error as e:
            raise self._unavailable(e) from None

    def entries_of_types(
        self, types: Sequence[str], end: int | None = None
    ) -> list[tuple[int, bytes]]:
        stop = self.size() if end is None else end
        try:
            if set(types) == set(SIGNER_EVENT_TYPES):
                # Written exactly like the partial index's WHERE, so SQLite uses the index.
                sql = f"SELECT seq, entry FROM ledger_entries WHERE type IN {SIGNER_TYPES_SQL}"
                found = self._raw.execute(sql + " AND seq < ? ORDER BY seq", (stop,)).fetchall()
            else:
                marks = ",".join("?" * len(types))
                found = self._raw.execute(
                    f"SELECT seq, entry FROM ledger_entries WHERE type IN ({marks}) AND seq < ? "
                    "ORDER BY seq",
                    [*types, stop],
                ).fetchall()
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        return [(seq, _as_bytes(entry)) for seq, entry in found]

    def read_nodes(self, coords: Sequence[NodeCoord]) -> list[bytes]:
        # Node (level, idx) was completed by entry ((idx + 1) << level) - 1, at offset 32 * level.
        if any(level < 0 or idx < 0 for level, idx in coords):
            raise LedgerUnavailableError(f"tree node coordinates {list(coords)[:3]} are invalid")
        owners = sorted({((idx + 1) << level) - 1 for level, idx in coords})
        blobs: dict[int, bytes] = {}
        try:
            for i in range(0, len(owners), 500):
                part = owners[i : i + 500]
                marks = ",".join("?" * len(part))
                blobs.update(
                    self._raw.execute(
                        f"SELECT seq, nodes FROM ledger_entries WHERE seq IN ({marks})", part
                    ).fetchall()
                )
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        out = []
        for level, idx in coords:
            blob = blobs.get(((idx + 1) << level) - 1, b"")
            h = blob[32 * level : 32 * level + 32] if isinstance(blob, bytes) else b""
            if len(h) != 32:
                raise LedgerUnavailableError(
                    f"tree node ({level}, {idx}) is missing from {self.path}",
                    hint="the ledger is damaged; run 'starter-cli ledger verify'",
                )
            out.append(h)
        return out

    def latest_checkpoint(self) -> tuple[int, str] | None:
        try:
            row = self._raw.execute(
                "SELECT seq, checkpoint FROM ledger_entries WHERE checkpoint IS NOT NULL "
                "ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        return None if row is None else (int(row[0]) + 1, str(row[1]))

    def checkpoint_at(self, size: int) -> str | None:
        try:
            row = self._raw.execute(
                "SELECT checkpoint FROM ledger_entries WHERE seq = ?", (size - 1,)
            ).fetchone()
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        return None if row is None or row[0] is None else str(row[0])

    def iter_checkpoints(self, start_size: int = 0) -> Iterator[tuple[int, str]]:
        for seq, _, checkpoint, _ in self.iter_rows(max(start_size - 1, 0)):
            if checkpoint is not None and seq + 1 >= start_size:
                yield seq + 1, checkpoint

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._engine.dispose()
