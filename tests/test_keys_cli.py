"""``starter-cli keys ...`` end to end, in subprocesses, as an operator or a cron job runs it.

A rotation schedule is rehearsed with ``STARTER_NOW``; tokens from ``keys sign-test`` are checked
by a standard JWKS client (PyJWT's ``PyJWKClient``) against the published JWKS served over HTTP;
bad input must fail with one ``error:`` line, its exit code and the ledger untouched; and no
private key material may appear anywhere but in the key files.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from _keys_helpers import Cli, assert_error, find_leaks, real_now, secret_forms, serve, snapshot
from conftest import ORIGIN, make_signer
from starter_events.keyring import format_timestamp
from starter_ledger import Ledger
from starter_ledger.clock import FixedClock
from starter_ledger.jwk import public_jwk_of
from starter_ledger.jwks import jwks_bytes, jwks_digest
from starter_ledger.keyops import KeyManager
from starter_ledger.keys import thumbprint
from starter_ledger.keystore import FileKeyStore
from starter_ledger.tokenkeys import FileTokenKeyStore

HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)
OTHER_ALG = {"EdDSA": "ES256", "ES256": "EdDSA"}


# -- a whole schedule, rehearsed once for the tests that read it -------------------------------


@dataclass
class Schedule:
    cli: Cli
    start: dt.datetime
    out: dict[str, Any]


@pytest.fixture(scope="module")
def schedule(tmp_path_factory: pytest.TempPathFactory) -> Schedule:
    """init; rotate --activate-now (EdDSA); rotate --alg ES256; tick early (nothing) and at the
    new key's time (switch); sign tokens; stage and revoke a third key; publish."""
    cli = Cli.new(tmp_path_factory.mktemp("keys-cli"))
    start = real_now()
    out: dict[str, Any] = {}
    cli.at(start)
    out["init"] = cli.json("ledger", "init", "--origin", ORIGIN)
    out["first"] = cli.json("keys", "rotate", "--activate-now")
    out["token-first"] = cli.json("keys", "sign-test")
    out["second"] = cli.json("keys", "rotate", "--alg", "ES256")
    out["status"] = cli.json("keys", "status")
    cli.at(start + HOUR - SECOND)
    out["early"] = cli.json("keys", "tick")
    cli.at(start + HOUR)
    out["switch"] = cli.json("keys", "tick")
    out["again"] = cli("keys", "tick")
    out["token-second"] = cli.json("keys", "sign-test")
    out["third"] = cli.json("keys", "rotate")
    out["revoke"] = cli.json("keys", "revoke", out["third"]["steps"][0]["kid"], "--reason", "t")
    out["status-after"] = cli.json("keys", "status")
    out["publish"] = cli.json("keys", "publish", "--out", str(cli.root / "www" / "jwks.json"))
    out["jwks"] = cli("keys", "jwks")
    return Schedule(cli, start, out)


def _kids(action: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["type"], s["kid"]) for s in action["steps"]]


@pytest.mark.slow
def test_a_rotation_schedule_is_rehearsed_with_starter_now(schedule: Schedule) -> None:
    """rotate stages keys on the clock STARTER_NOW sets, tick switches exactly when due and once,
    and status tells what is due next."""
    out, start = schedule.out, schedule.start
    first = out["first"]["steps"][0]["kid"]
    second = out["second"]["steps"][0]["kid"]
    assert _kids(out["first"]) == [("key.staged", first), ("key.activated", first)]
    assert _kids(out["second"]) == [("key.staged", second)]
    status = out["status"]
    assert [(k["kid"], k["state"], k["alg"]) for k in status["keys"]] == [
        (first, "active", "EdDSA"),
        (second, "staged", "ES256"),
    ]
    assert status["keys"][1]["not_before"] == format_timestamp(start + HOUR)
    assert status["keys"][1]["store"] == f"file://{schedule.cli.folder / 'keys' / 'tokens'}"
    assert (status["due_now"], status["warnings"]) == ([], [])
    assert status["next_change"] == format_timestamp(start + HOUR)

    assert (out["early"]["changed"], out["early"]["steps"], out["early"]["receipt"]) == (
        False,
        [],
        None,
    )
    assert _kids(out["switch"]) == [("key.retired", first), ("key.activated", second)]
    assert out["switch"]["jwks_before"] == out["early"]["jwks_after"]
    assert (out["again"].code, out["again"].stdout) == (0, "nothing due\n")
    assert (out["token-first"]["kid"], out["token-second"]["kid"]) == (first, second)
    states = {k["kid"]: (k["state"], k["verify_until"]) for k in out["status-after"]["keys"]}
    assert states == {
        first: ("retired", format_timestamp(start + 2 * HOUR)),
        second: ("active", None),
        out["third"]["steps"][0]["kid"]: ("revoked", None),
    }


