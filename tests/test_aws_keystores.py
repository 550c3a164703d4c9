"""What the AWS token key stores promise beyond the shared contract suite.

Most tests run against the real moto server of ``tests/_moto.py``; the Ed25519 KMS path (moto
5.2 has no ``ECC_NIST_EDWARDS25519``) and AWS-side failures moto cannot produce are checked with
botocore's ``Stubber``, on clients whose endpoint is a closed loopback port.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from _moto import (
    REGION,
    closed_endpoint,
    fake_aws_credentials,
    kms_url,
    secretsmanager_url,
)
from starter_ledger.encoding import b64url_encode
from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.jwk import thumbprint, verify_signature
from starter_ledger.tokenkeys import open_token_keystore
from starter_ledger.tokenkeys._pkcs8 import LocalSigner, generate_pem
from starter_ledger.tokenkeys.aws_kms import AwsKmsTokenKeyStore
from starter_ledger.tokenkeys.aws_secretsmanager import AwsSecretsManagerTokenKeyStore

FAKE_ARN = f"arn:aws:kms:{REGION}:123456789012:key/"


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    return fake_aws_credentials(monkeypatch)


@pytest.fixture
def kms(moto_server: str, secret_key: str) -> Iterator[AwsKmsTokenKeyStore]:
    store = AwsKmsTokenKeyStore(kms_url(moto_server))
    yield store
    store.close()


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.session.Session().client(service, region_name=REGION, endpoint_url=endpoint)


@pytest.mark.parametrize("scheme", ["kms", "secretsmanager"])
def test_placeholder_secret_key_is_refused_naming_the_variable(
    moto_server: str, secret_key: str, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """A forgotten AWS_SECRET_ACCESS_KEY=changeme fails at once, naming the variable only."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "changeme")
    url = kms_url(moto_server) if scheme == "kms" else secretsmanager_url(moto_server, "p")
    with pytest.raises(KeyStoreError) as err:
        open_token_keystore(url)
    assert "AWS_SECRET_ACCESS_KEY" in str(err.value)
    assert "changeme" not in str(err.value).lower()


@pytest.mark.parametrize("ref", ["missing", "alias/starter-test-missing", "nonsense", ""])
def test_missing_kms_key_is_a_key_store_error(kms: AwsKmsTokenKeyStore, ref: str) -> None:
    """An unknown or malformed KMS key id is 'key unusable' (exit 7), not 'unreachable'."""
    ref = str(uuid.uuid4()) if ref == "missing" else ref
    with pytest.raises(KeyStoreError) as err:
        kms.signer(ref)
    assert not isinstance(err.value, KeyStoreUnreachableError)
    assert kms.url in str(err.value)


def test_kms_store_never_handles_private_material(moto_server: str, secret_key: str) -> None:
    """The KMS store only creates, tags, reads public keys and signs: no private key ever moves."""
    client = aws_client("kms", moto_server)
    calls: list[str] = []
    responses: list[str] = []
    client.meta.events.register("before-call.kms", lambda model, **_: calls.append(model.name))
    client.meta.events.register(
        "after-call.kms", lambda parsed, **_: responses.append(json.dumps(parsed, default=str))
    )
    store = AwsKmsTokenKeyStore(kms_url(moto_server, alias="starter-test-private"), client=client)
    key = store.create("ES256")
    signer = store.signer(key.ref)
    assert verify_signature(key.public_jwk, b"m", signer.sign(b"m"))
    store.close()
    assert set(calls) == {"CreateKey", "GetPublicKey", "TagResource", "CreateAlias", "Sign"}
    assert "d" not in key.public_jwk
    assert "d" not in signer.public_jwk
    assert not any("Private" in text for text in responses)
    held = [getattr(signer, name) for name in type(signer).__slots__]
    assert not any("PrivateKey" in type(value).__name__ for value in held)


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("aws-kms://", "aws-kms://REGION"),
        ("aws-kms://?endpoint=http://127.0.0.1:1", "aws-kms://REGION"),
        ("aws-kms://not a region", "aws-kms://REGION"),
        ("aws-kms://eu-west-1/path", "aws-kms://REGION"),
        ("aws-kms://eu-west-1?colour=blue", "aws-kms://REGION"),
        ("aws-secretsmanager://eu-west-1", "aws-secretsmanager://REGION/PREFIX"),
        ("aws-secretsmanager://eu-west-1/", "aws-secretsmanager://REGION/PREFIX"),
        ("aws-secretsmanager:///prefix", "aws-secretsmanager://REGION/PREFIX"),
    ],
)
def test_malformed_url_names_the_expected_form(secret_key: str, url: str, form: str) -> None:
    """A URL without a region (or a Secrets Manager URL without a prefix) shows the right form."""
    with pytest.raises(KeyStoreError) as err:
        open_token_keystore(url)
    assert form in str(err.value)


