"""What the AWS token key stores (``aws-kms://``, ``aws-secretsmanager://``) share.

For: parsing and normalising their URLs (``SCHEME://REGION[/PREFIX][?endpoint=URL&...]``),
building a ``boto3`` client with short timeouts and few retries, and translating every botocore
exception into ``KeyStoreError`` (the key is missing or unusable) or ``KeyStoreUnreachableError``
(AWS could not be reached or refused the call). Messages name the store URL, the error code and
what to check; never credentials, an AWS error text (which may quote request details) or key
material. botocore's DEBUG records of request and response bodies and signed headers are withheld
when they carry a private key or a session token (``botocore.endpoint``, ``.parsers``, ``.auth``).
Not for: anything service-specific (``aws_kms``, ``aws_secretsmanager``).

Credentials come from boto3's default chain (environment, profiles, SSO, instance/task roles);
when ``AWS_SECRET_ACCESS_KEY`` is set it must not be a placeholder. Plain ``http://`` endpoints
are accepted only on loopback (tests, local proxies): anything else must be ``https://``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from starter_contracts.providers import AwsStoreConfig
from starter_ledger.errors import KeyStoreError, KeyStoreUnreachableError
from starter_ledger.secrets import require_secret

__all__ = ["AWS_ERRORS", "AwsUrl", "make_client", "parse_url", "translate"]

#: Every exception a boto3 call raises on purpose.
AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)

_REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+-[0-9]{1,2}")
_CONFIG = Config(
    connect_timeout=5,
    read_timeout=5,
    retries={"max_attempts": 2, "mode": "standard"},
    user_agent_appid="starter-ledger",
)
#: Error codes meaning "these credentials may not do this" (or are not credentials at all).
_REFUSED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "RequestExpired",
        "DecryptionFailure",
    }
)
_THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
_MISSING = frozenset({"NotFoundException", "ResourceNotFoundException", "InvalidArnException"})
_DISABLED = frozenset({"DisabledException", "KMSInvalidStateException", "InvalidRequestException"})
_CREDENTIALS_HINT = (
    "check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the "
    "instance/task role)"
)


class _WithholdSecrets(logging.Filter):
    """Replaces a botocore DEBUG record that would print a private key or a session token."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage().lower()
        except Exception:  # a record that cannot be formatted is shown as logging would
            return True
        if "private key" in text or "x-amz-security-token" in text:
            record.msg, record.args = "(botocore record withheld: it carries key material)", ()
        return True


_WITHHOLD = _WithholdSecrets()
for _name in ("botocore.endpoint", "botocore.parsers", "botocore.auth"):
    if not any(isinstance(f, _WithholdSecrets) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_WITHHOLD)


#: A parsed AWS key store URL (the contracts' provider configuration); ``str()`` is its
#: normalised form, without secrets.
AwsUrl = AwsStoreConfig


