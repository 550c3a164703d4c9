"""One contract suite for every token key store: file, OpenBao transit and KV, AWS KMS and
Secrets Manager (moto server), Azure Key Vault (the real client over an in-process fake service).

Each backend's fixture (``tests/_openbao.py``, ``tests/_moto.py``, ``tests/_azure_fake.py``)
returns a ``StoreCase``: the open store, a way to open it again from its URL alone, the
algorithms to exercise, the secrets it was given (which must never show up in its URL, its
errors or its ``repr``), and a store of the same kind that cannot be reached.
"""

from __future__ import annotations

import pytest

from _keystore_case import StoreCase
from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.jwk import alg_of_jwk, thumbprint, verify_signature
from starter_ledger.tokenkeys import open_token_keystore

BACKENDS = [
    "file_token_store",
    "vault_transit_store",
    "vault_kv_store",
    "aws_kms_store",
    "aws_secretsmanager_store",
    "azure_keyvault_store",
]
PUBLIC_MEMBERS = {"EdDSA": {"crv", "kty", "x"}, "ES256": {"crv", "kty", "x", "y"}}


@pytest.fixture(params=BACKENDS)
def case(request: pytest.FixtureRequest) -> StoreCase:
    value: StoreCase = request.getfixturevalue(request.param)
    return value


def test_create_returns_a_public_key_named_by_its_thumbprint(case: StoreCase) -> None:
    """A new key comes back as public members only, with kid = RFC 7638 thumbprint and its alg."""
    for alg in case.algs:
        key = case.store.create(alg)
        assert key.alg == alg
        assert set(key.public_jwk) == PUBLIC_MEMBERS[alg]
        assert "d" not in key.public_jwk
        assert key.kid == thumbprint(key.public_jwk)
        assert alg_of_jwk(key.public_jwk) == alg


def test_signatures_verify_under_the_published_key(case: StoreCase) -> None:
    """What the store signs verifies under the public JWK it returned, and only for that input."""
    for alg in case.algs:
        key = case.store.create(alg)
        signer = case.store.signer(key.ref)
        assert (signer.kid, signer.alg, signer.public_jwk) == (key.kid, alg, key.public_jwk)
        message = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ0ZXN0In0"
        signature = signer.sign(message)
        assert len(signature) == 64
        assert verify_signature(key.public_jwk, message, signature)
        assert not verify_signature(key.public_jwk, message + b"x", signature)


def test_each_create_makes_a_different_key(case: StoreCase) -> None:
    """Rotation needs a fresh key every time: two creates never return the same kid or ref."""
    alg = case.algs[0]
    first, second = case.store.create(alg), case.store.create(alg)
    assert first.kid != second.kid
    assert first.ref != second.ref
    # The older key still signs after the newer one exists (retired keys stay usable).
    assert verify_signature(first.public_jwk, b"m", case.store.signer(first.ref).sign(b"m"))


def test_a_key_is_found_again_from_the_url_alone(case: StoreCase) -> None:
    """The URL written into ledger events (plus credentials from the environment) finds the key."""
    key = case.store.create(case.algs[0])
    again = case.reopen()
    try:
        assert again.url == case.store.url
        assert again.signer(key.ref).kid == key.kid
    finally:
        again.close()


def test_unknown_key_is_a_key_store_error(case: StoreCase) -> None:
    """Asking for a key the store does not hold fails with the family's error, naming the ref."""
    with pytest.raises(KeyStoreError) as err:
        case.store.signer(case.missing_ref)
    assert not isinstance(err.value, KeyStoreUnreachableError)


def test_unsupported_algorithm_is_refused(case: StoreCase) -> None:
    """An algorithm the store cannot hold is refused before anything is created."""
    with pytest.raises(KeyStoreError, match="RS256"):
        case.store.create("RS256")


def test_unreachable_store_is_reported_as_such(case: StoreCase) -> None:
    """A store whose service cannot be reached raises KeyStoreUnreachableError (exit code 9)."""
    if case.unreachable is None:
        pytest.skip("a file store has no service to reach")  # only the file backend
    store = case.unreachable()
    with pytest.raises(KeyStoreUnreachableError):
        store.create(case.algs[0])


def test_secrets_never_appear_in_urls_reprs_or_errors(case: StoreCase) -> None:
    """Credentials given to a store stay out of its URL, its repr and its error messages."""
    texts = [case.store.url, repr(case.store)]
    try:
        case.store.signer(case.missing_ref)
    except KeyStoreError as e:
        texts.append(str(e))
    key = case.store.create(case.algs[0])
    texts.append(repr(case.store.signer(key.ref)))
    for secret in case.secrets:
        assert secret
        for text in texts:
            assert secret not in text


def test_open_by_url_chooses_the_backend(case: StoreCase) -> None:
    """open_token_keystore picks the same backend class from the URL scheme."""
    again = open_token_keystore(case.store.url)
    try:
        assert type(again) is type(case.store)
    finally:
        again.close()
