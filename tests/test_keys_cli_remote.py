"""`starter-cli keys` end to end against real remote key stores: OpenBao (Vault transit and KV v2)
and a moto server (AWS KMS and Secrets Manager), all on 127.0.0.1.

The library's contract suite (test_token_keystores.py) checks each store alone; these tests check
what an operator runs: `keys rotate --store URL` creates the key in the store and records it in the
ledger, `keys sign-test` signs through the store named in the ledger, the token verifies against
the JWKS the ledger projects, `ledger verify --jwks` accepts the published file, and no credential
reaches an output, the ledger or a receipt.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from _keys_helpers import Cli, real_now
from _moto import fake_aws_credentials, kms_url, secretsmanager_url
from _openbao import OpenBao, kv_url, transit_url, use_token
from conftest import ORIGIN

#: (store name, algorithm): one case per remote store, each with an algorithm it supports.
CASES = [
    ("vault-transit", "EdDSA"),
    ("vault-kv", "ES256"),
    ("aws-kms", "ES256"),
    ("aws-secretsmanager", "EdDSA"),
]


def _store(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """The store URL for case ``name`` (its server started) and the credential to look for."""
    unique = uuid.uuid4().hex
    if name.startswith("vault"):
        bao: OpenBao = request.getfixturevalue("openbao")
        use_token(monkeypatch, bao.root_token)
        make: Callable[[str, str], str] = transit_url if name == "vault-transit" else kv_url
        return make(bao.hostport, f"starter-cli-{unique}"), bao.root_token
    endpoint: str = request.getfixturevalue("moto_server")
    secret = fake_aws_credentials(monkeypatch)
    if name == "aws-kms":
        return kms_url(endpoint, alias=f"starter-cli-{unique}"), secret
    return secretsmanager_url(endpoint, f"starter-cli/{unique}"), secret


@pytest.mark.parametrize(("name", "alg"), CASES, ids=[c[0] for c in CASES])
def test_rotate_and_sign_through_a_remote_store(
    name: str,
    alg: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operator rotates a key held in Vault or AWS, signs a token through it, and a client
    verifies that token with the JWKS the ledger publishes; no credential leaks anywhere."""
    url, credential = _store(name, request, monkeypatch)
    cli = Cli.new(tmp_path)
    cli.at(real_now())
    cli.json("ledger", "init", "--origin", ORIGIN)
    rotated = cli.json("keys", "rotate", "--activate-now", "--store", url, "--alg", alg)
    kid = rotated["steps"][0]["kid"]

    status = cli.json("keys", "status")
    (key,) = status["keys"]
    assert (key["kid"], key["state"], key["alg"]) == (kid, "active", alg)
    assert key["store"].split("://", 1)[0] == name

    signed = cli.json("keys", "sign-test")
    assert (signed["kid"], signed["alg"]) == (kid, alg)
    jwks_text = cli("keys", "jwks").stdout
    (jwk,) = [k for k in json.loads(jwks_text)["keys"] if k["kid"] == kid]
    claims = jwt.decode(
        signed["token"],
        jwt.PyJWK(jwk).key,
        algorithms=[alg],
        audience="starter",
        issuer=ORIGIN,
    )
    assert claims["sub"] == "sign-test"

    published = tmp_path / "www" / "jwks.json"
    cli.json("keys", "publish", "--out", str(published))
    verified = cli("ledger", "verify", "--json", "--jwks", str(published))
    assert verified.code == 0, verified
    assert json.loads(verified.stdout)["ok"] is True

    everything = "".join(r.stdout + r.stderr for r in cli.log)
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert credential not in everything
    assert credential.encode() not in files


@pytest.mark.parametrize(("name", "alg"), CASES[:1] + CASES[2:3], ids=["vault-transit", "aws-kms"])
def test_an_unreachable_remote_store_is_exit_9_and_the_ledger_unchanged(
    name: str,
    alg: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the key store cannot be reached, rotate exits 9 with an error naming the store, and
    no key event is written."""
    from _moto import closed_endpoint
    from _openbao import closed_hostport

    _store(name, request, monkeypatch)  # credentials in the environment, as in real use
    url = (
        transit_url(closed_hostport(), "nowhere")
        if name == "vault-transit"
        else kms_url(closed_endpoint())
    )
    cli = Cli.new(tmp_path)
    cli.json("ledger", "init", "--origin", ORIGIN)
    before = cli.json("ledger", "show")
    result = cli("keys", "rotate", "--activate-now", "--store", url, "--alg", alg)
    assert result.code == 9, result
    assert result.stderr.startswith("error: ")
    assert cli.json("ledger", "show") == before