def _shown(url: str) -> str:
    """``url`` without its query or anything before an ``@``: safe to put in an error."""
    head = url.split("?", 1)[0].split("#", 1)[0]
    scheme, _, rest = head.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _endpoint(value: str, form: str) -> str:
    bad = KeyStoreError(
        "the endpoint= option is not an http(s)://HOST[:PORT] URL without credentials", hint=form
    )
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise bad from None
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        raise bad
    if parts.query or parts.fragment:
        raise bad
    if parts.scheme.lower() == "http" and not _loopback(host):
        raise KeyStoreError(
            "a plain http:// endpoint is accepted only on loopback",
            hint="use an https:// endpoint (a VPC endpoint or a TLS proxy)",
        )
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_url(url: str, scheme: str, *, with_prefix: bool, options: tuple[str, ...]) -> AwsUrl:
    """``url`` parsed as ``SCHEME://REGION[/PREFIX]?...``; a ``KeyStoreError`` shows the form."""
    form = f"use {scheme}://REGION" + ("/PREFIX" if with_prefix else "")
    form += "[?" + "&".join(f"{o}=..." for o in ("endpoint", *options)) + "]"
    shown = _shown(url)
    head, _, query = url.partition("?")
    if "#" in url or not head.lower().startswith(f"{scheme}://"):
        raise KeyStoreError(f"{shown} is not a {scheme}:// URL", hint=form)
    region, _, path = head[len(scheme) + 3 :].partition("/")
    region = region.lower()
    if not region:
        raise KeyStoreError(f"key store URL {shown} names no AWS region", hint=form)
    if not _REGION.fullmatch(region):
        raise KeyStoreError(f"{shown} does not name an AWS region (like eu-west-1)", hint=form)
    prefix = path.strip("/")
    if with_prefix and not prefix:
        raise KeyStoreError(f"key store URL {shown} names no secret name prefix", hint=form)
    if with_prefix and not re.fullmatch(r"[A-Za-z0-9/_+=.@-]{1,400}", prefix):
        raise KeyStoreError(
            f"the prefix of {shown} may hold only letters, digits and /_+=.@-", hint=form
        )
    if not with_prefix and prefix:
        raise KeyStoreError(f"key store URL {shown} has a path; {scheme}:// takes none", hint=form)
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise KeyStoreError(f"the query of {shown} is malformed", hint=form) from None
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - {"endpoint", *options})
    if unknown or len(names) != len(set(names)) or any(not value for _, value in pairs):
        raise KeyStoreError(f"{shown} has an unknown, repeated or empty option", hint=form)
    given = dict(pairs)
    endpoint = _endpoint(given.pop("endpoint"), form) if "endpoint" in given else None
    return AwsUrl(
        scheme=scheme,
        region=region,
        prefix=prefix,
        endpoint=endpoint,
        options=tuple(sorted(given.items())),
    )


def make_client(service: str, where: AwsUrl) -> Any:
    """A boto3 client for ``service`` in the URL's region (and endpoint, if it names one)."""
    if "AWS_SECRET_ACCESS_KEY" in os.environ:
        require_secret("AWS_SECRET_ACCESS_KEY", os.environ["AWS_SECRET_ACCESS_KEY"])
    try:
        return boto3.session.Session().client(
            service, region_name=where.region, endpoint_url=where.endpoint, config=_CONFIG
        )
    except AWS_ERRORS as e:
        raise translate(e, str(where), f"{service}:*") from None


def translate(error: Exception, url: str, action: str, *, ref: str | None = None) -> KeyStoreError:
    """The key store error for a botocore ``error`` while doing IAM ``action`` (``kms:Sign``)."""
    if isinstance(error, ParamValidationError):
        what = "the request" if ref is None else repr(ref)
        return KeyStoreError(f"{what} is not valid for {action} in {url}", hint="check the ref")
    if not isinstance(error, ClientError):
        name = type(error).__name__
        if "Credential" in name or "SSO" in name or "Token" in name or "Profile" in name:
            return KeyStoreUnreachableError(
                f"no usable AWS credentials for {url} ({name})", hint=_CREDENTIALS_HINT
            )
        return KeyStoreUnreachableError(
            f"cannot reach {url} for {action} ({name})",
            hint="check the region, the endpoint and the network (proxy, VPC endpoint, firewall)",
        )
    info = error.response.get("Error", {})
    code = str(info.get("Code", "unknown"))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _REFUSED:
        return KeyStoreUnreachableError(
            f"{url} refused {action} ({code})", hint=f"{_CREDENTIALS_HINT} and that they allow it"
        )
    if code in _THROTTLED or status >= 500:
        return KeyStoreUnreachableError(
            f"{url} could not serve {action} ({code}, HTTP {status})",
            hint="AWS is throttling or failing: retry later, check the AWS Health Dashboard",
        )
    key = f"key {ref}" if ref is not None else "the key"
    if code in _MISSING:
        return KeyStoreError(
            f"no {key} in {url}",
            hint="check the URL (region, prefix): the key lives where 'keys rotate' created it",
        )
    if code in _DISABLED:
        return KeyStoreError(
            f"{key} in {url} cannot be used ({code})",
            hint="the key is disabled, pending deletion or being deleted",
        )
    return KeyStoreError(f"{url} rejected {action} for {key} ({code}, HTTP {status})")
