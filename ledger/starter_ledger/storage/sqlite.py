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
from starter_ledger.storage._schema import MIGRATIONS, SCHEMA_VERSION
from starter_ledger.storage.interface import AppendBatch

__all__ = ["SQLiteStore"]

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
        if self.path.exists() and self.path.stat().st_size > 0:
            self._probe()
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LedgerUnavailableError(
                    f"cannot create the folder of {self.path}: {e.strerror}"
                ) from None
        self._in_txn = False
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
        try:
            row = self._raw.execute("SELECT max(seq) FROM ledger_entries").fetchone()
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        return 0 if row[0] is None else int(row[0]) + 1

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

    def append(self, batch: AppendBatch) -> None:
        with self.writing():
            self._insert(batch)

    def _insert(self, batch: AppendBatch) -> None:
        raw = self._raw
        row = raw.execute("SELECT max(seq) FROM ledger_entries").fetchone()
        size = 0 if row[0] is None else int(row[0]) + 1
        if size != batch.expected_size:
            raise ConflictError(
                f"ledger has {size} entries, the appender expected {batch.expected_size}",
                hint="re-read the ledger and append again",
            )
        for i, new in enumerate(batch.entries):
            if new.seq != batch.expected_size + i:
                raise ConflictError(f"entry seq {new.seq} is not the next position")
        try:
            raw.executemany(
                "INSERT INTO ledger_entries(seq, entry, type, kid) VALUES (?, ?, ?, ?)",
                [(e.seq, e.entry, e.type, e.kid) for e in batch.entries],
            )
            raw.executemany(
                "INSERT INTO ledger_nodes(level, idx, hash) VALUES (?, ?, ?)", batch.nodes
            )
            raw.execute(
                "INSERT INTO ledger_checkpoints(size, note) VALUES (?, ?)", batch.checkpoint
            )
        except sqlite3.IntegrityError as e:
            raise ConflictError(
                f"another appender wrote position {batch.expected_size} first: {e}",
                hint="re-read the ledger and append again",
            ) from None

    def iter_entries(
        self, start: int = 0, end: int | None = None, chunk: int = 2048
    ) -> Iterator[tuple[int, bytes]]:
        stop = self.size() if end is None else end
        pos = start
        try:
            while pos < stop:
                upto = min(pos + chunk, stop)
                rows = self._raw.execute(
                    "SELECT seq, entry FROM ledger_entries WHERE seq >= ? AND seq < ? ORDER BY seq",
                    (pos, upto),
                ).fetchall()
                yield from rows
                pos = upto
        except sqlite3.Error as e:
            raise self._unavailable(e) from None

    def entries_of_types(
        self, types: Sequence[str], end: int | None = None
    ) -> list[tuple[int, bytes]]:
        marks = ",".join("?" * len(types))
        sql = f"SELECT seq, entry FROM ledger_entries WHERE type IN ({marks})"
        params: list[Any] = list(types)
        if end is not None:
            sql += " AND seq < ?"
            params.append(end)
        try:
            return list(self._raw.execute(sql + " ORDER BY seq", params).fetchall())
        except sqlite3.Error as e:
            raise self._unavailable(e) from None

    def read_nodes(self, coords: Sequence[NodeCoord]) -> list[bytes]:
        found: dict[NodeCoord, bytes] = {}
        try:
            for i in range(0, len(coords), 400):
                part = coords[i : i + 400]
                where = " OR ".join("(level = ? AND idx = ?)" for _ in part)
                params = [v for c in part for v in c]
                for level, idx, h in self._raw.execute(
                    f"SELECT level, idx, hash FROM ledger_nodes WHERE {where}", params
                ):
                    found[(level, idx)] = h
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        missing = [c for c in coords if c not in found]
        if missing:
            raise LedgerUnavailableError(
                f"tree node(s) {missing[:3]} missing from {self.path}",
                hint="the ledger is damaged; run 'starter-cli ledger verify'",
            )
        return [found[c] for c in coords]

    def latest_checkpoint(self) -> tuple[int, str] | None:
        try:
            row = self._raw.execute(
                "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        return None if row is None else (int(row[0]), str(row[1]))

    def checkpoint_at(self, size: int) -> str | None:
        try:
            row = self._raw.execute(
                "SELECT note FROM ledger_checkpoints WHERE size = ?", (size,)
            ).fetchone()
        except sqlite3.Error as e:
            raise self._unavailable(e) from None
        return None if row is None else str(row[0])

    def iter_checkpoints(self, start_size: int = 0) -> Iterator[tuple[int, str]]:
        pos = start_size
        try:
            while True:
                rows = self._raw.execute(
                    "SELECT size, note FROM ledger_checkpoints WHERE size >= ? "
                    "ORDER BY size LIMIT 4096",
                    (pos,),
                ).fetchall()
                if not rows:
                    return
                yield from rows
                pos = rows[-1][0] + 1
        except sqlite3.Error as e:
            raise self._unavailable(e) from None

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._engine.dispose()
