"""``postgresql://USER@HOST:PORT/DB`` ledger storage: one ledger shared by many machines.

For: several hosts appending to and reading one ledger. An append is one transaction that takes
``LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE`` (writers queue, readers do not wait),
inserts one row per entry (the first one only if the size and the last entry are the ones the
appender built on) and commits (``synchronous_commit`` as the server is
configured; the default is durable). A writer that cannot get the lock within the lock timeout
gets a conflict the caller may retry. Triggers reject UPDATE, DELETE and TRUNCATE. The schema is
the one SQLite uses (``_schema.py``); ``?options=-csearch_path%3DNAME`` in the URL selects a
PostgreSQL schema. psycopg and SQLAlchemy exceptions never escape this module.
Not for: the embedded default (SQLite).
"""

from __future__ import annotations

import psycopg
import psycopg.errors
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from starter_ledger.errors import LedgerUnavailableError
from starter_ledger.storage._sql import SQLStore

__all__ = ["PostgresStore"]

#: How long a writer waits for the write lock, in milliseconds.
LOCK_TIMEOUT_MS = 10_000
_MIGRATION_LOCK = 0x5354_4C47  # pg_advisory_xact_lock key taken while migrating


class PostgresStore(SQLStore):
    """A ledger in a PostgreSQL database (or one schema of it)."""

    Error = psycopg.Error
    IntegrityError = psycopg.IntegrityError
    placeholder = "%s"

    def __init__(
        self,
        url: str,
        *,
        create: bool = False,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
        read_only: bool = False,
    ) -> None:
        self._url = url
        self._read_only = read_only
        try:
            parsed = make_url(url)
        except ArgumentError as e:
            raise LedgerUnavailableError(f"PostgreSQL ledger URL is malformed: {e}") from None
        self._safe = parsed.render_as_string(hide_password=True)
        self._in_txn = False
        self._txn_size = None
        engine = create_engine(parsed.set(drivername="postgresql+psycopg"), poolclass=NullPool)
        self._open(engine, [f"SET lock_timeout = {int(lock_timeout_ms)}"], create)

    @property
    def url(self) -> str:
        return self._safe

    @property
    def _where(self) -> str:
        return self._safe

    def _begin(self) -> None:
        self._raw.execute("BEGIN")
        self._raw.execute("LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE")

    def _is_lock_timeout(self, e: Exception) -> bool:
        return isinstance(e, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected)

    def _schema_version(self) -> int | None:
        found = self._raw.execute("SELECT to_regclass('ledger_schema')").fetchone()[0]
        if found is None:
            return None
        row = self._raw.execute("SELECT coalesce(max(version), 0) FROM ledger_schema").fetchone()
        return int(row[0])

    def _begin_migration(self) -> None:
        self._raw.execute("BEGIN")
        self._raw.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
