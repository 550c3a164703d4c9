"""Platform smoke test: the backend served by uvicorn over loopback, checked end to end.

Usage: ``python tests/smoke.py`` (``just smoke``; ``just ci`` runs it too). A script, not a pytest
module (its name does not start with ``test_``).

In a fresh temporary folder (removed at the end) it creates a ledger, activates a token-signing key
and stages the next one with ``starter-cli``, and saves a checkpoint. It then starts
``uvicorn --factory starter_backend.app:create_app`` on a free 127.0.0.1 port, polling the ledger
every 0.2 s (or with ``STARTER_REDIS_URL`` from the environment, notified by Redis), and checks:
``/health`` and ``/ready``; that ``/.well-known/jwks.json`` publishes exactly the kids
``keys status --json`` says it should, byte for byte what ``keys jwks`` prints, with an ETag that
answers 304; that a token from ``keys sign-test`` verifies with PyJWT's ``PyJWKClient`` against
the live endpoint; that after ``keys revoke`` (of the staged key: ``rotate --activate-now``
refuses while a key is staged) and ``keys rotate --activate-now`` the replica serves each new
JWKS within the freshness bound (``STARTER_FRESHNESS_BOUND``, default 5 s), measured from the
append's ``occurred_at`` by polling while the command runs, and printed; that the live checkpoint
is signed by the signer of the genesis entry ``ledger init`` created; and that a consistency proof
fetched over HTTP proves the live tree extends the checkpoint saved at the start. It prints one
``ok:`` line per check and exits 0, or prints ``FAIL:`` with the reason (and uvicorn's log) and
exits 1 at the first failure (130 on Ctrl-C, 143 on SIGTERM). uvicorn is always stopped (also
on Ctrl-C or SIGTERM) and its port is checked to be closed: nothing is left running. It needs no
network beyond loopback (and Redis when ``STARTER_REDIS_URL`` names one): HTTP proxies named in
the environment are ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message
from pathlib import Path
from types import FrameType
from typing import Any

import jwt

from starter_ledger.entry import decode_entry
from starter_ledger.errors import LedgerError
from starter_ledger.keys import public_key_bytes
from starter_ledger.merkle import verify_consistency
from starter_ledger.note import parse_checkpoint, parse_note

ORIGIN = "smoke.local/starter-ledger"
HOST = "127.0.0.1"
#: How often the backend polls the ledger for new entries (STARTER_POLL_INTERVAL).
POLL_INTERVAL = 0.2
#: How long uvicorn may take to answer /health and then /ready.
START_TIMEOUT = 30.0
#: How long any one CLI command may take.
CLI_TIMEOUT = 60.0

#: An access-log line of uvicorn's.
_ACCESS_LOG = re.compile(r'^INFO: +[0-9.]+:[0-9]+ - "')

_BIN = Path(sys.executable).parent
CLI = (
    [str(_BIN / "starter-cli")]
    if (_BIN / "starter-cli").exists()
    else [sys.executable, "-m", "starter_cli"]
)

# Loopback only: never send a request through an HTTP proxy named in the environment. Installed
# globally because PyJWKClient fetches with urllib.request.urlopen.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
urllib.request.install_opener(_OPENER)


class SmokeFailure(Exception):
    """A check failed; the message says which and why."""


def ok(message: str) -> None:
    print(f"ok: {message}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class Server:
    """uvicorn in a subprocess, its output in a log file."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.log_path = workdir / "uvicorn.log"
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "starter_backend.app:create_app",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    "--log-level",
                    "info",
                ],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no uvicorn log)"
        # Access-log lines ("127.0.0.1:PORT - \"GET /ready ...") would crowd out the errors.
        kept = [line for line in text.splitlines() if not _ACCESS_LOG.search(line)]
        dropped = len(text.splitlines()) - len(kept)
        tail = [f"  | {line}" for line in kept[-lines:]] or ["  | (empty)"]
        if dropped:
            tail.append(f"  ({dropped} access-log lines left out)")
        return "\n".join(tail)

    def stop(self) -> None:
        """Terminate uvicorn (SIGTERM, then SIGKILL after 10 s) and reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def port_closed(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                return False
        except OSError:
            return True


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (the kernel picks it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def http_get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, Message, bytes]:
    """GET ``url``: status, headers and body (error statuses are returned, not raised)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 (http only)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get_json(url: str) -> Any:
    status, _, body = http_get(url)
    check(status == 200, f"GET {url} answered {status}: {body[:300]!r}")
    return json.loads(body)


