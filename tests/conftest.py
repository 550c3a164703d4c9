"""Shared fixtures: deterministic keys and clocks, ledgers on every backend, a CLI runner."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from _azure_fake import azure_keyvault_store  # noqa: F401  (fixtures of the key store suite)
from _keystore_case import StoreCase
from _moto import aws_kms_store, aws_secretsmanager_store, moto_server  # noqa: F401
from _openbao import openbao, vault_kv_store, vault_transit_store  # noqa: F401
from starter_ledger import Ed25519Signer, Ledger
from starter_ledger.clock import FixedClock
from starter_ledger.keystore import FileKeyStore
from starter_ledger.storage import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
#: Conformance vectors live beside the project (../shared/vectors); they must be there.
VECTORS = ROOT.parent / "shared" / "vectors"
DATA = Path(__file__).resolve().parent / "data"
ORIGIN = "example.com/test-ledger"
CLI = [sys.executable, "-m", "starter_cli"]
#: The PostgreSQL server tests use: the one this machine kind runs (trust auth on loopback).
POSTGRES_ADMIN_URL = os.environ.get(
    "STARTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def make_signer(name: str) -> Ed25519Signer:
    """A deterministic Ed25519 key derived from ``name``."""
    return Ed25519Signer(hashlib.sha256(name.encode()).digest())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A ledger URL in a fresh PostgreSQL schema, dropped afterwards. Fails if no server runs."""
    import uuid

    import psycopg

    schema = f"starter_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def signer() -> Ed25519Signer:
    return make_signer("genesis")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC))


def _initialised_ledger(
    request: pytest.FixtureRequest, tmp_path: Path, signer: Ed25519Signer, clock: FixedClock
) -> Iterator[Ledger]:
    if request.param == "memory":
        led = Ledger(MemoryStore(), clock=clock)
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        led = Ledger.open(url, create=True, clock=clock)
    else:
        led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", create=True, clock=clock)
    led.init(ORIGIN, signer, "tester")
    yield led
    led.close()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def ledger(
    request: pytest.FixtureRequest, tmp_path: Path, signer: Ed25519Signer, clock: FixedClock
) -> Iterator[Ledger]:
    """An initialised ledger (genesis only) on each backend."""
    yield from _initialised_ledger(request, tmp_path, signer, clock)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_ledger(
    request: pytest.FixtureRequest, tmp_path: Path, signer: Ed25519Signer, clock: FixedClock
) -> Iterator[Ledger]:
    """An initialised ledger (genesis only) on each backend with transactions."""
    yield from _initialised_ledger(request, tmp_path, signer, clock)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for CLI runs: a ledger and key under tmp_path, no inherited STARTER_ vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARTER_")}
    env["STARTER_LEDGER_URL"] = f"sqlite:///{tmp_path / 'ledger' / 'ledger.db'}"
    env["STARTER_ACTOR"] = "tester"
    return env


@pytest.fixture
def run_cli(cli_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``starter-cli`` in a subprocess: run_cli("ledger", "verify", input=b"...")."""

    def run(*args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> CliResult:
        proc = subprocess.run(
            [*CLI, *args],
            input=input,
            capture_output=True,
            env=env or cli_env,
            cwd=tmp_path,
            timeout=120,
        )
        return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    return run


def keyfile(tmp_path: Path, name: str) -> str:
    """Store a deterministic key in a 0600 file and return its file:// URL."""
    path = tmp_path / "keys" / f"{name}.pem"
    FileKeyStore(path).store(make_signer(name))
    return f"file://{path}"


def initialised_ledger_env(tmp_path: Path, now: dt.datetime) -> dict[str, str]:
    """A CLI environment with an initialised SQLite ledger under tmp_path (genesis signed at
    ``now`` by the ``genesis`` key) and that key's file; no inherited STARTER_ vars."""
    url = f"sqlite:///{tmp_path / 'ledger' / 'ledger.db'}"
    with Ledger.open(url, create=True, clock=FixedClock(now)) as led:
        led.init(ORIGIN, make_signer("genesis"), "tester")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STARTER_")}
    environ |= {
        "STARTER_LEDGER_URL": url,
        "STARTER_LEDGER_KEY": keyfile(tmp_path, "genesis"),
        "STARTER_ACTOR": "tester",
    }
    return environ


@pytest.fixture
def file_token_store(tmp_path: Path) -> StoreCase:
    """The default token key store: PKCS#8 files in a temporary folder."""
    from starter_ledger.tokenkeys import FileTokenKeyStore, open_token_keystore

    url = f"file://{tmp_path / 'token-keys'}"
    return StoreCase(
        store=FileTokenKeyStore(tmp_path / "token-keys"),
        reopen=lambda: open_token_keystore(url),
        algs=("EdDSA", "ES256"),
        missing_ref="A" * 43,
    )