@pytest.mark.slow
def test_the_published_jwks_is_the_ledger_projection(schedule: Schedule) -> None:
    """publish writes exactly the bytes keys jwks prints and the library derives, with their
    digest; ledger verify --jwks accepts the file."""
    cli, out = schedule.cli, schedule.out
    path = Path(out["publish"]["path"])
    body = path.read_bytes()
    assert out["jwks"].stdout.encode() == body
    assert out["publish"]["digest"] == jwks_digest(body) == out["revoke"]["jwks_after"]
    with Ledger.open(cli.env["STARTER_LEDGER_URL"]) as led:
        assert jwks_bytes(led.key_ring(), schedule.start + HOUR) == body
    kids = [k["kid"] for k in json.loads(body)["keys"]]
    assert kids == [out["second"]["steps"][0]["kid"], out["first"]["steps"][0]["kid"]]
    report = cli("ledger", "verify", "--json", "--jwks", str(path))
    assert report.code == 0, report
    assert json.loads(report.stdout)["ok"] is True
    assert json.loads(report.stdout)["jwks_digest"] == jwks_digest(body)


@pytest.mark.slow
def test_verify_takes_the_jwks_projection_at_starter_now(schedule: Schedule) -> None:
    """ledger verify --jwks compares the file with the projection at STARTER_NOW: the file
    published while the retired key was still verifiable is stale once its window closed."""
    cli, out = schedule.cli, schedule.out
    path = out["publish"]["path"]
    during = cli("ledger", "verify", "--json", "--jwks", path)  # STARTER_NOW = start + 1 h
    assert during.code == 0, during
    later = (schedule.start + 3 * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = cli("ledger", "verify", "--json", "--jwks", path, STARTER_NOW=later)
    assert after.code == 1, after
    report = json.loads(after.stdout)
    assert report["first_failure"]["check"] == "jwks-file"
    assert report["jwks_digest"] != out["publish"]["digest"]


@pytest.mark.slow
def test_every_receipt_verifies_and_a_tampered_copy_fails(schedule: Schedule) -> None:
    """Each change left a receipt file that keys receipt verify accepts (pinned to the ledger
    signer); a copy with one character changed exits 1."""
    cli, out = schedule.cli, schedule.out
    receipts = sorted((cli.folder / "receipts").iterdir())
    expected = [out[k]["receipt"] for k in ("first", "second", "switch", "third", "revoke")]
    assert [str(p) for p in receipts] == expected
    for path in receipts:
        check = cli("keys", "receipt", "verify", str(path), "--trusted-kid", out["init"]["kid"])
        assert check.code == 0, check
        assert check.stdout.startswith(f"verified receipt {path}: ")
    text = receipts[0].read_text()
    middle = len(text) // 2
    swapped = "B" if text[middle] == "A" else "A"
    tampered = cli.root / "tampered.jws"
    tampered.write_text(text[:middle] + swapped + text[middle + 1 :])
    failed = cli("keys", "receipt", "verify", str(tampered))
    assert failed.code == 1, failed
    assert failed.stderr.startswith(f"FAILED {tampered}: ")
    other = cli("keys", "receipt", "verify", str(receipts[0]), "--trusted-kid", "A" * 43)
    assert other.code == 1, other


@pytest.mark.slow
def test_no_private_key_material_leaks(schedule: Schedule) -> None:
    """No private key (raw, hex, base64, PEM line; also inside JWS-encoded entries and receipts)
    appears in the ledger files, receipts, an export, the JWKS or anything the CLI printed."""
    cli = schedule.cli
    bundle = cli.root / "export" / "bundle.jsonl"
    bundle.parent.mkdir()
    assert cli("ledger", "export", "--out", str(bundle)).code == 0
    assert cli("ledger", "show", "--json").code == 0
    for path in sorted((cli.folder / "receipts").iterdir()):
        assert cli("keys", "receipt", "verify", str(path), "--json").code == 0

    keys = cli.folder / "keys"
    pems = sorted((keys / "tokens").glob("*.pem"))
    assert len(pems) == 3
    secrets_by_key = {p.name: secret_forms(p.read_bytes()) for p in [keys / "signer.pem", *pems]}
    kinds = {len(forms["der"]) for forms in secrets_by_key.values()}
    assert len(kinds) == 2  # Ed25519 and P-256 keys are both among them
    corpus = {
        str(p.relative_to(cli.root)): p.read_bytes()
        for p in sorted(cli.root.rglob("*"))
        if p.is_file() and keys not in p.parents
    }
    assert {"ledger/ledger.db", "www/jwks.json", "export/bundle.jsonl"} <= set(corpus)
    for i, result in enumerate(cli.log):
        corpus[f"run {i} stdout"] = result.stdout.encode()
        corpus[f"run {i} stderr"] = result.stderr.encode()
    assert find_leaks(corpus, secrets_by_key) == []

    # The scan finds a seed hidden the way an event payload would hide it.
    seed = secret_forms(pems[0].read_bytes())["b64-3"]
    planted = json.dumps({"jwk": {"d": seed.decode()}}).encode()
    fake = b"eyJ0." + base64.urlsafe_b64encode(planted).rstrip(b"=") + b".c2lnbmF0dXJl"
    assert find_leaks({"planted": fake}, secrets_by_key) != []


# -- tokens against a standard JWKS client -------------------------------------------------------


@pytest.fixture
def jwks_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """http://127.0.0.1:PORT/jwks.json, serving tmp_path/www/jwks.json."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    (tmp_path / "www").mkdir()
    with serve(tmp_path / "www") as base:
        yield f"{base}/jwks.json"


def _accept(url: str, token: str) -> dict[str, Any]:
    """Verify ``token`` as a relying party does: key by kid from the JWKS URL, then signature,
    audience, issuer and times."""
    key = jwt.PyJWKClient(url, cache_jwk_set=False).get_signing_key_from_jwt(token)
    alg = jwt.get_unverified_header(token)["alg"]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[alg], audience="starter", issuer=ORIGIN
    )
    return claims


def _reject(url: str, token: str) -> None:
    with pytest.raises(jwt.PyJWKClientError, match="Unable to find a signing key"):
        _accept(url, token)


def _foreign(alg: str, kid: str | None = None) -> str:
    """A well-formed token from a key that was never in the ledger (claiming ``kid``)."""
    key: Any = (
        Ed25519PrivateKey.generate() if alg == "EdDSA" else ec.generate_private_key(ec.SECP256R1())
    )
    now = int(real_now().timestamp())
    claims = {"aud": "starter", "iss": ORIGIN, "sub": "x", "iat": now, "nbf": now, "exp": now + 60}
    header = {"kid": kid or thumbprint(public_jwk_of(key.public_key()))}
    return jwt.encode(claims, key, algorithm=alg, headers=header)


@pytest.mark.slow
@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_tokens_verify_against_the_published_jwks(tmp_path: Path, jwks_url: str, alg: str) -> None:
    """A sign-test token verifies with a standard JWKS client; after a switch the old key's tokens
    verify until verify_until; a revoked key's tokens stop verifying once the JWKS is republished;
    a token from a key never in the ledger is rejected."""
    cli = Cli.new(tmp_path)
    start = real_now()
    cli.at(start)
    jwks = str(tmp_path / "www" / "jwks.json")
    assert cli("ledger", "init", "--origin", ORIGIN).code == 0
    old = cli.json("keys", "rotate", "--activate-now", "--alg", alg)["steps"][0]["kid"]
    signed = cli.json("keys", "sign-test")
    assert (signed["kid"], signed["alg"], signed["issuer"]) == (old, alg, ORIGIN)
    assert jwt.get_unverified_header(signed["token"]) == {"alg": alg, "kid": old, "typ": "JWT"}
    cli.json("keys", "publish", "--out", jwks)
    claims = _accept(jwks_url, signed["token"])
    assert (claims["sub"], claims["iat"], claims["exp"]) == (
        "sign-test",
        int(start.timestamp()),
        int(start.timestamp()) + 300,
    )

    new_alg = OTHER_ALG[alg]
    new = cli.json("keys", "rotate", "--activate-now", "--alg", new_alg)["steps"][0]["kid"]
    fresh = cli.json("keys", "sign-test")
    assert (fresh["kid"], fresh["alg"]) == (new, new_alg)
    cli.json("keys", "publish", "--out", jwks)
    assert _accept(jwks_url, signed["token"])["jti"] != _accept(jwks_url, fresh["token"])["jti"]
    _reject(jwks_url, _foreign(alg))
    with pytest.raises(jwt.InvalidSignatureError):
        _accept(jwks_url, _foreign(new_alg, kid=new))

    cli.json("keys", "revoke", new, "--reason", "leaked")
    cli.json("keys", "publish", "--out", jwks)
    _reject(jwks_url, fresh["token"])
    _accept(jwks_url, signed["token"])
    cli.json("keys", "rotate", "--activate-now", "--alg", alg)  # so the JWKS is never empty

    cli.at(start + HOUR - SECOND)  # the old key verifies until start + token ttl
    cli.json("keys", "publish", "--out", jwks)
    _accept(jwks_url, signed["token"])
    cli.at(start + HOUR)
    cli.json("keys", "publish", "--out", jwks)
    _reject(jwks_url, signed["token"])


# -- bad input -----------------------------------------------------------------------------------


@dataclass
class Setup:
    """A ledger with an active key and a revoked one, built with the library."""

    db: Path
    start: dt.datetime
    active: str
    revoked: str

    @property
    def tokens(self) -> Path:
        return self.db.parent / "keys" / "tokens"


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    db = tmp_path / "ledger" / "ledger.db"
    signer = make_signer("genesis")
    FileKeyStore(db.parent / "keys" / "signer.pem").store(signer)
    start = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    with Ledger.open(f"sqlite:///{db}", create=True, clock=FixedClock(start)) as led:
        led.init(ORIGIN, signer, "tester")
        manager = KeyManager(led, clock=FixedClock(start))
        store = FileTokenKeyStore(db.parent / "keys" / "tokens")
        active = manager.rotate(store, signer, "tester", activate_now=True).steps[0].kid
        revoked = manager.rotate(store, signer, "tester").steps[0].kid
        manager.revoke(revoked, "test", signer, "tester")
    return Setup(db, start, active, revoked)


def _loose_signer(s: Setup) -> list[str]:
    key = s.db.parent / "keys" / "signer.pem"
    key.chmod(0o644)
    return ["keys", "rotate", "--key", f"file://{key}"]


def _loose_token_key(s: Setup) -> list[str]:
    (s.tokens / f"{s.active}.pem").chmod(0o644)
    return ["keys", "sign-test"]


UNREACHABLE = "vault-transit://127.0.0.1:1/transit/k?tls=false"
# (args from the setup, extra environment, exit code, error line text, hint line text)
_BAD: dict[str, tuple[Callable[[Setup], list[str]], dict[str, str], int, str, str | None]] = {
    "revoke-unknown-kid": (
        lambda s: ["keys", "revoke", "A" * 43, "--reason", "x"],
        {},
        3,
        f"no key {'A' * 43} in this ledger",
        "keys status",
    ),
    # One kid in 64 starts with "-": it is still read as the kid, never as an unknown option.
    "revoke-unknown-kid-with-leading-dash": (
        lambda s: ["keys", "revoke", "-" + "A" * 42, "--reason", "x"],
        {},
        3,
        f"no key {'-' + 'A' * 42} in this ledger",
        "keys status",
    ),
    "revoke-revoked-key": (
        lambda s: ["keys", "revoke", s.revoked, "--reason", "again"],
        {},
        10,
        "key {revoked} is revoked",
        "keys status",
    ),
    "unknown-store-scheme": (
        lambda s: ["keys", "rotate", "--store", "ftp://x"],
        {},
        7,
        "unknown key store scheme 'ftp'",
        "vault-transit://",
    ),
    "unreachable-store": (
        lambda s: ["keys", "rotate", "--store", UNREACHABLE],
        {"VAULT_TOKEN": secrets.token_hex(16)},
        9,
        "cannot reach vault-transit://127.0.0.1:1/",
        "check the host and port",
    ),
    "loose-signer-key": (
        _loose_signer,
        {},
        7,
        "readable by group or others",
        "chmod 600",
    ),
    "loose-token-key": (
        _loose_token_key,
        {},
        7,
        "readable by group or others",
        "chmod 600",
    ),
    "activate-at-too-soon": (
        lambda s: ["keys", "rotate", "--activate-at", "2026-11-24T12:59:59Z"],
        {},
        3,
        "sooner than clients caching the JWKS",
        "--activate-at",
    ),
    "activate-now-and-at": (
        lambda s: ["keys", "rotate", "--activate-now", "--activate-at", "2026-12-01T00:00:00Z"],
        {},
        3,
        "exclude each other",
        None,
    ),
    "bad-starter-now": (
        lambda s: ["keys", "tick"],
        {"STARTER_NOW": "next tuesday"},
        3,
        "STARTER_NOW 'next tuesday' is not an RFC 3339 time",
        "2026-12-01T09:00:00Z",
    ),
}


@pytest.mark.parametrize("case", list(_BAD))
def test_bad_input_is_refused_and_the_ledger_unchanged(
    tmp_path: Path, setup: Setup, case: str
) -> None:
    """Bad input fails with one clear error line and its exit code; the ledger, the token key
    folder and the receipts are exactly as they were."""
    make_args, env, code, says, hint = _BAD[case]
    cli = Cli.new(tmp_path)
    cli.at(setup.start)
    args = make_args(setup)
    before = snapshot(setup.db)
    keys_before = sorted(p.name for p in setup.tokens.iterdir())
    result = cli(*args, **env)
    assert_error(result, code, says.format(revoked=setup.revoked), hint)
    if "VAULT_TOKEN" in env:
        assert env["VAULT_TOKEN"] not in result.stderr  # the token is never echoed
    assert snapshot(setup.db) == before
    assert sorted(p.name for p in setup.tokens.iterdir()) == keys_before
    assert not (setup.db.parent / "receipts").exists()


def test_snapshot_sees_a_change(tmp_path: Path, setup: Setup) -> None:
    """The "ledger unchanged" check above does see a successful key change."""
    cli = Cli.new(tmp_path)
    cli.at(setup.start)
    before = snapshot(setup.db)
    assert cli("keys", "rotate").code == 0
    assert snapshot(setup.db) != before
    assert len(list((setup.db.parent / "receipts").iterdir())) == 1