class Smoke:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ledger_url = f"sqlite:///{workdir / 'ledger.db'}"
        bound = os.environ.get("STARTER_FRESHNESS_BOUND", "5")
        try:
            self.bound = float(bound)
        except ValueError:
            raise SmokeFailure(f"STARTER_FRESHNESS_BOUND={bound!r} is not a number") from None
        # A clean environment: no STARTER_* setting of the caller's (a ledger URL, STARTER_NOW,
        # a key store) leaks in, except Redis, which the CLI and the backend then both use.
        env = {k: v for k, v in os.environ.items() if not k.startswith("STARTER_")}
        env["STARTER_LEDGER_URL"] = self.ledger_url
        self.redis = os.environ.get("STARTER_REDIS_URL") or None
        if self.redis:
            env["STARTER_REDIS_URL"] = self.redis
        self.env = env
        self.server = Server(
            workdir,
            {
                **env,
                "STARTER_POLL_INTERVAL": str(POLL_INTERVAL),
                "STARTER_FRESHNESS_BOUND": bound,
            },
        )

    # -- helpers ---------------------------------------------------------------------------

    def cli(self, *args: str) -> bytes:
        """Run ``starter-cli ARGS``; its stdout, or a failure naming the exit code and stderr."""
        try:
            r = subprocess.run(
                [*CLI, *args],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=CLI_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise SmokeFailure(f"starter-cli {' '.join(args)} took over {CLI_TIMEOUT} s") from None
        if r.returncode != 0:
            raise SmokeFailure(
                f"starter-cli {' '.join(args)} exited {r.returncode}:\n"
                + r.stderr.decode(errors="replace").rstrip()
            )
        return r.stdout

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json"))

    def url(self, path: str) -> str:
        return self.server.base + path

    def live_jwks(self) -> tuple[bytes, set[str]]:
        status, _, body = http_get(self.url("/.well-known/jwks.json"))
        check(status == 200, f"GET /.well-known/jwks.json answered {status}: {body[:300]!r}")
        return body, {k["kid"] for k in json.loads(body)["keys"]}

    def published_kids(self) -> set[str]:
        """The kids ``keys status --json`` says the JWKS publishes now: staged and active keys,
        and retired ones before their ``verify_until`` (never revoked or expired ones)."""
        status = self.cli_json("keys", "status")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        return {
            k["kid"]
            for k in status["keys"]
            if k["state"] in ("staged", "active")
            or (k["state"] == "retired" and (k["verify_until"] or "") > now)
        }

    def change_and_watch(self, args: list[str], done: Any) -> tuple[Any, float, set[str]]:
        """Run ``starter-cli ARGS --json`` (a key change) while polling the live JWKS.

        Returns the command's JSON, the seconds from the append (its first entry's
        ``occurred_at``) to the first JWKS response for which ``done(kids)`` holds, and those
        kids. Fails when that takes longer than the freshness bound."""
        what = "starter-cli " + " ".join(args)
        proc = subprocess.Popen(
            [*CLI, *args, "--json"],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + CLI_TIMEOUT
        seen_at: float | None = None
        seen: set[str] = set()
        kids: set[str] = set()
        exited_at: float | None = None
        try:
            while time.monotonic() < deadline:
                _, kids = self.live_jwks()
                if seen_at is None and done(kids):
                    seen_at, seen = time.time(), kids
                if proc.poll() is not None:
                    exited_at = exited_at or time.monotonic()
                    if seen_at is not None or time.monotonic() - exited_at > self.bound:
                        break
                time.sleep(0.02)
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise SmokeFailure(f"{what} took over {CLI_TIMEOUT:g} s") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise SmokeFailure(
                f"{what} exited {proc.returncode}:\n" + err.decode(errors="replace").rstrip()
            )
        action = json.loads(out)
        if seen_at is None:
            raise SmokeFailure(
                f"the replica still served a stale JWKS {self.bound:g} s (the freshness bound) "
                f"after {what} returned; kids served: {sorted(kids)}"
            )
        seq = action["first_seq"]
        page = get_json(self.url(f"/ledger/entries?start={seq}&end={seq + 1}"))
        occurred = decode_entry(page["entries"][0]["entry"].encode("ascii")).envelope.occurred_at
        appended_at = dt.datetime.fromisoformat(occurred.replace("Z", "+00:00")).timestamp()
        delay = seen_at - appended_at
        check(
            delay <= self.bound,
            f"the replica served the JWKS of {what} {delay:.2f} s after the append, beyond the "
            f"freshness bound of {self.bound:g} s",
        )
        return action, delay, seen

    def verify_token(self, expected_kid: str) -> str:
        """A token from ``keys sign-test`` verified by PyJWKClient against the live JWKS."""
        issued = self.cli_json("keys", "sign-test")
        check(
            issued["kid"] == expected_kid,
            f"sign-test signed with {issued['kid']}, not the active key {expected_kid}",
        )
        client = jwt.PyJWKClient(self.url("/.well-known/jwks.json"), cache_jwk_set=False)
        try:
            key = client.get_signing_key_from_jwt(issued["token"])
            claims = jwt.decode(
                issued["token"],
                key,
                algorithms=[issued["alg"]],
                audience="starter",
                issuer=issued["issuer"],
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as e:
            raise SmokeFailure(f"the sign-test token did not verify with PyJWKClient: {e}") from e
        check(claims["sub"] == "sign-test", f"unexpected token subject {claims['sub']!r}")
        check(key.key_id == expected_kid, f"PyJWKClient picked {key.key_id}, not {expected_kid}")
        return str(issued["alg"])

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> None:
        # A fresh ledger with a rotated key set, and a checkpoint saved before the server starts.
        init = self.cli_json("ledger", "init", "--origin", ORIGIN)
        genesis_sha256 = init["genesis_sha256"]
        first = self.cli_json("keys", "rotate", "--activate-now")
        active = _kid_of(first, "key.activated")
        staged = _kid_of(self.cli_json("keys", "rotate"), "key.staged")
        saved_path = self.workdir / "trusted-checkpoint.txt"
        self.cli("ledger", "checkpoint", "--out", str(saved_path))
        saved_note = saved_path.read_text(encoding="utf-8")
        saved = parse_checkpoint(parse_note(saved_note).text)
        ok(
            f"fresh ledger {ORIGIN} in {self.workdir}: key {active} active, {staged} staged; "
            f"checkpoint of size {saved.size} saved"
        )

        self.server.start()
        how = f"Redis {self.redis}" if self.redis else f"polling every {POLL_INTERVAL:g} s"
        t0 = time.monotonic()
        self.wait_until("/health", lambda s, b: s == 200 and json.loads(b) == {"status": "ok"})
        took = time.monotonic() - t0
        ok(f"uvicorn on {self.server.base} ({how}): /health 200 after {took:.2f} s")
        ready = self.wait_until("/ready", lambda s, b: s == 200)
        check(ready["status"] == "ready", f"/ready says {ready}")
        check(
            ready["size"] == saved.size and ready["root_hash"] == saved.root_hash,
            f"/ready serves size {ready['size']} root {ready['root_hash']}, not the ledger's "
            f"size {saved.size} root {saved.root_hash}",
        )
        ok(f"/ready 200 after {time.monotonic() - t0:.2f} s: size {ready['size']}, verified")

        # The JWKS: the expected kids, the CLI's bytes, a working ETag.
        status, headers, body = http_get(self.url("/.well-known/jwks.json"))
        check(status == 200, f"GET /.well-known/jwks.json answered {status}: {body[:300]!r}")
        kids = {k["kid"] for k in json.loads(body)["keys"]}
        expected = self.published_kids()
        check(expected == {active, staged}, f"keys status publishes {sorted(expected)}")
        check(kids == expected, f"JWKS kids {sorted(kids)} != published {sorted(expected)}")
        cli_body = self.cli("keys", "jwks")
        check(body == cli_body, f"JWKS body differs from 'keys jwks':\n{body!r}\n{cli_body!r}")
        check(
            headers.get("content-type") == "application/jwk-set+json",
            f"JWKS Content-Type is {headers.get('content-type')!r}",
        )
        etag = headers.get("etag") or ""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        check(etag == f'"{digest}"', f"JWKS ETag {etag} is not the body's digest {digest}")
        check(ready["jwks_etag"] == etag, f"/ready jwks_etag {ready['jwks_etag']} != ETag {etag}")
        check(
            "max-age=" in (headers.get("cache-control") or ""),
            f"JWKS Cache-Control is {headers.get('cache-control')!r}",
        )
        status, _, rest = http_get(self.url("/.well-known/jwks.json"), {"If-None-Match": etag})
        check(status == 304 and not rest, f"If-None-Match with the ETag answered {status}")
        ok(
            f"JWKS publishes {len(kids)} kids as 'keys status' says, byte for byte 'keys jwks'; "
            f"ETag {digest[:19]}... answers 304; Cache-Control {headers.get('cache-control')}"
        )

        alg = self.verify_token(active)
        ok(f"sign-test token ({alg}, kid {active}) verified by PyJWKClient against the live JWKS")

        # Rotation: the staged key must make way (rotate --activate-now refuses while a key is
        # staged), then an emergency rotation; the replica must follow each within the bound.
        _, gone, _ = self.change_and_watch(
            ["keys", "revoke", staged, "--reason", "smoke: make way for an emergency rotation"],
            lambda kids: staged not in kids,
        )
        ok(f"revoked staged key {staged}: gone from the live JWKS {gone:.2f} s after the append")
        rotated, seen, kids = self.change_and_watch(
            ["keys", "rotate", "--activate-now"], lambda kids: bool(kids - {active})
        )
        new = _kid_of(rotated, "key.activated")
        check(new in kids, f"the JWKS gained {sorted(kids - {active})}, not the new key {new}")
        ok(
            f"rotated: new key {new} in the live JWKS {seen:.2f} s after the append "
            f"(freshness bound {self.bound:g} s)"
        )
        body, kids = self.live_jwks()
        expected = self.published_kids()
        check(expected == {active, new}, f"keys status publishes {sorted(expected)}")
        check(kids == expected, f"JWKS kids {sorted(kids)} != published {sorted(expected)}")
        check(body == self.cli("keys", "jwks"), "the new JWKS body differs from 'keys jwks'")
        self.verify_token(new)
        ok(
            f"new JWKS = 'keys jwks' (active {new}, retired {active}); a token of the new key "
            "verifies with PyJWKClient"
        )

        # The live checkpoint, signed by the genesis signer (genesis pinned by its hash).
        status, _, live_note = http_get(self.url("/ledger/checkpoint"))
        check(status == 200, f"GET /ledger/checkpoint answered {status}: {live_note[:300]!r}")
        live_signed = parse_note(live_note)
        live = parse_checkpoint(live_signed.text)
        check(live.origin == ORIGIN, f"live checkpoint origin {live.origin!r}")
        check(live.size > saved.size, f"live size {live.size} did not grow past {saved.size}")
        page = get_json(self.url("/ledger/entries?start=0&end=1"))
        raw_genesis = page["entries"][0]["entry"].encode("ascii")
        check(
            hashlib.sha256(raw_genesis).hexdigest() == genesis_sha256,
            "entry 0 served is not the genesis 'ledger init' created",
        )
        signer = public_key_bytes(decode_entry(raw_genesis).envelope.payload["signer"])
        check(live_signed.verify(ORIGIN, signer), "the live checkpoint's signature does not verify")
        check(parse_note(saved_note).verify(ORIGIN, signer), "the saved checkpoint's signature")
        ok(f"live checkpoint (size {live.size}) is signed by the pinned genesis signer")

        # Consistency: the live tree extends the checkpoint saved at the start.
        proof = get_json(self.url(f"/ledger/proofs/consistency?first={saved.size}"))
        check(
            proof["first"] == saved.size and proof["second"] == live.size,
            f"proof is for {proof['first']} -> {proof['second']}, not {saved.size} -> {live.size}",
        )
        check(
            proof["first_root_hash"] == saved.root_hash,
            f"first_root_hash {proof['first_root_hash']} != saved root {saved.root_hash}",
        )
        check(
            proof["second_root_hash"] == live.root_hash,
            f"second_root_hash {proof['second_root_hash']} != live root {live.root_hash}",
        )
        try:
            verify_consistency(
                saved.size,
                live.size,
                [b64(h) for h in proof["proof"]],
                b64(saved.root_hash),
                b64(proof["second_root_hash"]),
            )
        except LedgerError as e:
            raise SmokeFailure(f"the consistency proof does not verify: {e}") from e
        ok(
            f"consistency proof {saved.size} -> {live.size} ({len(proof['proof'])} hashes) over "
            "HTTP verifies against the saved checkpoint and the live one"
        )

    def wait_until(self, path: str, done: Any) -> Any:
        """Poll ``path`` until ``done(status, body)``; fails on timeout or if uvicorn exits."""
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer"
        while True:
            code = self.server.exited()
            if code is not None:
                raise SmokeFailure(f"uvicorn exited with code {code} before {path} answered")
            try:
                status, _, body = http_get(self.url(path), timeout=2)
            except OSError as e:  # not listening yet
                last = str(e)
            else:
                if done(status, body):
                    return json.loads(body)
                last = f"{status} {body.decode(errors='replace')}"
            if time.monotonic() > deadline:
                raise SmokeFailure(f"{path} not ready after {START_TIMEOUT:g} s; last: {last}")
            time.sleep(0.1)


def _kid_of(action: Any, step_type: str) -> str:
    kids = [s["kid"] for s in action["steps"] if s["type"] == step_type]
    check(len(kids) == 1, f"expected one {step_type} step, got {action['steps']}")
    return str(kids[0])


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so that uvicorn is stopped and the folder removed."""


def _terminate(signum: int, _: FrameType | None) -> None:
    raise Terminated(signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="starter-smoke-"))
    smoke: Smoke | None = None
    code = 1
    try:
        smoke = Smoke(workdir)
        smoke.run()
        code = 0
    except (SmokeFailure, LedgerError) as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("FAIL: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
        code = 130
    except Terminated:
        print("FAIL: terminated (SIGTERM)", file=sys.stderr, flush=True)
        code = 143
    except Exception:
        traceback.print_exc()
        print("FAIL: unexpected error (above)", file=sys.stderr, flush=True)
    finally:
        server = smoke.server if smoke is not None else None
        if server is not None and server.proc is not None:
            if code == 1:
                print(f"uvicorn log ({server.log_path}):", file=sys.stderr)
                print(server.log_tail(), file=sys.stderr, flush=True)
            server.stop()
            if server.port_closed():
                ok(f"uvicorn stopped (exit {server.exited()}); port {server.port} closed")
            else:
                print(f"FAIL: port {server.port} still accepts connections", file=sys.stderr)
                code = code or 1
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            print(f"FAIL: could not remove {workdir}", file=sys.stderr)
            code = code or 1
    if code == 0:
        ok(f"temporary folder removed; smoke passed in {time.monotonic() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
