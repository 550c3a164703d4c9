"""What the Vault/OpenBao token key stores (``vault-transit://``, ``vault-kv://``) share.

For: parsing and normalising their URLs
(``SCHEME://HOST[:PORT]/MOUNT/NAME[?tls=false&namespace=NS]``), reading the token from
``VAULT_TOKEN`` (or ``BAO_TOKEN``), building an ``hvac`` client with short timeouts and no
redirects (a redirect would carry the token to another host), and translating every
``hvac``/``requests`` exception into ``KeyStoreError`` (the key is missing or unusable) or
``KeyStoreUnreachableError`` (the server could not be reached, failed, or refused the token).
Messages name the store URL, the Vault path and capability involved and what to check; never the
token or key material. Not for: anything engine-specific (``vault_transit``, ``vault_kv``).

HTTPS is the default; ``tls=false`` (plain HTTP) is accepted only for a loopback host, such as a
local dev server. The CA bundle comes from ``VAULT_CACERT`` / ``VAULT_CAPATH`` (or ``BAO_CACERT``
/ ``BAO_CAPATH``) when set, otherwise the system's.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import hvac
import requests
from hvac import exceptions as hvac_errors

from starter_contracts.providers import VaultStoreConfig
from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.secrets import require_secret

__all__ = ["VaultConnection", "VaultUrl", "parse_url"]

#: Seconds to wait for Vault to connect or answer.
TIMEOUT = 5
DEFAULT_PORT = 8200
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
#: Errors that mean "Vault understood and refused this request" (bad input, not the server).
_REJECTED = (hvac_errors.InvalidRequest, hvac_errors.ParamValidationError)


#: A parsed Vault key store URL (the contracts' provider configuration); ``str()`` is its
#: normalised form, without secrets.
VaultUrl = VaultStoreConfig


def _shown(url: str) -> str:
    """``url`` without its query or anything before an ``@``: safe to put in an error."""
    head = url.split("?", 1)[0].split("#", 1)[0]
    scheme, _, rest = head.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_url(url: str, scheme: str, *, mount_segments: int | None) -> VaultUrl:
    """``url`` parsed as ``SCHEME://HOST[:PORT]/MOUNT/NAME[?tls=false&namespace=NS]``.

    ``mount_segments=None``: the last path segment is the name and the rest the mount (transit,
    whose key names hold no ``/``); ``1``: the first segment is the mount and the rest the name
    (KV, whose paths may be nested). A ``KeyStoreError`` shows the expected form.
    """
    last = "KEY" if mount_segments is None else "PATH"
    form = f"use {scheme}://HOST:PORT/MOUNT/{last}[?tls=false&namespace=NS]"
    shown = _shown(url)
    if "#" in url or not url.lower().startswith(f"{scheme}://"):
        raise KeyStoreError(f"{shown} is not a {scheme}:// URL", hint=form)
    bad_host = KeyStoreError(f"{shown} needs a host and a port from 1 to 65535", hint=form)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise bad_host from None
    if not host or port == 0:
        raise bad_host
    if "@" in parts.netloc:
        raise KeyStoreError(
            f"{shown} carries credentials; the token comes from VAULT_TOKEN, never the URL",
            hint=form,
        )
    segments = parts.path.strip("/").split("/")
    if len(segments) < 2 or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise KeyStoreError(
            f"key store URL {shown} does not name a mount and a {last.lower()} "
            "(segments of letters, digits and _.-)",
            hint=form,
        )
    split = len(segments) - 1 if mount_segments is None else mount_segments
    mount, name = "/".join(segments[:split]), "/".join(segments[split:])
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise KeyStoreError(f"the query of {shown} is malformed", hint=form) from None
    names = [n for n, _ in pairs]
    if set(names) - {"tls", "namespace"} or len(names) != len(set(names)):
        raise KeyStoreError(f"{shown} has an unknown or repeated option", hint=form)
    given = dict(pairs)
    tls_value = given.get("tls", "true").lower()
    if tls_value not in ("true", "false"):
        raise KeyStoreError(f"the tls= option of {shown} is neither true nor false", hint=form)
    tls = tls_value == "true"
    if not tls and not _loopback(host):
        raise KeyStoreError(
            f"{shown} asks for plain HTTP (tls=false) to a host that is not loopback",
            hint="the token would cross the network in clear: drop tls=false and use HTTPS",
        )
    namespace = given.get("namespace")
    if namespace is not None and not _NAMESPACE.fullmatch(namespace.strip("/")):
        raise KeyStoreError(f"the namespace= option of {shown} is not a namespace path", hint=form)
    return VaultUrl(
        scheme=scheme,
        host=host.lower(),
        port=port or DEFAULT_PORT,
        mount=mount,
        name=name,
        tls=tls,
        namespace=namespace.strip("/") if namespace else None,
    )


def _token() -> tuple[str, str]:
    """The name of the variable the token came from, and the token."""
    for name in ("VAULT_TOKEN", "BAO_TOKEN"):
        value = os.environ.get(name)
        if value is not None and value.strip():
            return name, require_secret(name, value)
    return "VAULT_TOKEN", require_secret("VAULT_TOKEN", os.environ.get("VAULT_TOKEN"))


def _verify() -> bool | str:
    for name in ("VAULT_CACERT", "BAO_CACERT", "VAULT_CAPATH", "BAO_CAPATH"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return True


class VaultConnection:
    """An ``hvac`` client for one store URL that turns every failure into a key store error."""

    __slots__ = ("_client", "_token", "_token_name", "url")

    def __init__(self, where: VaultUrl) -> None:
        self.url = str(where)
        self._token_name, self._token = _token()
        self._client = hvac.Client(
            url=where.address,
            token=self._token,
            verify=_verify() if where.tls else True,
            timeout=TIMEOUT,
            allow_redirects=False,
            namespace=where.namespace,
        )

    @property
    def client(self) -> Any:
        """The ``hvac.Client``; call it only through ``call``."""
        return self._client

    def call(
        self, fn: Callable[..., Any], capability: str, path: str, /, *, missing: str, **kwargs: Any
    ) -> dict[str, Any]:
        """``fn(**kwargs)``'s answer; a ``KeyStoreError`` saying ``missing`` when Vault answers
        that ``path`` does not exist. ``capability`` on ``path`` is what the policy must grant."""
        answer = self._call(fn, capability, path, kwargs)
        if answer is None:
            raise KeyStoreError(
                missing, hint="check the URL: the key lives where 'keys rotate' created it"
            )
        return answer

    def find(
        self, fn: Callable[..., Any], capability: str, path: str, /, **kwargs: Any
    ) -> dict[str, Any] | None:
        """``fn(**kwargs)``'s answer, or ``None`` when Vault says ``path`` does not exist."""
        return self._call(fn, capability, path, kwargs)

    def _call(
        self, fn: Callable[..., Any], capability: str, path: str, kwargs: dict[str, Any]
    ) -> dict[str, Any] | None:
        try:
            answer = fn(**kwargs)
        except hvac_errors.InvalidPath:
            return None
        except (hvac_errors.VaultError, requests.RequestException) as e:
            raise self._translate(e, capability, path) from None
        if isinstance(answer, dict):
            return answer
        if isinstance(answer, requests.Response) and answer.status_code == 204:
            return {}
        raise KeyStoreUnreachableError(
            f"{self.url} gave an unexpected answer to {capability} on {path}",
            hint="check that the address is the Vault/OpenBao API (not a proxy or standby node)",
        )

    def _translate(self, error: Exception, capability: str, path: str) -> KeyStoreError:
        what = f"{capability} on {path}"
        if isinstance(error, requests.Timeout):
            return KeyStoreUnreachableError(
                f"{self.url} did not answer {what} within {TIMEOUT} s",
                hint="check the address and the network (firewall, proxy) and that Vault is up",
            )
        if isinstance(error, requests.exceptions.SSLError):
            return KeyStoreUnreachableError(
                f"TLS with {self.url} failed for {what}",
                hint="check the certificate and VAULT_CACERT; tls=false is only for loopback",
            )
        if isinstance(error, requests.RequestException):
            return KeyStoreUnreachableError(
                f"cannot reach {self.url} for {what} ({type(error).__name__})",
                hint="check the host and port in the URL, tls=, and that Vault/OpenBao is up",
            )
        detail = self._detail(error)
        if isinstance(error, hvac_errors.Unauthorized | hvac_errors.Forbidden):
            return KeyStoreUnreachableError(
                f"{self.url} refused {what}{detail}",
                hint=f"check that {self._token_name} holds a valid, unexpired token whose policy "
                f"grants {capability} on {path}, and namespace= if Vault uses namespaces",
            )
        if isinstance(error, _REJECTED):
            return KeyStoreError(f"{self.url} rejected {what}{detail}")
        return KeyStoreUnreachableError(
            f"{self.url} could not serve {what}{detail}",
            hint="Vault is sealed, failing or throttling: check its status and logs",
        )

    def _detail(self, error: Exception) -> str:
        """The server's own error text, one line, short, without the token."""
        errors = getattr(error, "errors", None) or []
        text = "; ".join(str(e) for e in (errors if isinstance(errors, list) else [errors]))
        text = " ".join(text.replace(self._token, "***").split())[:200]
        return f": {text}" if text else ""

    def close(self) -> None:
        self._client.adapter.close()

    def __repr__(self) -> str:
        return f"VaultConnection({self.url!r})"
