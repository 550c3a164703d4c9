"""Tables of the SQLite ledger store and their versioned migrations.

For: the SQLModel table models and the ordered list of migrations, each recorded as one row of
``ledger_schema``. One append writes one row per entry into one table, so a durable commit touches
as few pages as possible:

- ``ledger_entries``: ``seq``, the verbatim ``entry`` bytes, its ``type`` (an index column, never
  used to verify), ``nodes`` (the hashes of the perfect subtrees this entry completes: its leaf
  hash, then each parent, bottom up: 32 bytes each) and ``checkpoint`` (the signed checkpoint of
  size ``seq + 1`` when an append ended with this entry, else NULL);
- a partial index over the signer events (genesis, signer added/revoked) only;
- (version 2) a partial index over the key lifecycle events (``key.*``) only.

Version 1 also installs the triggers that reject UPDATE and DELETE (and TRUNCATE on PostgreSQL).
Not for: queries on the hot path, which the store modules write directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, LargeBinary, text
from sqlmodel import Column, Field, SQLModel

#: The schema version this code writes. Opening a newer ledger fails; an older one is migrated.
SCHEMA_VERSION = 2

APPEND_ONLY_TABLES = ("ledger_entries", "ledger_schema")

#: Event types the partial index covers; the SQL literal must match the query's word for word.
SIGNER_TYPES_SQL = "('ledger.genesis', 'signer.added', 'signer.revoked')"
#: The same for the key lifecycle events (version 2), which the JWKS projection reads.
KEY_TYPES_SQL = "('key.staged', 'key.activated', 'key.retired', 'key.revoked', 'key.expired')"


class EntryRow(SQLModel, table=True):
    """One entry with the tree nodes it completes and, at the end of an append, its checkpoint."""

    __tablename__ = "ledger_entries"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    entry: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    type: str
    nodes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    checkpoint: str | None = None


class SchemaRow(SQLModel, table=True):
    """One applied migration."""

    __tablename__ = "ledger_schema"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    applied_at: str


def _v1(conn: Connection) -> None:
    tables = [SQLModel.metadata.tables[name] for name in APPEND_ONLY_TABLES]
    SQLModel.metadata.create_all(conn, tables=tables)
    conn.execute(
        text(
            "CREATE INDEX IF NOT EXISTS ledger_signer_events ON ledger_entries(seq) "
            f"WHERE type IN {SIGNER_TYPES_SQL}"
        )
    )
    if conn.dialect.name != "sqlite":
        _postgresql_triggers(conn)
        return
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            conn.execute(
                text(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
            )


def _postgresql_triggers(conn: Connection) -> None:
    # Straight to the driver without parameters, so that it leaves the '%' of RAISE alone.
    raw: Any = conn.connection.dbapi_connection
    raw.execute(
        "CREATE OR REPLACE FUNCTION starter_ledger_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation'; "
        "END $$"
    )
    for table in APPEND_ONLY_TABLES:
        for op, scope in (("UPDATE", "ROW"), ("DELETE", "ROW"), ("TRUNCATE", "STATEMENT")):
            conn.exec_driver_sql(
                f"CREATE OR REPLACE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"FOR EACH {scope} EXECUTE FUNCTION starter_ledger_append_only()"
            )


def _v2(conn: Connection) -> None:
    conn.execute(
        text(
            "CREATE INDEX IF NOT EXISTS ledger_key_events ON ledger_entries(seq) "
            f"WHERE type IN {KEY_TYPES_SQL}"
        )
    )


#: Migration to version N is MIGRATIONS[N - 1].
MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2]
