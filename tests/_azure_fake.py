"""An in-process fake Azure Key Vault, plugged into the real ``azure-keyvault-keys`` client as its
azure-core HTTP transport, and the ``azure-keyvault://`` store of the contract suite on it.

There is no Key Vault emulator, so ``FakeKeyVault`` answers the few REST calls the store makes,
in Key Vault's wire format, and everything above the transport (the client, its pipeline, the
challenge authentication policy, retries, (de)serialisation) is the real SDK. No test opens a
socket to Azure: the fake transport never touches the network, and the "unreachable" store uses a
real ``RequestsTransport`` redirected to a closed loopback port.

What the fake checks: HTTPS and its own vault host; an ``api-version`` query parameter (it
answers with the version the client sent); the bearer-challenge handshake (a request without
``Authorization`` gets 401 with ``WWW-Authenticate: Bearer authorization=..., resource=...``, and
afterwards the header must be exactly ``Bearer <the fake credential's token>``); key names;
``kty`` EC / ``crv`` P-256 on create; ``alg`` ES256 and a 32-byte digest on sign; ``sign`` in
the version's ``key_ops``. Each create makes a new version with a real P-256 key (``cryptography``)
whose private half stays in the fake. Unknown keys and versions get 404 ``KeyNotFound`` bodies.

Limits: no RBAC or access policies (any request with the right token may do anything), no token
expiry, tenant or audience checks beyond the exact token, no soft delete, disabled keys,
``not_before``/``expires_on``, tags on read, HSM keys, other key types or operations (list,
delete, rotate, verify, encrypt...), no throttling and no ``x-ms-keyvault-*`` semantics. A request
for anything else raises ``NotImplementedError``, so a test fails loudly instead of passing on a
guessed answer.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.core.rest import HttpRequest, HttpResponse
from azure.core.utils import CaseInsensitiveDict
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from _keystore_case import StoreCase, free_port
from starter_ledger.tokenkeys.azure_keyvault import AzureKeyVaultStore

TENANT = "00000000-0000-4000-8000-000000000001"  # a made-up tenant id
SCOPE = "https://vault.azure.net/.default"
CHALLENGE = (
    f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
    'resource="https://vault.azure.net"'
)
_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeCredential:
    """A ``TokenCredential`` handing out one fixed bearer token; records the scopes asked for."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.requests.append((scopes, tenant_id))
        return AccessToken(self.token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "FakeCredential(<token withheld>)"


class FakeResponse(HttpResponse):
    """A complete, already-read response (the public ``azure.core.rest.HttpResponse`` ABC)."""

    def __init__(
        self, request: HttpRequest, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        self._request, self._status, self._body = request, status, body
        self._headers: CaseInsensitiveDict = CaseInsensitiveDict(headers)
        self._encoding: str | None = "utf-8"

    @property
    def request(self) -> HttpRequest:
        return self._request

    @property
    def status_code(self) -> int:
        return self._status

    @property
    def headers(self) -> CaseInsensitiveDict:
        return self._headers

    @property
    def reason(self) -> str:
        return {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}.get(
            self._status, "Error"
        )

    @property
    def content_type(self) -> str | None:
        return self._headers.get("Content-Type")

    @property
    def is_closed(self) -> bool:
        return True

    @property
    def is_stream_consumed(self) -> bool:
        return True

    @property
    def encoding(self) -> str | None:
        return self._encoding

    @encoding.setter
    def encoding(self, value: str | None) -> None:
        self._encoding = value

    @property
    def url(self) -> str:
        return self._request.url

    @property
    def content(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode(encoding or self._encoding or "utf-8")

    def json(self) -> Any:
        return json.loads(self._body)

    def raise_for_status(self) -> None:
        if self._status >= 400:
            raise HttpResponseError(response=self)

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *args: Any) -> None:
        return None

    def close(self) -> None:
        return None

    def read(self) -> bytes:
        return self._body

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class _Version:
    private_key: ec.EllipticCurvePrivateKey
    key_ops: list[str]
    created: int
    tags: dict[str, str]


@dataclass
class FakeKeyVault:
    """The state and REST handling of one fake vault at ``https://<host>``."""

    host: str
    token: str
    keys: dict[str, dict[str, _Version]] = field(default_factory=dict)
    #: ``(method, path, had Authorization, JSON body or None)`` of every request, in order.
    log: list[tuple[str, str, bool, Any]] = field(default_factory=list)

    def handle(self, request: HttpRequest) -> FakeResponse:
        parts = urlsplit(request.url)
        if parts.scheme != "https" or parts.netloc != self.host:
            raise NotImplementedError(f"the fake vault is https://{self.host}, not {request.url}")
        body = _json_body(request)
        auth = request.headers.get("Authorization")
        self.log.append((request.method, parts.path, auth is not None, body))
        versions = parse_qs(parts.query).get("api-version")
        if not versions:
            return self._error(request, 400, "MissingApiVersionParameter", "api-version missing")
        if auth != f"Bearer {self.token}":  # no token yet (the challenge), or a wrong one
            message = "AKV10000: Request is missing a Bearer or PoP token."
            if auth is not None:
                message = "AKV10032: Invalid issuer."
            return self._error(
                request, 401, "Unauthorized", message, {"WWW-Authenticate": CHALLENGE}
            )
        segments = parts.path.strip("/").split("/")
        method, count = request.method, len(segments)
        if segments[0] != "keys" or count < 2:
            raise NotImplementedError(f"the fake vault has no {method} {parts.path}")
        name = segments[1]
        if not _NAME.fullmatch(name):
            return self._error(request, 400, "BadParameter", "The key name is invalid.")
        if method == "POST" and count == 3 and segments[2] == "create":
            return self._create(request, name, body)
        if method == "GET" and count in (2, 3):  # /keys/NAME or /keys/NAME/ (latest), or VERSION
            return self._get(request, name, segments[2] if count == 3 else "")
        if method == "POST" and count == 4 and segments[3] == "sign":
            return self._sign(request, name, segments[2], body)
        raise NotImplementedError(f"the fake vault has no {method} {parts.path}")

    def _create(self, request: HttpRequest, name: str, body: Any) -> FakeResponse:
        if not isinstance(body, dict) or body.get("kty") not in ("EC", "EC-HSM"):
            return self._error(request, 400, "BadParameter", "The fake makes only EC keys.")
        if body.get("kty") == "EC-HSM" or body.get("crv", "P-256") != "P-256":
            return self._error(request, 400, "BadParameter", "The fake makes only EC P-256 keys.")
        version = uuid.uuid4().hex
        self.keys.setdefault(name, {})[version] = _Version(
            private_key=ec.generate_private_key(ec.SECP256R1()),
            key_ops=list(body.get("key_ops") or ["sign", "verify"]),
            created=int(time.time()),
            tags=dict(body.get("tags") or {}),
        )
        return self._ok(request, self._bundle(name, version))

    def _find(self, request: HttpRequest, name: str, version: str) -> FakeResponse | str:
        """The version asked for (``""``: the latest), or a 404 response."""
        known = self.keys.get(name, {})
        if not version and known:
            version = list(known)[-1]  # versions are kept in the order they were made
        if version in known:
            return version
        what = f"{name}/{version}" if version else name
        return self._error(
            request,
            404,
            "KeyNotFound",
            f"A key with (name/id) {what} was not found in this key vault. If you recently "
            "deleted this key you may be able to recover it using the correct recovery command. "
            "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid="
            "2125182",
        )

    def _get(self, request: HttpRequest, name: str, version: str) -> FakeResponse:
        found = self._find(request, name, version)
        return (
            found
            if isinstance(found, FakeResponse)
            else self._ok(request, self._bundle(name, found))
        )

    def _sign(self, request: HttpRequest, name: str, version: str, body: Any) -> FakeResponse:
        found = self._find(request, name, version)
        if isinstance(found, FakeResponse):
            return found
        entry = self.keys[name][found]
        if "sign" not in entry.key_ops:
            return self._error(request, 403, "Forbidden", "Operation sign is not permitted.")
        if not isinstance(body, dict) or body.get("alg") != "ES256":
            return self._error(request, 400, "BadParameter", "The fake signs only ES256.")
        digest = unb64url(str(body.get("value", "")))
        if len(digest) != 32:
            return self._error(request, 400, "BadParameter", "Invalid digest length.")
        der = entry.private_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # Key Vault answers r || s
        return self._ok(request, {"kid": self._kid(name, found), "value": b64url(raw)})

    def _kid(self, name: str, version: str) -> str:
        return f"https://{self.host}/keys/{name}/{version}"

    def _bundle(self, name: str, version: str) -> dict[str, Any]:
        entry = self.keys[name][version]
        numbers = entry.private_key.public_key().public_numbers()
        return {
            "key": {
                "kid": self._kid(name, version),
                "kty": "EC",
                "key_ops": entry.key_ops,
                "crv": "P-256",
                "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big")),
            },
            "attributes": {
                "enabled": True,
                "created": entry.created,
                "updated": entry.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
                "exportable": False,
            },
            "tags": entry.tags,
        }

    def _ok(self, request: HttpRequest, payload: dict[str, Any]) -> FakeResponse:
        return self._respond(request, 200, payload, {})

    def _error(
        self,
        request: HttpRequest,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> FakeResponse:
        return self._respond(
            request, status, {"error": {"code": code, "message": message}}, headers
        )

    def _respond(
        self, request: HttpRequest, status: int, payload: Any, headers: dict[str, str] | None
    ) -> FakeResponse:
        version = parse_qs(urlsplit(request.url).query).get("api-version", ["7.6"])[0]
        all_headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": f"fake ({version})",
            **(headers or {}),
        }
        return FakeResponse(request, status, json.dumps(payload).encode(), all_headers)


