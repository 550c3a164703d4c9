"""What the Vault/OpenBao token key stores promise beyond the contract suite, on a real OpenBao
dev server: token checks, refused tokens, transit versions and key types, URL forms, and the
least-privilege policies of docs/key-stores/vault.md."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from _openbao import OpenBao, closed_hostport, kv_url, transit_url, use_token
from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.jwk import thumbprint, verify_signature
from starter_ledger.tokenkeys import open_token_keystore

DOC = Path(__file__).resolve().parents[1] / "docs" / "key-stores" / "vault.md"
MESSAGE = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0"


def unique(prefix: str = "starter-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@pytest.mark.parametrize("value", ["changeme", "<your-token>", "xxxxxxxx", "", "   "])
@pytest.mark.parametrize("make_url", [transit_url, kv_url])
def test_placeholder_or_empty_token_is_refused(
    monkeypatch: pytest.MonkeyPatch, make_url: Callable[[str, str], str], value: str
) -> None:
    """A forgotten placeholder or empty VAULT_TOKEN fails at once, naming the variable only."""
    use_token(monkeypatch, value)
    with pytest.raises(KeyStoreError) as err:
        open_token_keystore(make_url(closed_hostport(), "k"))
    assert not isinstance(err.value, KeyStoreUnreachableError)
    assert "VAULT_TOKEN" in str(err.value)
    if value.strip():
        assert value not in str(err.value)


def test_bao_token_is_used_when_vault_token_is_unset(
    openbao: OpenBao, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenBao users can export BAO_TOKEN instead of VAULT_TOKEN."""
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("BAO_TOKEN", openbao.root_token)
    store = open_token_keystore(transit_url(openbao.hostport, unique()))
    try:
        assert store.create("EdDSA").ref == "1"
    finally:
        store.close()


@pytest.mark.parametrize("make_url", [transit_url, kv_url])
def test_wrong_token_is_unreachable_and_not_echoed(
    openbao: OpenBao, monkeypatch: pytest.MonkeyPatch, make_url: Callable[[str, str], str]
) -> None:
    """A token Vault refuses is exit code 9 with a message that points at VAULT_TOKEN, not at it."""
    wrong = secrets.token_hex(16)
    use_token(monkeypatch, wrong)
    store = open_token_keystore(make_url(openbao.hostport, unique()))
    try:
        with pytest.raises(KeyStoreUnreachableError) as err:
            store.create("EdDSA")
    finally:
        store.close()
    text = str(err.value)
    assert "VAULT_TOKEN" in text
    assert store.url in text
    assert wrong not in text
    assert wrong not in repr(err.value)
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_transit_rotation_adds_versions_that_all_still_sign(
    openbao: OpenBao, monkeypatch: pytest.MonkeyPatch, alg: str
) -> None:
    """Each rotation is a new transit key version, and older versions keep signing."""
    use_token(monkeypatch, openbao.root_token)
    url = transit_url(openbao.hostport, unique())
    store = open_token_keystore(url)
    try:
        first, second = store.create(alg), store.create(alg)
        assert (first.ref, second.ref) == ("1", "2")
        assert first.kid != second.kid
        for key in (first, second):
            signer = store.signer(key.ref)
            assert (signer.alg, signer.kid) == (alg, thumbprint(key.public_jwk))
            signature = signer.sign(MESSAGE)
            assert len(signature) == 64
            assert verify_signature(key.public_jwk, MESSAGE, signature)
        with pytest.raises(KeyStoreError, match="no key 3") as err:
            store.signer("3")
        assert not isinstance(err.value, KeyStoreUnreachableError)
        with pytest.raises(KeyStoreError, match="key version"):
            store.signer("v1")
    finally:
        store.close()