def test_endpoint_credentials_and_plain_http_are_refused(secret_key: str) -> None:
    """An endpoint carrying credentials is refused without echoing them; http only on loopback."""
    with pytest.raises(KeyStoreError) as err:
        open_token_keystore("aws-kms://eu-west-1?endpoint=http://me:hunter2@127.0.0.1:1")
    assert "hunter2" not in str(err.value)
    with pytest.raises(KeyStoreError, match="loopback"):
        open_token_keystore("aws-kms://eu-west-1?endpoint=http://kms.example.com")


def test_url_is_normalised_and_reopens_the_same_store(moto_server: str, secret_key: str) -> None:
    """The URL recorded in ledger events is canonical: lower-case region, decoded endpoint."""
    port = moto_server.rsplit(":", 1)[1]
    store = open_token_keystore(
        f"AWS-KMS://EU-WEST-1/?endpoint=http%3A%2F%2F127.0.0.1%3A{port}%2F&alias=a/b"
    )
    try:
        assert store.url == f"aws-kms://eu-west-1?alias=a/b&endpoint=http://127.0.0.1:{port}"
    finally:
        store.close()


def test_kms_es256_signatures_verify_with_jwcrypto_and_pyjwt(kms: AwsKmsTokenKeyStore) -> None:
    """A JWT signed through KMS verifies in other JOSE libraries with the published JWK."""
    key = kms.create("ES256")
    signer = kms.signer(key.ref)
    header = b64url_encode(json.dumps({"alg": "ES256", "kid": key.kid}).encode())
    payload = b64url_encode(json.dumps({"sub": "interop", "iss": "starter"}).encode())
    signing_input = f"{header}.{payload}"
    token = f"{signing_input}.{b64url_encode(signer.sign(signing_input.encode()))}"

    checked = jwcrypto_jws.JWS()
    checked.deserialize(token, key=jwcrypto_jwk.JWK(**key.public_jwk))
    assert json.loads(checked.payload)["sub"] == "interop"
    public = jwt.PyJWK({**key.public_jwk, "alg": "ES256"}).key
    assert jwt.decode(token, key=public, algorithms=["ES256"])["iss"] == "starter"


def test_kms_keys_are_tagged_and_aliased_by_kid(moto_server: str, secret_key: str) -> None:
    """Operators find each KMS key by its kid: a tag always, an alias when alias= is given."""
    store = AwsKmsTokenKeyStore(kms_url(moto_server, alias="starter-test-tags"))
    key = store.create("ES256")
    store.close()
    client = aws_client("kms", moto_server)
    tags = {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=key.ref)["Tags"]}
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in client.list_aliases()["Aliases"]}
    client.close()
    assert tags == {"starter-ledger": "token-key", "starter-ledger-kid": key.kid}
    assert aliases[f"alias/starter-test-tags/{key.kid}"] == key.ref


def _stubbed(store_cls: type[Any], service: str, url_of: Any) -> tuple[Any, Stubber, Any]:
    client = aws_client(service, closed_endpoint())
    stubber = Stubber(client)
    return store_cls(url_of(closed_endpoint()), client=client), stubber, client


def test_kms_eddsa_uses_edwards25519_and_raw_ed25519_sha_512(secret_key: str) -> None:
    """EdDSA keys are ECC_NIST_EDWARDS25519 keys signing RAW messages with ED25519_SHA_512."""
    store, stubber, client = _stubbed(AwsKmsTokenKeyStore, "kms", kms_url)
    private = Ed25519PrivateKey.generate()
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id, message = str(uuid.uuid4()), b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ0ZXN0In0"
    spec = {"KeySpec": "ECC_NIST_EDWARDS25519", "KeyUsage": "SIGN_VERIFY"}
    stubber.add_response(
        "create_key",
        {"KeyMetadata": {"KeyId": key_id, **spec}},
        {
            "KeySpec": "ECC_NIST_EDWARDS25519",
            "KeyUsage": "SIGN_VERIFY",
            "Description": "starter-ledger token signing key",
            "Tags": [{"TagKey": "starter-ledger", "TagValue": "token-key"}],
        },
    )
    public = {"KeyId": FAKE_ARN + key_id, "PublicKey": der, **spec}
    stubber.add_response("get_public_key", public, {"KeyId": key_id})
    stubber.add_response("tag_resource", {}, None)
    stubber.add_response("get_public_key", public, {"KeyId": key_id})
    stubber.add_response(
        "sign",
        {"KeyId": FAKE_ARN + key_id, "Signature": private.sign(message)},
        {
            "KeyId": key_id,
            "Message": message,
            "MessageType": "RAW",
            "SigningAlgorithm": "ED25519_SHA_512",
        },
    )
    with stubber:
        key = store.create("EdDSA")
        signature = store.signer(key.ref).sign(message)
        stubber.assert_no_pending_responses()
    client.close()
    assert (key.alg, key.ref, key.kid) == ("EdDSA", key_id, thumbprint(key.public_jwk))
    assert set(key.public_jwk) == {"crv", "kty", "x"}
    assert verify_signature(key.public_jwk, message, signature)


