"""``sqlite:///PATH`` ledger storage: one SQLite file in WAL mode with synchronous=FULL.

For: the embedded default. Each append is one transaction that checks the expected size
(optimistic concurrency), inserts the entries with their tree nodes and the checkpoint, and commits
durably (WAL + ``synchronous=FULL``: the commit is on disk when ``append`` returns): a single
entry is one conditional INSERT statement, a batch a ``BEGIN IMMEDIATE`` transaction. The WAL is
copied back every 128 frames so that it stays small and is overwritten in place (ADR 0012).
Triggers reject UPDATE and DELETE. A busy database is waited for up to the busy timeout, then
reported as a conflict the caller may retry. SQLAlchemy and sqlite3 exceptions never escape this
module. Not for: many machines sharing one ledger over a network file system.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from starter_ledger.errors import LedgerUnavailableError
from starter_ledger.storage._sql import SQLStore

__all__ = ["SQLiteStore"]


#: SQLite page size of new ledger files.
PAGE_SIZE = 16384

#: WAL frames (pages) after which a commit copies the WAL back into the database file. SQLite's
#: default, 1,000 frames, lets the WAL of 16 KiB pages grow to 16 MiB, and a commit that extends
#: the file costs an fdatasync of its size as well; at 128 frames (2 MiB) the file soon stops
#: growing and later commits overwrite it in place (docs/adr/0012-append-fast-path.md).
WAL_AUTOCHECKPOINT_PAGES = 128

#: How long a writer waits for another writer's transaction, in milliseconds.
BUSY_TIMEOUT_MS = 10_000


def _path_of(url: str) -> Path:
    if not url.startswith("sqlite:///"):
        raise LedgerUnavailableError(
            f"SQLite ledger URL {url!r} must look like sqlite:///relative.db or sqlite:////abs.db"
        )
    return Path(url[len("sqlite:///") :].split("?", 1)[0])


class SQLiteStore(SQLStore):
    """A ledger in one SQLite file."""

    Error = sqlite3.Error
    IntegrityError = sqlite3.IntegrityError
    #: SQLite runs a statement outside BEGIN as its own transaction under the one write lock.
    _statement_is_transaction = True

    def __init__(
        self,
        url: str,
        *,
        create: bool = False,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        read_only: bool = False,
    ) -> None:
        self._url = url
        self._read_only = read_only
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
        self._open(self._make_engine(busy_timeout_ms), (), create)

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
            if not self._read_only:  # a reader leaves the file's page size and journal alone
                # Takes effect only on a new file: rows of ~2.4 KB pack 6 to a 16 KiB page, where
                # a 4 KiB page would hold one and waste the rest. Commit cost is the same.
                cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.close()

        return engine

    @property
    def _where(self) -> str:
        return str(self.path)

    def _begin(self) -> None:
        self._raw.execute("BEGIN IMMEDIATE")

    def _is_lock_timeout(self, e: Exception) -> bool:
        return isinstance(e, sqlite3.OperationalError) and "locked" in str(e)

    def _schema_version(self) -> int | None:
        cur = self._raw.cursor()
        has_schema = cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='ledger_schema'"
        ).fetchone()
        if not has_schema:
            return None
        return int(cur.execute("SELECT coalesce(max(version), 0) FROM ledger_schema").fetchone()[0])

    def _begin_migration(self) -> None:
        self._raw.execute("BEGIN IMMEDIATE")

    @property
    def url(self) -> str:
        return self._url