def test_transit_key_keeps_its_type(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking an Ed25519 transit key for an ES256 key fails naming both key types."""
    use_token(monkeypatch, openbao.root_token)
    store = open_token_keystore(transit_url(openbao.hostport, unique()))
    try:
        store.create("EdDSA")
        with pytest.raises(KeyStoreError) as err:
            store.create("ES256")
        assert "ed25519" in str(err.value)
        assert "ecdsa-p256" in str(err.value)
        assert not isinstance(err.value, KeyStoreUnreachableError)
        assert store.signer("1").alg == "EdDSA"  # nothing was rotated
        with pytest.raises(KeyStoreError, match="no key 2"):
            store.signer("2")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("vault-transit://127.0.0.1:8200/transit", "vault-transit://HOST:PORT/MOUNT/KEY"),
        ("vault-transit://127.0.0.1:8200/", "vault-transit://HOST:PORT/MOUNT/KEY"),
        ("vault-transit://127.0.0.1:99999/transit/k", "vault-transit://HOST:PORT/MOUNT/KEY"),
        ("vault-transit://127.0.0.1:port/transit/k", "vault-transit://HOST:PORT/MOUNT/KEY"),
        ("vault-transit://:8200/transit/k", "vault-transit://HOST:PORT/MOUNT/KEY"),
        ("vault-transit://h:8200/transit/k?tls=maybe", "vault-transit://HOST:PORT/MOUNT/KEY"),
        ("vault-kv://127.0.0.1:8200/secret", "vault-kv://HOST:PORT/MOUNT/PATH"),
        ("vault-kv://127.0.0.1:0/secret/p", "vault-kv://HOST:PORT/MOUNT/PATH"),
        ("vault-kv://127.0.0.1:8200/secret/a//b", "vault-kv://HOST:PORT/MOUNT/PATH"),
        ("vault-kv://127.0.0.1:8200/secret/p?colour=red", "vault-kv://HOST:PORT/MOUNT/PATH"),
    ],
)
def test_malformed_url_names_the_expected_form(
    monkeypatch: pytest.MonkeyPatch, url: str, form: str
) -> None:
    """A mistyped store URL fails before any call, showing the form it should have."""
    use_token(monkeypatch, secrets.token_hex(16))
    with pytest.raises(KeyStoreError) as err:
        open_token_keystore(url)
    assert not isinstance(err.value, KeyStoreUnreachableError)
    assert form in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "vault-kv://root:hunter2-secret@127.0.0.1:8200/secret/p",
        "vault-transit://127.0.0.1:8200/transit/k?token=hunter2-secret",
    ],
)
def test_credentials_in_the_url_are_refused_unechoed(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """A token pasted into the URL (which goes into ledger events) is refused and not repeated."""
    use_token(monkeypatch, secrets.token_hex(16))
    with pytest.raises(KeyStoreError) as err:
        open_token_keystore(url)
    assert "hunter2-secret" not in str(err.value)


def test_plain_http_only_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """tls=false cannot send the token in clear to another machine."""
    use_token(monkeypatch, secrets.token_hex(16))
    with pytest.raises(KeyStoreError, match="loopback"):
        open_token_keystore("vault-kv://vault.example.com:8200/secret/p?tls=false")


def test_url_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL recorded in ledger events has one spelling: lower-case host, explicit port."""
    use_token(monkeypatch, secrets.token_hex(16))
    store = open_token_keystore("vault-transit://LOCALHOST/transit/Key-1?tls=false&namespace=a/b")
    try:
        assert store.url == "vault-transit://localhost:8200/transit/Key-1?namespace=a/b&tls=false"
        again = open_token_keystore(store.url)
        assert again.url == store.url
        again.close()
    finally:
        store.close()
    store = open_token_keystore("vault-kv://vault.example.com/kv/team/keys/?tls=true")
    try:
        assert store.url == "vault-kv://vault.example.com:8200/kv/team/keys"
    finally:
        store.close()


def _doc_policies() -> list[str]:
    return re.findall(r"```hcl\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def _token_with_policy(openbao: OpenBao, policy: str) -> str:
    name = unique("policy")
    openbao.request("PUT", f"sys/policies/acl/{name}", {"policy": policy})
    answer = openbao.request(
        "POST", "auth/token/create", {"policies": [name], "no_default_policy": True, "ttl": "10m"}
    )
    auth = answer["auth"]
    assert isinstance(auth, dict)
    return str(auth["client_token"])


def test_documented_transit_policy_is_enough(
    openbao: OpenBao, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator who copies the transit policy from the docs can rotate and sign."""
    transit, _ = _doc_policies()
    key = unique()
    use_token(monkeypatch, _token_with_policy(openbao, transit.replace("token-signing", key)))
    store = open_token_keystore(transit_url(openbao.hostport, key))
    other = open_token_keystore(transit_url(openbao.hostport, unique()))
    try:
        first, second = store.create("ES256"), store.create("ES256")
        for stored in (first, second):
            signature = store.signer(stored.ref).sign(MESSAGE)
            assert verify_signature(stored.public_jwk, MESSAGE, signature)
        with pytest.raises(KeyStoreUnreachableError, match="VAULT_TOKEN"):
            other.create("EdDSA")  # the policy covers its own key only
    finally:
        store.close()
        other.close()


def test_documented_kv_policy_is_enough(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator who copies the KV policy from the docs can create keys and sign with them."""
    _, kv = _doc_policies()
    path = f"starter/{uuid.uuid4().hex}"
    use_token(monkeypatch, _token_with_policy(openbao, kv.replace("starter/token-keys", path)))
    store = open_token_keystore(kv_url(openbao.hostport, path))
    try:
        for alg in ("EdDSA", "ES256"):
            stored = store.create(alg)
            signature = store.signer(stored.ref).sign(MESSAGE)
            assert verify_signature(stored.public_jwk, MESSAGE, signature)
    finally:
        store.close()