def test_kms_long_es256_input_is_signed_as_a_digest(moto_server: str, secret_key: str) -> None:
    """Signing inputs over KMS's 4096-byte RAW limit are hashed locally and sent as DIGEST."""
    store = AwsKmsTokenKeyStore(kms_url(moto_server))
    signer = store.signer(store.create("ES256").ref)
    stubber = Stubber(store._client)
    message = b"x" * 5000
    stubber.add_response(
        "sign",
        {"Signature": b"0\x06\x02\x01\x01\x02\x01\x01"},
        {
            "KeyId": signer._ref,
            "Message": hashlib.sha256(message).digest(),
            "MessageType": "DIGEST",
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
    )
    with stubber, pytest.raises(KeyStoreError, match="does not verify"):
        signer.sign(message)
    store.close()


@pytest.mark.parametrize(
    ("code", "status", "unreachable"),
    [
        ("AccessDeniedException", 400, True),
        ("UnrecognizedClientException", 400, True),
        ("ExpiredTokenException", 400, True),
        ("ThrottlingException", 400, True),
        ("KMSInternalException", 500, True),
        ("NotFoundException", 400, False),
        ("KMSInvalidStateException", 400, False),
    ],
)
def test_aws_refusals_and_outages_are_translated(
    secret_key: str, code: str, status: int, unreachable: bool
) -> None:
    """Refused credentials and AWS outages exit 9; missing or disabled keys exit 7; no AWS text."""
    store, stubber, client = _stubbed(AwsKmsTokenKeyStore, "kms", kms_url)
    quoted = f"User arn:aws:iam::1:user/x {secret_key}"
    stubber.add_client_error("get_public_key", code, quoted, http_status_code=status)
    with stubber, pytest.raises(KeyStoreError) as err:
        store.signer(str(uuid.uuid4()))
    client.close()
    assert isinstance(err.value, KeyStoreUnreachableError) is unreachable
    assert code in str(err.value) or not unreachable
    assert secret_key not in str(err.value)
    assert "arn:aws:iam" not in str(err.value)
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__


def test_no_credentials_is_unreachable_and_says_what_to_check(
    moto_server: str, secret_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any credentials the store says which credentials to provide (exit 9)."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = open_token_keystore(secretsmanager_url(moto_server, "starter-test/nocreds"))
    with pytest.raises(KeyStoreUnreachableError, match="AWS_ACCESS_KEY_ID"):
        store.create("EdDSA")
    store.close()


def test_secret_holding_another_key_is_refused(moto_server: str, secret_key: str) -> None:
    """A secret whose PEM is not the key its name says is refused, without showing the PEM."""
    prefix = f"starter-test/{uuid.uuid4().hex}"
    store = AwsSecretsManagerTokenKeyStore(secretsmanager_url(moto_server, prefix))
    other = generate_pem("ES256")
    kid = store.create("EdDSA").kid
    client = aws_client("secretsmanager", moto_server)
    client.put_secret_value(SecretId=f"{prefix}/{kid}", SecretString=other.decode())
    client.create_secret(Name=f"{prefix}/{'B' * 43}", SecretString="not a key")
    client.close()
    with pytest.raises(KeyStoreError, match="holds key") as err:
        store.signer(kid)
    with pytest.raises(KeyStoreError, match="PKCS#8") as garbage:
        store.signer("B" * 43)
    store.close()
    assert LocalSigner(other, "x").kid in str(err.value)
    assert "PRIVATE KEY" not in str(err.value)
    assert "not a key" not in str(garbage.value)


def test_secretsmanager_never_overwrites_a_secret(
    moto_server: str, secret_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating a key whose secret already exists fails and leaves the stored key untouched."""
    pem = generate_pem("ES256")
    monkeypatch.setattr("starter_ledger.tokenkeys.aws_secretsmanager.generate_pem", lambda _: pem)
    store = open_token_keystore(secretsmanager_url(moto_server, f"t/{uuid.uuid4().hex}"))
    first = store.create("ES256")
    with pytest.raises(KeyStoreError, match="already exists"):
        store.create("ES256")
    assert store.signer(first.ref).kid == first.kid
    store.close()


def test_debug_logging_never_prints_key_material(
    moto_server: str,
    secret_key: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With botocore DEBUG logging on, no PEM, secret key or session token reaches a log line."""
    token = "FwoGZXIvYXdzE" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    caplog.set_level(logging.DEBUG)
    store = open_token_keystore(secretsmanager_url(moto_server, f"t/{uuid.uuid4().hex}"))
    key = store.create("EdDSA")
    assert store.signer(key.ref).kid == key.kid
    store.close()
    assert "withheld" in caplog.text
    for secret in ("PRIVATE KEY", secret_key, token):
        assert secret not in caplog.text
