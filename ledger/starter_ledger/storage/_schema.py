"""Tables of the SQL ledger stores and their versioned migrations.

For: the SQLModel table models (``ledger_entries``, ``ledger_nodes``, ``ledger_checkpoints``,
``ledger_schema``) and the ordered list of migrations, each recorded as one row of
``ledger_schema``. Version 1 also installs the triggers that reject UPDATE and DELETE.
Not for: queries on the hot path, which the store modules write directly.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, LargeBinary, text
from sqlmodel import Column, Field, SQLModel

#: The schema version this code writes. Opening a newer ledger fails; an older one is migrated.
SCHEMA_VERSION = 1

APPEND_ONLY_TABLES = ("ledger_entries", "ledger_nodes", "ledger_checkpoints", "ledger_schema")


class EntryRow(SQLModel, table=True):
    """One entry: its position and its verbatim JWS bytes (the only thing verification reads)."""

    __tablename__ = "ledger_entries"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    entry: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: Index columns, copied from the entry for queries; never used to verify.
    type: str = Field(index=True)
    kid: str


class NodeRow(SQLModel, table=True):
    """Hash of the perfect subtree over leaves [idx * 2**level, (idx + 1) * 2**level)."""

    __tablename__ = "ledger_nodes"
    __table_args__ = {"sqlite_with_rowid": False}

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class CheckpointRow(SQLModel, table=True):
    """A signed checkpoint (C2SP signed note) of the tree at ``size``."""

    __tablename__ = "ledger_checkpoints"

    size: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    note: str


class SchemaRow(SQLModel, table=True):
    """One applied migration."""

    __tablename__ = "ledger_schema"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    applied_at: str


def _v1(conn: Connection) -> None:
    tables = [SQLModel.metadata.tables[name] for name in APPEND_ONLY_TABLES]
    SQLModel.metadata.create_all(conn, tables=tables)
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            conn.execute(
                text(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
            )


#: Migration to version N is MIGRATIONS[N - 1].
MIGRATIONS: list[Callable[[Connection], None]] = [_v1]
