"""``azure-keyvault://VAULT-HOST/KEY`` token key store: one Azure Key Vault EC P-256 key, one
version per token key.

For: keys whose private half must never leave Azure Key Vault. The URL names one key;
``create("ES256")`` calls ``create_ec_key`` (P-256), which makes the key the first time and a new
version of it afterwards, so each token key is a key version and its ``ref`` is the version id.
The public key comes from that version's JWK. Signing sends the SHA-256 digest of the JWS signing
input to the vault's ``sign`` operation (ES256) and checks the ``r || s`` signature it returns
against the public key. Credentials come from ``azure.identity.DefaultAzureCredential``
(``pip install azure-identity``), made on first use: opening a store touches neither credentials
nor the network. Not for: EdDSA (Azure Key Vault has no Ed25519, so ``EdDSA`` is refused), Managed
HSM (it takes only EC-HSM keys), or keys a process must sign with while Azure is unreachable
(every signature is a call to the vault).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import HttpTransport
from azure.keyvault.keys import KeyClient, KeyCurveName, KeyOperation, KeyVaultKey
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec

from starter_contracts.providers import AzureStoreConfig
from starter_ledger.errors import FormatError, KeyStoreError, KeyStoreUnreachableError
from starter_ledger.jwk import der_to_raw_ecdsa, public_jwk_of, thumbprint, verify_signature
from starter_ledger.secrets import require_secret
from starter_ledger.tokenkeys.interface import PublicKeyParts, StoredKey

__all__ = ["AzureKeyVaultSigner", "AzureKeyVaultStore", "open_store", "parse_url"]

SCHEME = "azure-keyvault"
_FORM = (
    "use azure-keyvault://VAULT-HOST/KEY-NAME, like azure-keyvault://myvault.vault.azure.net/tokens"
)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_VERSION = re.compile(r"[0-9a-f]{32}")
_CODE = re.compile(r"[A-Za-z0-9_.]{1,64}")
#: Few retries and short timeouts: a signer must fail fast, not hang a request.
_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 1, "connection_timeout": 5, "read_timeout": 10}
_NETWORK = "check the vault host, DNS and the network (proxy, private endpoint, vault firewall)"
_ACCESS = (
    "check the Azure credentials (AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, a managed "
    "identity or 'az login') and that they hold 'Key Vault Crypto Officer' (to create keys) or "
    "'Key Vault Crypto User' (to sign) on the vault"
)
T = TypeVar("T")


def parse_url(url: str) -> AzureStoreConfig:
    """The vault host and key name of ``url``; a ``KeyStoreError`` shows the expected form."""
    scheme, sep, rest = url.partition("://")
    shown = scheme + sep + rest.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if scheme.lower() != SCHEME or not sep or any(c in rest for c in "?#@"):
        raise KeyStoreError(f"{shown} is not an {SCHEME}:// URL without query or user", hint=_FORM)
    host, _, name = rest.partition("/")
    host = host.lower()
    if not _HOST.fullmatch(host):
        raise KeyStoreError(f"{shown} names no vault host (like NAME.vault.azure.net)", hint=_FORM)
    if not _NAME.fullmatch(name):
        raise KeyStoreError(
            f"{shown} names no key (1 to 127 letters, digits and hyphens)", hint=_FORM
        )
    return AzureStoreConfig(vault_host=host, key_name=name)


def _translate(error: Exception, vault: str, action: str, what: str) -> KeyStoreError:
    """The key store error for an Azure SDK ``error`` while doing ``action`` on ``what``."""
    status = error.status_code if isinstance(error, HttpResponseError) else None
    code = getattr(getattr(error, "error", None), "code", None)
    code = code if isinstance(code, str) and _CODE.fullmatch(code) else f"HTTP {status}"
    if isinstance(error, ResourceNotFoundError) or status == 404:
        return KeyStoreError(
            f"no {what} in {vault}", hint="check the URL: the key lives where 'keys rotate' made it"
        )
    if isinstance(error, ClientAuthenticationError) and status is None:
        return KeyStoreUnreachableError(f"no usable Azure credentials for {vault}", hint=_ACCESS)
    if isinstance(error, ClientAuthenticationError) or status in (401, 403):
        return KeyStoreUnreachableError(f"{vault} refused {action} ({code})", hint=_ACCESS)
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return KeyStoreUnreachableError(
            f"cannot reach {vault} for {action} ({type(error).__name__})", hint=_NETWORK
        )
    if status is not None and (status == 429 or status >= 500):
        return KeyStoreUnreachableError(
            f"{vault} could not serve {action} ({code})",
            hint="Key Vault is throttling or failing: retry later, check Azure status",
        )
    if isinstance(error, HttpResponseError):
        return KeyStoreError(f"{vault} rejected {action} for {what} ({code})")
    if isinstance(error, ValueError):
        return KeyStoreError(
            f"the Azure SDK refused {action} on {vault}",
            hint="VAULT-HOST must be the vault's own host (NAME.vault.azure.net)",
        )
    return KeyStoreUnreachableError(f"cannot use {vault} for {action} ({type(error).__name__})")


class AzureKeyVaultSigner(PublicKeyParts):
    """Signs with one version of the vault key; ``repr`` shows only the version and ``kid``."""

    __slots__ = ("_client", "_ref", "_store")

    def __init__(self, store: AzureKeyVaultStore, key: KeyVaultKey, jwk: dict[str, str]) -> None:
        self._store = store
        self._set_public(jwk)
        self._ref = str(key.properties.version)
        self._client = store._crypto_client(key)

    def sign(self, message: bytes) -> bytes:
        digest = hashlib.sha256(message).digest()
        result = self._store._call(
            lambda: self._client.sign(SignatureAlgorithm.es256, digest), "keys/sign", self._ref
        )
        signature = bytes(result.signature)
        if len(signature) != 64:  # Key Vault answers r || s; a DER answer is converted anyway
            with contextlib.suppress(FormatError):
                signature = der_to_raw_ecdsa(signature)
        if not verify_signature(self._jwk, message, signature):
            raise KeyStoreError(
                f"key version {self._ref} in {self._store.url} returned a signature that does "
                f"not verify under key {self._kid}",
                hint="check the key in the Azure portal (was it replaced or imported anew?)",
            )
        return signature

    def __repr__(self) -> str:
        return f"AzureKeyVaultSigner(ref={self._ref!r}, kid={self._kid!r})"


class AzureKeyVaultStore:
    """Token keys as versions of one Azure Key Vault EC P-256 key."""

    algs: tuple[str, ...] = ("ES256",)

    def __init__(
        self,
        url: str,
        *,
        credential: TokenCredential | None = None,
        transport: HttpTransport[Any, Any] | None = None,
    ) -> None:
        config = parse_url(url)
        self._host, self._name = config.vault_host, config.key_name
        self._vault_url = f"https://{self._host}"
        if credential is None and os.environ.get("AZURE_CLIENT_SECRET") is not None:
            require_secret("AZURE_CLIENT_SECRET", os.environ["AZURE_CLIENT_SECRET"])
        self._credential = credential
        self._owns_credential = False
        self._options = dict(_CLIENT_OPTIONS)
        if transport is not None:  # tests: the fake vault; otherwise azure-core's requests one
            self._options["transport"] = transport
        self._keys: KeyClient | None = None
        self._clients: list[CryptographyClient] = []

    @property
    def url(self) -> str:
        return f"{SCHEME}://{self._host}/{self._name}"

    def _get_credential(self) -> TokenCredential:
        if self._credential is None:  # made on first use: opening a store needs no credentials
            try:
                identity = importlib.import_module("azure.identity")
            except ImportError:
                raise KeyStoreError(
                    f"{self.url} needs Azure credentials, and azure-identity is not installed",
                    hint="run 'pip install azure-identity' (DefaultAzureCredential reads the "
                    "environment, a managed identity or 'az login')",
                ) from None
            self._credential = identity.DefaultAzureCredential()
            self._owns_credential = True
        return self._credential

    def _key_client(self) -> KeyClient:
        if self._keys is None:
            self._keys = KeyClient(self._vault_url, self._get_credential(), **self._options)
        return self._keys

    def _crypto_client(self, key: KeyVaultKey) -> CryptographyClient:
        client = CryptographyClient(key, self._get_credential(), **self._options)
        self._clients.append(client)
        return client

    def _call(self, call: Callable[[], T], action: str, ref: str | None) -> T:
        what = f"key {self._name}" + (f" version {ref}" if ref else "")
        try:
            return call()
        except (AzureError, ValueError) as e:
            raise _translate(e, self._vault_url, action, what) from None

    def _jwk(self, key: KeyVaultKey, what: str) -> dict[str, str]:
        kty, crv, x, y = (getattr(key.key, f, None) for f in ("kty", "crv", "x", "y"))
        try:
            if kty not in ("EC", "EC-HSM") or crv != "P-256" or not isinstance(x, bytes):
                raise ValueError(what)
            if not isinstance(y, bytes):
                raise TypeError(what)
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            return public_jwk_of(numbers.public_key())
        except (ValueError, TypeError, FormatError):
            raise KeyStoreError(
                f"{what} in {self.url} is not an EC P-256 key",
                hint="use a key name that holds only keys made by 'keys rotate'",
            ) from None

    def create(self, alg: str) -> StoredKey:
        if alg == "EdDSA":
            raise KeyStoreError(
                f"Azure Key Vault has no Ed25519 keys, so {self.url} cannot create EdDSA keys",
                hint="use ES256 with azure-keyvault://, or another store for EdDSA",
            )
        if alg != "ES256":
            raise KeyStoreError(f"{self.url} cannot create a key for {alg!r}", hint="use ES256")
        key = self._call(
            lambda: self._key_client().create_ec_key(
                self._name,
                curve=KeyCurveName.p_256,
                key_operations=[KeyOperation.sign, KeyOperation.verify],
                tags={"starter-ledger": "token-key"},
            ),
            "keys/create",
            None,
        )
        ref = str(key.properties.version or "")
        if not _VERSION.fullmatch(ref):
            raise KeyStoreUnreachableError(f"{self._vault_url} gave no version for the new key")
        jwk = self._jwk(key, f"new version {ref} of key {self._name}")
        return StoredKey(ref=ref, alg="ES256", public_jwk=jwk, kid=thumbprint(jwk))

    def signer(self, ref: str) -> AzureKeyVaultSigner:
        if not _VERSION.fullmatch(ref):
            raise KeyStoreError(
                f"{ref!r} is not a key of {self.url} (expected a key version: 32 hex digits)"
            )
        key = self._call(lambda: self._key_client().get_key(self._name, ref), "keys/read", ref)
        what = f"version {ref} of key {self._name}"
        if key.properties.version != ref or key.properties.enabled is False:
            raise KeyStoreError(f"{what} in {self.url} is disabled or was not found")
        return AzureKeyVaultSigner(self, key, self._jwk(key, what))

    def close(self) -> None:
        for client in [*self._clients, *([self._keys] if self._keys else [])]:
            client.close()
        self._clients, self._keys = [], None
        if self._owns_credential:
            getattr(self._credential, "close", lambda: None)()
            self._credential, self._owns_credential = None, False

    def __repr__(self) -> str:
        return f"AzureKeyVaultStore({self.url!r})"


def open_store(url: str) -> AzureKeyVaultStore:
    """The ``azure-keyvault://`` store at ``url`` (credentials are made on first use)."""
    return AzureKeyVaultStore(url)
