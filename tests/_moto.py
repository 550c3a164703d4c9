"""A real moto server on loopback, and the AWS token key stores of the contract suite on it.

``moto_server`` starts ``python -m moto.server`` once per session on 127.0.0.1 and a free port
(a separate process: moto's own imports and warnings stay out of the test process) and stops it
at the end. The store fixtures give each test fake credentials through ``monkeypatch``, drop
every other ``AWS_*`` variable (no profile, no instance metadata) and point every client at the
loopback endpoint, so no test ever reaches AWS. Each test uses its own prefix or alias.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _keystore_case import StoreCase, free_port
from starter_ledger.tokenkeys import open_token_keystore

REGION = "eu-west-1"


def _start(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return proc, port
    _stop(proc)
    raise RuntimeError(f"moto server did not start on port {port}; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of a moto server on 127.0.0.1 (a free port), for the whole session."""
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    for attempt in range(3):  # another process may take the free port before moto binds it
        try:
            proc, port = _start(log)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> str:
    """Set random fake credentials (and nothing else AWS) in the environment; the secret key."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    secret_key = secrets.token_hex(20)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA" + secrets.token_hex(8).upper())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return secret_key


def kms_url(endpoint: str, alias: str | None = None) -> str:
    """An ``aws-kms://`` URL on ``endpoint``, optionally with an alias prefix."""
    return f"aws-kms://{REGION}?endpoint={endpoint}" + (f"&alias={alias}" if alias else "")


def secretsmanager_url(endpoint: str, prefix: str) -> str:
    """An ``aws-secretsmanager://`` URL on ``endpoint`` with the secret name ``prefix``."""
    return f"aws-secretsmanager://{REGION}/{prefix}?endpoint={endpoint}"


def closed_endpoint() -> str:
    """A loopback endpoint where nothing listens: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def aws_kms_store(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreCase]:
    """KMS on the moto server: ES256 only (moto 5.2 has no ECC_NIST_EDWARDS25519)."""
    secret_key = fake_aws_credentials(monkeypatch)
    url = kms_url(moto_server, alias=f"starter-test-{uuid.uuid4().hex}")
    store = open_token_keystore(url)
    yield StoreCase(
        store=store,
        reopen=lambda: open_token_keystore(url),
        algs=("ES256",),
        missing_ref=str(uuid.uuid4()),
        secrets=(secret_key,),
        unreachable=lambda: open_token_keystore(kms_url(closed_endpoint())),
    )
    store.close()


@pytest.fixture
def aws_secretsmanager_store(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StoreCase]:
    """Secrets Manager on the moto server, under a prefix of its own."""
    secret_key = fake_aws_credentials(monkeypatch)
    url = secretsmanager_url(moto_server, f"starter-test/{uuid.uuid4().hex}")
    store = open_token_keystore(url)
    yield StoreCase(
        store=store,
        reopen=lambda: open_token_keystore(url),
        algs=("EdDSA", "ES256"),
        missing_ref="A" * 43,
        secrets=(secret_key,),
        unreachable=lambda: open_token_keystore(
            secretsmanager_url(closed_endpoint(), "starter-test/unreachable")
        ),
    )
    store.close()
