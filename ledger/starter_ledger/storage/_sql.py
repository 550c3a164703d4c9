"""What the SQL ledger stores (SQLite, PostgreSQL) share: the queries over ``ledger_entries``.

For: ``SQLStore``, the dialect-independent part of a SQL store: reading the size, rows, signer
events, tree nodes and checkpoints, and appending a batch as one row per entry. The first row is
written by a conditional INSERT that checks the ledger's size and its last entry's leaf hash in
the same statement, so a batch prepared against a stale view writes nothing. A batch goes inside
``writing()``; a single entry on a dialect where one statement is a whole serialised transaction
(SQLite) is that one statement.
A dialect supplies the connection (``_raw``, a DB-API connection in autocommit mode), ``_begin``
(start a transaction holding the write lock), its error classes, its placeholder style and how to
recognise a lock timeout. Not for: connecting, migrating or dialect details.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from starter_events.keys import KEY_EVENT_TYPES
from starter_ledger.errors import ConflictError, LedgerUnavailableError
from starter_ledger.merkle import NodeCoord
from starter_ledger.storage._schema import (
    KEY_TYPES_SQL,
    MIGRATIONS,
    SCHEMA_VERSION,
    SIGNER_TYPES_SQL,
)
from starter_ledger.storage.interface import AppendBatch
from starter_ledger.trust import SIGNER_EVENT_TYPES

#: Type sets with a partial index, and the SQL literal the index was created with.
_INDEXED_TYPES = {
    frozenset(SIGNER_EVENT_TYPES): SIGNER_TYPES_SQL,
    frozenset(KEY_EVENT_TYPES): KEY_TYPES_SQL,
}


_INSERT = "INSERT INTO ledger_entries(seq, entry, type, nodes, checkpoint) VALUES (?, ?, ?, ?, ?)"
#: The same, written only when the ledger's size is the last parameter.
_INSERT_IF_NEXT = (
    "INSERT INTO ledger_entries(seq, entry, type, nodes, checkpoint) SELECT ?, ?, ?, ?, ? "
    "WHERE (SELECT coalesce(max(seq) + 1, 0) FROM ledger_entries) = ?"
)
#: The same, and only when entry ``size - 1`` has the leaf hash given last (its ``nodes`` start
#: with it): the parameters after the row are the size, the size again and the leaf hash.
_INSERT_IF_AFTER = (
    _INSERT_IF_NEXT + " AND (SELECT substr(nodes, 1, 32) FROM ledger_entries WHERE seq = ? - 1) = ?"
)


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


class SQLStore:
    """The shared part of the SQL stores; see the module docstring."""

    #: The DB-API error base class and integrity-error class of the driver.
    Error: ClassVar[type[Exception]]
    IntegrityError: ClassVar[type[Exception]]
    #: The driver's placeholder, written as ``?`` in this module's SQL.
    placeholder: ClassVar[str] = "?"

    _raw: Any
    _conn: Any  # the SQLAlchemy connection migrations run on
    _engine: Engine
    _in_txn: bool = False
    _txn_size: int | None = None
    #: Opened by a reader that must never write (no migration; ``append`` refused).
    _read_only: bool = False
    #: True when one statement outside a transaction runs as a whole serialised transaction.
    _statement_is_transaction: ClassVar[bool] = False

    @property
    def _where(self) -> str:
        """Where the ledger is, for messages (no credentials)."""
        raise NotImplementedError

    def _begin(self) -> None:
        """Start a transaction that holds the ledger's write lock."""
        raise NotImplementedError

    def _is_lock_timeout(self, e: Exception) -> bool:
        raise NotImplementedError

    def _schema_version(self) -> int | None:
        """The applied schema version, or None when there is no ``ledger_schema`` table."""
        raise NotImplementedError

    def _begin_migration(self) -> None:
        """Start a transaction that no other process can migrate alongside."""
        raise NotImplementedError

    def _migrate(self, create: bool) -> None:
        """Bring the schema to ``SCHEMA_VERSION``, or refuse a non-ledger or a newer one."""
        current = self._schema_version()
        if current is None and not create:
            raise LedgerUnavailableError(
                f"{self._where} is not a Starter ledger (no ledger_schema table)",
                hint="create one with 'starter-cli ledger init', or point --ledger at a ledger",
            )
        if (current or 0) > SCHEMA_VERSION:
            raise LedgerUnavailableError(
                f"ledger {self._where} has schema version {current}, newer than this tool's "
                f"{SCHEMA_VERSION}",
                hint="upgrade starter-ledger",
            )
        if current == SCHEMA_VERSION:
            return
        if self._read_only:
            raise LedgerUnavailableError(
                f"ledger {self._where} has schema version {current}, older than this tool's "
                f"{SCHEMA_VERSION}, and a read-only reader does not migrate it",
                hint="migrate it once with any writing command, e.g. 'starter-cli ledger verify' "
                "run by the ledger's operator",
            )
        self._begin_migration()
        try:
            current = self._schema_version() or 0  # another process may have migrated meanwhile
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version - 1](self._conn)
                self._raw.execute(
                    self._sql("INSERT INTO ledger_schema(version, applied_at) VALUES (?, ?)"),
                    (version, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
                )
            self._raw.execute("COMMIT")
        except BaseException:
            self._raw.execute("ROLLBACK")
            raise

    def _open(self, engine: Engine, setup: Sequence[str], create: bool) -> None:
        """Connect in autocommit mode, run ``setup`` statements and migrate; on any failure the
        engine is disposed and a driver error becomes ``LedgerUnavailableError``."""
        self._engine = engine
        try:
            self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            raw: Any = self._conn.connection.dbapi_connection
            self._raw = raw
            for statement in setup:
                raw.execute(statement)
            self._migrate(create)
        except (SQLAlchemyError, self.Error) as e:
            engine.dispose()
            raise self._unavailable(e) from None
        except BaseException:
            engine.dispose()
            raise

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._engine.dispose()

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _unavailable(self, e: BaseException) -> LedgerUnavailableError:
        detail = str(getattr(e, "orig", e)).strip() or type(e).__name__
        return LedgerUnavailableError(
            f"cannot use the ledger at {self._where}: {detail}",
            hint="check the location and its permissions, or restore it from an export",
        )

    def size(self) -> int:
        if self._txn_size is not None:
            return self._txn_size  # no other writer can move it while we hold the lock
        try:
            row = self._raw.execute("SELECT max(seq) FROM ledger_entries").fetchone()
        except self.Error as e:
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
            self._begin()
        except self.Error as e:
            if self._is_lock_timeout(e):
                raise ConflictError(
                    f"ledger {self._where} is locked by another writer: {e}",
                    hint="try again; another process is appending",
                ) from None
            raise self._unavailable(e) from None
        self._in_txn = True
        try:
            yield
            raw.execute("COMMIT")
        except BaseException as e:
            with contextlib.suppress(self.Error):
                raw.execute("ROLLBACK")
            if isinstance(e, self.Error):
                raise self._driver_error(e) from None
            raise
        finally:
            self._in_txn = False
            self._txn_size = None

    def append(self, batch: AppendBatch) -> None:
        if self._read_only:
            raise LedgerUnavailableError(
                f"ledger {self._where} was opened read-only", hint="open it without read_only"
            )
        if self._in_txn:
            self._insert(batch)
        elif len(batch.entries) == 1 and self._statement_is_transaction:
            # One conditional INSERT is a whole transaction: it takes the write lock, checks the
            # size, writes the row and commits durably, or writes nothing.
            try:
                self._insert(batch)
            except self.Error as e:
                raise self._driver_error(e) from None
        else:
            with self.writing():
                self._insert(batch)

    def _driver_error(self, e: Exception) -> LedgerUnavailableError | ConflictError:
        """A driver error as the family's error: a lock timeout is a conflict to retry."""
        if self._is_lock_timeout(e):
            return ConflictError(f"ledger {self._where} is locked: {e}", hint="try again")
        return self._unavailable(e)

    def _conflict(self, expected: int) -> ConflictError:
        hint = "re-read the ledger and append again"
        try:
            size: int | None = self.size()
        except LedgerUnavailableError:
            size = None  # still a conflict: the insert wrote nothing
        if size == expected:
            return ConflictError(
                f"entry {expected - 1} is not the one the appender built on", hint=hint
            )
        found = "another size" if size is None else f"{size} entries"
        return ConflictError(f"ledger has {found}, the appender expected {expected}", hint=hint)

    def _insert(self, batch: AppendBatch) -> None:
        rows = _rows(batch)
        known = self._txn_size
        if not rows and known is None:
            known = self.size()
        if known is not None and known != batch.expected_size:
            raise self._conflict(batch.expected_size)
        if not rows:
            return
        cur = self._raw.cursor()
        size, last = batch.expected_size, batch.expected_last_leaf
        # One statement checks the size and the last entry (optimistic concurrency) and writes
        # the first row, or writes nothing.
        params: tuple[object, ...]
        if last is None:
            sql, params = _INSERT_IF_NEXT, (*rows[0], size)
        else:
            sql, params = _INSERT_IF_AFTER, (*rows[0], size, size, last)
        try:
            cur.execute(self._sql(sql), params)
            if cur.rowcount != 1:
                raise self._conflict(batch.expected_size)
            if len(rows) > 1:
                cur.executemany(self._sql(_INSERT), rows[1:])
        except self.IntegrityError as e:
            raise ConflictError(
                f"another appender wrote position {batch.expected_size} first: {e}",
                hint="re-read the ledger and append again",
            ) from None
        if self._in_txn:
            self._txn_size = batch.expected_size + len(rows)

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
                    self._sql(
                        "SELECT seq, entry, checkpoint, nodes FROM ledger_entries "
                        "WHERE seq >= ? AND seq < ? ORDER BY seq LIMIT ?"
                    ),
                    (pos, stop, chunk),
                ).fetchall()
                if not rows:
                    return
                for seq, entry, checkpoint, nodes in rows:
                    yield seq, _as_bytes(entry), _as_text(checkpoint), _as_bytes(nodes)
                pos = rows[-1][0] + 1
        except self.Error as e:
            raise self._unavailable(e) from None

    def entries_of_types(
        self, types: Sequence[str], end: int | None = None
    ) -> list[tuple[int, bytes]]:
        if not types:
            return []
        stop = self.size() if end is None else end
        try:
            indexed = _INDEXED_TYPES.get(frozenset(types))
            if indexed is not None:
                # Written exactly like the partial index's WHERE, so the database uses the index.
                sql = f"SELECT seq, entry FROM ledger_entries WHERE type IN {indexed}"
                found = self._raw.execute(
                    self._sql(sql + " AND seq < ? ORDER BY seq"), (stop,)
                ).fetchall()
            else:
                marks = ",".join("?" * len(types))
                found = self._raw.execute(
                    self._sql(
                        f"SELECT seq, entry FROM ledger_entries WHERE type IN ({marks}) "
                        "AND seq < ? ORDER BY seq"
                    ),
                    [*types, stop],
                ).fetchall()
        except self.Error as e:
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
                        self._sql(f"SELECT seq, nodes FROM ledger_entries WHERE seq IN ({marks})"),
                        part,
                    ).fetchall()
                )
        except self.Error as e:
            raise self._unavailable(e) from None
        out = []
        for level, idx in coords:
            blob = blobs.get(((idx + 1) << level) - 1, b"")
            h = blob[32 * level : 32 * level + 32] if isinstance(blob, bytes) else b""
            if len(h) != 32:
                raise LedgerUnavailableError(
                    f"tree node ({level}, {idx}) is missing from {self._where}",
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
        except self.Error as e:
            raise self._unavailable(e) from None
        return None if row is None else (int(row[0]) + 1, str(row[1]))

    def checkpoint_at(self, size: int) -> str | None:
        try:
            row = self._raw.execute(
                self._sql("SELECT checkpoint FROM ledger_entries WHERE seq = ?"), (size - 1,)
            ).fetchone()
        except self.Error as e:
            raise self._unavailable(e) from None
        return None if row is None or row[0] is None else str(row[0])

    def iter_checkpoints(self, start_size: int = 0) -> Iterator[tuple[int, str]]:
        for seq, _, checkpoint, _ in self.iter_rows(max(start_size - 1, 0)):
            if checkpoint is not None and seq + 1 >= start_size:
                yield seq + 1, checkpoint
