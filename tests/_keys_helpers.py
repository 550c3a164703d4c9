"""Helpers of the key lifecycle tests: key event payloads, a CLI runner with a rehearsal clock,
the CLI error contract, ledger snapshots, the private material of key files (for the no-leak
scan), and a local HTTP server for the published JWKS."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import CLI, CliResult, make_signer
from starter_events import validate_payload
from starter_events.keyring import format_timestamp
from starter_ledger import Ledger
from starter_ledger.keys import thumbprint

#: A fixed moment the domain tests schedule from.
T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
#: Members every event of a key repeats from its key.staged.
FIXED = ("key_set", "kid", "alg", "jwk", "not_before", "not_after")


def ts(moment: dt.datetime) -> str:
    return format_timestamp(moment)


def _valid(type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as the ledger hands it to the key ring: validated by its model, dumped."""
    return validate_payload(type_, 1, payload).model_dump(mode="json")


def staged(
    name: str,
    *,
    key_set: str = "default",
    not_before: dt.datetime = T0,
    lifetime: dt.timedelta = 90 * DAY,
    ttl_seconds: int = 3600,
) -> dict[str, Any]:
    """A valid ``key.staged`` payload for a deterministic Ed25519 key named ``name``."""
    jwk = make_signer(f"token-{name}").public_jwk
    kid = thumbprint(jwk)
    return _valid(
        "key.staged",
        {
            "key_set": key_set,
            "kid": kid,
            "alg": "EdDSA",
            "jwk": jwk,
            "not_before": ts(not_before),
            "not_after": ts(not_before + lifetime),
            "store": "file:///keys/tokens",
            "ref": kid,
            "token_ttl_seconds": ttl_seconds,
        },
    )


def follow(type_: str, stage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A valid payload of ``type_`` for the key ``stage`` staged (its fixed members repeated)."""
    return _valid(type_, {**{k: stage[k] for k in FIXED}, **extra})


# -- the CLI error contract and "ledger unchanged" ---------------------------------------------


def assert_error(result: CliResult, code: int, says: str, hint: str | None = None) -> None:
    """Exactly one ``error:`` line naming the problem, at most one ``hint:`` line, exit ``code``,
    nothing on stdout."""
    assert result.code == code, result
    lines = result.stderr.splitlines()
    assert lines, result
    assert lines[0].startswith("error: "), result.stderr
    assert says in lines[0], result.stderr
    assert "internal error" not in lines[0]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), result.stderr
    if hint is not None:
        assert len(lines) == 2, result.stderr
        assert hint in lines[1], result.stderr
    assert result.stdout == ""


def snapshot(db: Path) -> tuple[dict[str, str], list[str]]:
    """sha256 of the ledger file and every SQLite side file, plus a logical dump taken from a
    copy (so reading cannot change the files). Between CLI runs the last connection has closed,
    which checkpoints the WAL into ``ledger.db``: any write shows up in these hashes."""
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.parent.iterdir())
        if p.name.startswith(db.name)
    }
    with tempfile.TemporaryDirectory() as scratch:
        for name in files:
            shutil.copyfile(db.parent / name, Path(scratch) / name)
        with closing(sqlite3.connect(Path(scratch) / db.name)) as conn:
            dump = list(conn.iterdump())
    return files, dump


# -- a ledger store's contents ----------------------------------------------------------------


def store_contents(ledger: Ledger) -> tuple[Any, ...]:
    """Everything a store holds: entries, checkpoints and the root, verbatim."""
    store = ledger.store
    return (
        store.size(),
        list(store.iter_entries()),
        list(store.iter_checkpoints()),
        ledger.root(),
    )


def store_files(ledger: Ledger) -> dict[str, str]:
    """sha256 of a SQLite ledger's file and its side files (-wal, -shm); nothing for the other
    backends."""
    url = ledger.store.url
    if not url.startswith("sqlite:///"):
        return {}
    db = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    assert db.is_file()
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.parent.iterdir())
        if p.name.startswith(db.name)
    }


# -- private material and the leak scan --------------------------------------------------------


def _b64_forms(data: bytes) -> list[bytes]:
    std = base64.b64encode(data)
    url = base64.urlsafe_b64encode(data)
    return [std, std.rstrip(b"="), url, url.rstrip(b"=")]


def secret_forms(pem: bytes) -> dict[str, bytes]:
    """Every form in which the private key in ``pem`` could leak: the raw private bytes (Ed25519
    seed, or P-256 scalar as 32 bytes big-endian), their hex and base64/base64url forms (padded
    and not), the PKCS#8 DER and each PEM body line."""
    key = serialization.load_pem_private_key(pem, password=None)
    if isinstance(key, Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        raw = key.private_numbers().private_value.to_bytes(32, "big")
    assert len(raw) == 32
    body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    der = base64.b64decode(b"".join(body))
    forms = {"raw": raw, "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode(), "der": der}
    for i, form in enumerate(_b64_forms(raw)):
        forms[f"b64-{i}"] = form
    for i, line in enumerate(body):
        forms[f"pem-line-{i}"] = line
    return forms


_JWS = re.compile(rb"[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")


def _b64url(text: bytes) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def expand(data: bytes, depth: int = 3) -> list[bytes]:
    """``data`` plus the decoded header and payload of every compact JWS in it, recursively
    (entries inside receipts, envelopes inside entries), so a secret nested in an event payload
    is found too."""
    out = [data]
    if depth:
        for match in _JWS.finditer(data):
            for part in match.group().split(b".")[:2]:
                decoded = _b64url(part)
                if decoded:
                    out.extend(expand(decoded, depth - 1))
    return out


def find_leaks(corpus: dict[str, bytes], secrets: dict[str, dict[str, bytes]]) -> list[str]:
    """``where: key/form`` for every secret form found in any (expanded) corpus item."""
    found = []
    for where, data in corpus.items():
        for chunk in expand(data):
            for key_name, forms in secrets.items():
                found.extend(
                    f"{where}: {key_name}/{form}" for form, value in forms.items() if value in chunk
                )
    return found


# -- running the CLI ------------------------------------------------------------------------


def real_now() -> dt.datetime:
    """The real time to the second: tokens signed at it pass PyJWT's exp/iat checks."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Cli:
    """Runs starter-cli against one ledger folder at a time chosen with ``at``; keeps every
    result (for the leak scan)."""

    root: Path
    env: dict[str, str]
    log: list[CliResult] = field(default_factory=list)

    @classmethod
    def new(cls, root: Path) -> Cli:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STARTER_")}
        env.update(STARTER_LEDGER_URL=f"sqlite:///{root / 'ledger' / 'ledger.db'}")
        env.update(STARTER_ACTOR="tester")
        return cls(root, env)

    @property
    def folder(self) -> Path:
        return self.root / "ledger"

    def at(self, moment: dt.datetime) -> None:
        self.env["STARTER_NOW"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def __call__(self, *args: str, **env: str) -> CliResult:
        proc = subprocess.run(
            [*CLI, *args], capture_output=True, env={**self.env, **env}, cwd=self.root, timeout=120
        )
        result = CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
        self.log.append(result)
        return result

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.code == 0, result
        return json.loads(result.stdout)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) from a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
