"""``azure-keyvault://`` specifics, beyond the contract suite: the real ``azure-keyvault-keys``
client over the in-process fake vault of ``tests/_azure_fake.py`` (no network, no Azure)."""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections.abc import Iterator

import jwt
import pytest

from _azure_fake import SCOPE, TENANT, AzureFake, FakeCredential, b64url, fake_azure
from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.tokenkeys import open_token_keystore
from starter_ledger.tokenkeys.azure_keyvault import AzureKeyVaultStore

FORM = "azure-keyvault://VAULT-HOST/KEY-NAME"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureFake]:
    with fake_azure(monkeypatch) as value:
        yield value


def test_eddsa_is_refused_naming_es256(fake: AzureFake) -> None:
    """Asking Azure for an Ed25519 key fails at once, saying Azure has none and to use ES256."""
    with pytest.raises(KeyStoreError, match="no Ed25519") as err:
        fake.open().create("EdDSA")
    assert "ES256" in str(err.value)
    assert fake.vault.log == []  # refused before any call to the vault


def test_wrong_bearer_token_is_unreachable_without_the_token(fake: AzureFake) -> None:
    """A token the vault refuses is reported as exit 9, and neither token shows in the error."""
    wrong = FakeCredential("eyJ0eXAiOiJKV1QifQ.wrong-" + uuid.uuid4().hex)
    with pytest.raises(KeyStoreUnreachableError) as err:
        fake.open(credential=wrong).create("ES256")
    text = f"{err.value} {err.value!r}"
    assert wrong.token not in text
    assert fake.credential.token not in text
    assert fake.vault.host in text
    assert fake.vault.keys == {}


def test_unknown_key_name_is_a_key_store_error(fake: AzureFake) -> None:
    """A URL naming a key the vault does not hold fails as a missing key (exit 7), naming it."""
    fake.open().create("ES256")  # the vault holds another key
    store = fake.open(url=f"azure-keyvault://{fake.vault.host}/no-such-key")
    with pytest.raises(KeyStoreError) as err:
        store.signer(uuid.uuid4().hex)
    assert not isinstance(err.value, KeyStoreUnreachableError)
    assert "no-such-key" in str(err.value)


def test_a_token_signed_in_the_vault_verifies_with_pyjwt(fake: AzureFake) -> None:
    """A JWT signed through this store is accepted by a stock JWT library given the public JWK."""
    store = fake.open()
    key = store.create("ES256")
    header = {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
    claims = {"iss": "https://issuer.example", "sub": "alice"}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = store.signer(key.ref).sign(signing_input.encode())
    token = f"{signing_input}.{b64url(signature)}"
    public = jwt.PyJWK({**key.public_jwk, "alg": "ES256", "kid": key.kid})
    assert jwt.decode(token, public, algorithms=["ES256"]) == claims
    assert jwt.get_unverified_header(token)["kid"] == key.kid


def test_only_a_digest_goes_to_the_vault_after_the_bearer_challenge(fake: AzureFake) -> None:
    """The client answers Key Vault's challenge, and only the SHA-256 of a token leaves here."""
    store = fake.open()
    key = store.create("ES256")
    message = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJib2IifQ"
    store.signer(key.ref).sign(message)
    assert fake.vault.log[0][2] is False  # the first request carries no token: the challenge
    assert all(had_token for _, _, had_token, _ in fake.vault.log[1:])
    assert set(fake.credential.requests) == {((SCOPE,), TENANT)}  # the scope the vault named
    signs = [body for method, path, _, body in fake.vault.log if path.endswith("/sign")]
    assert signs == [{"alg": "ES256", "value": b64url(hashlib.sha256(message).digest())}]
    assert list(fake.vault.keys["token-signing"]) == [key.ref]  # the ref is the key version


def test_malformed_url_names_the_expected_form() -> None:
    """A mistyped store URL fails before any call, showing the azure-keyvault:// form."""
    for url in (
        "azure-keyvault://",
        "azure-keyvault://myvault.vault.azure.net",
        "azure-keyvault://myvault.vault.azure.net/",
        "azure-keyvault://myvault.vault.azure.net/bad_name",
        "azure-keyvault://myvault/token-signing",
        "azure-keyvault://myvault.vault.azure.net/a/b",
        "azure-keyvault://myvault.vault.azure.net/k?tenant=x",
    ):
        with pytest.raises(KeyStoreError, match=FORM):
            open_token_keystore(url)
    with pytest.raises(KeyStoreError) as err:
        open_token_keystore("azure-keyvault://app:s3cr3t-pw@myvault.vault.azure.net/k")
    assert "s3cr3t-pw" not in str(err.value)


def test_placeholder_client_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forgotten AZURE_CLIENT_SECRET=changeme fails at once, naming the variable only."""
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "changeme")
    with pytest.raises(KeyStoreError, match="AZURE_CLIENT_SECRET") as err:
        open_token_keystore("azure-keyvault://myvault.vault.azure.net/token-signing")
    assert "placeholder" in str(err.value)
    assert "changeme" not in str(err.value)


def test_missing_azure_identity_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without azure-identity, the first use (not the opening) says to pip install it."""
    monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # import fails, installed or not
    store = open_token_keystore("azure-keyvault://myvault.vault.azure.net/token-signing")
    try:
        assert isinstance(store, AzureKeyVaultStore)
        with pytest.raises(KeyStoreError, match="pip install azure-identity"):
            store.create("ES256")
    finally:
        store.close()