def _json_body(request: HttpRequest) -> Any:
    content = request.content
    if not content:
        return None
    text = content.decode() if isinstance(content, bytes) else str(content)
    return json.loads(text)


class FakeTransport(HttpTransport[HttpRequest, HttpResponse]):
    """An azure-core transport that hands every request to a ``FakeKeyVault``; no network."""

    def __init__(self, vault: FakeKeyVault) -> None:
        self.vault = vault

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self.vault.handle(request)

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> FakeTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        return None


class ClosedPortTransport(HttpTransport[HttpRequest, HttpResponse]):
    """The real requests transport, with every request sent to a closed loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inner = RequestsTransport(connection_timeout=2, read_timeout=2)

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        request.url = urlsplit(request.url)._replace(netloc=f"127.0.0.1:{self.port}").geturl()
        return cast(HttpResponse, self.inner.send(request, **kwargs))

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> ClosedPortTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.inner.__exit__(*args)


@dataclass
class AzureFake:
    """One fake vault, its credential and a way to open stores on it."""

    vault: FakeKeyVault
    credential: FakeCredential
    url: str
    opened: list[AzureKeyVaultStore] = field(default_factory=list)

    def open(
        self, *, credential: FakeCredential | None = None, url: str | None = None
    ) -> AzureKeyVaultStore:
        store = AzureKeyVaultStore(
            url or self.url,
            credential=credential or self.credential,
            transport=FakeTransport(self.vault),
        )
        self.opened.append(store)
        return store

    def unreachable(self) -> AzureKeyVaultStore:
        store = AzureKeyVaultStore(
            self.url, credential=self.credential, transport=ClosedPortTransport()
        )
        self.opened.append(store)
        return store


@contextmanager
def fake_azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureFake]:
    """A fresh fake vault with its own host and token, every ``AZURE_*`` variable unset; the
    stores opened on it are closed at the end."""
    for name in [n for n in os.environ if n.startswith("AZURE_")]:
        monkeypatch.delenv(name)
    host = f"starter-test-{uuid.uuid4().hex[:12]}.vault.azure.net"
    token = "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(32)
    url = f"azure-keyvault://{host}/token-signing"
    fake = AzureFake(FakeKeyVault(host, token), FakeCredential(token), url)
    try:
        yield fake
    finally:
        for store in fake.opened:
            store.close()


@pytest.fixture
def azure_keyvault_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreCase]:
    """The real Key Vault client over the fake vault: ES256 only (Azure has no Ed25519)."""
    with fake_azure(monkeypatch) as fake:
        yield StoreCase(
            store=fake.open(),
            reopen=fake.open,
            algs=("ES256",),
            missing_ref=uuid.uuid4().hex,
            secrets=(fake.credential.token,),
            unreachable=fake.unreachable,
        )
