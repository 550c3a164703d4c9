"""``aws-secretsmanager://REGION/PREFIX`` token key store: PKCS#8 PEM in one secret per key.

For: deployments that already keep secrets in AWS Secrets Manager and sign locally.
``create(alg)`` generates the key here and stores its PKCS#8 PEM as the ``SecretString`` of a new
secret ``PREFIX/<kid>`` (``CreateSecret`` never overwrites an existing secret); ``signer(ref)``
reads it back (``GetSecretValue``) and checks that it holds key ``ref``. The ref is the ``kid``.
The PEM goes only to Secrets Manager and to the ``LocalSigner``: never into a message, a ``repr``
or a log line. Not for: keys that must never be in this process's memory (use ``aws-kms://``).

URL: ``aws-secretsmanager://REGION/PREFIX[?endpoint=URL]``; ``endpoint`` names a VPC endpoint or
a test server (boto3 also honours ``AWS_ENDPOINT_URL``). Credentials come from boto3's default
chain. Only ``secretsmanager:CreateSecret`` and ``secretsmanager:GetSecretValue`` on
``PREFIX/*`` are needed (secrets are encrypted with the account's default ``aws/secretsmanager``
KMS key).
"""

from __future__ import annotations

import re
from typing import Any

from starter_ledger.errors import KeyStoreError
from starter_ledger.tokenkeys._aws import AWS_ERRORS, make_client, parse_url, translate
from starter_ledger.tokenkeys._pkcs8 import LOCAL_ALGS, LocalSigner, generate_pem
from starter_ledger.tokenkeys.interface import StoredKey

__all__ = ["AwsSecretsManagerTokenKeyStore", "open_store"]

_REF = re.compile(r"[A-Za-z0-9_-]{43}")


class AwsSecretsManagerTokenKeyStore:
    """Token keys as PKCS#8 secrets under one name prefix in AWS Secrets Manager."""

    algs: tuple[str, ...] = LOCAL_ALGS

    def __init__(self, url: str, *, client: Any = None) -> None:
        self._where = parse_url(url, "aws-secretsmanager", with_prefix=True, options=())
        self._client = client if client is not None else make_client("secretsmanager", self._where)

    @property
    def url(self) -> str:
        return str(self._where)

    def _name(self, ref: str) -> str:
        if not _REF.fullmatch(ref):
            raise KeyStoreError(f"{ref!r} is not a key of {self.url} (expected a kid)")
        return f"{self._where.prefix}/{ref}"

    def create(self, alg: str) -> StoredKey:
        pem = generate_pem(alg)
        signer = LocalSigner(pem, "a new key")
        name = self._name(signer.kid)
        try:
            self._client.create_secret(
                Name=name,
                SecretString=pem.decode("ascii"),
                Description=f"starter-ledger token signing key {signer.kid} ({alg}, PKCS#8)",
            )
        except AWS_ERRORS as e:
            if getattr(e, "response", {}).get("Error", {}).get("Code") == "ResourceExistsException":
                raise KeyStoreError(
                    f"secret {name} already exists in {self.url}; it is never overwritten"
                ) from None
            raise translate(e, self.url, "secretsmanager:CreateSecret", ref=signer.kid) from None
        return signer.stored(signer.kid)

    def signer(self, ref: str) -> LocalSigner:
        name = self._name(ref)
        try:
            response = self._client.get_secret_value(SecretId=name)
        except AWS_ERRORS as e:
            raise translate(e, self.url, "secretsmanager:GetSecretValue", ref=ref) from None
        value = response.get("SecretString")
        if value is None:
            value = response.get("SecretBinary")
        pem = value.encode("utf-8") if isinstance(value, str) else bytes(value or b"")
        signer = LocalSigner(pem, f"secret {name} in {self.url}")
        if signer.kid != ref:
            raise KeyStoreError(f"secret {name} in {self.url} holds key {signer.kid}, not {ref}")
        return signer

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"AwsSecretsManagerTokenKeyStore({self.url!r})"


def open_store(url: str) -> AwsSecretsManagerTokenKeyStore:
    """The ``aws-secretsmanager://`` store at ``url``."""
    return AwsSecretsManagerTokenKeyStore(url)
