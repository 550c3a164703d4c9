"""Provider configurations of the remote token key stores: Vault/OpenBao, AWS and Azure.

For: the validated, immutable form of a key store URL once parsed, which the store modules of
``starter_ledger.tokenkeys`` build and use, and which ``str()`` turns back into the normalised URL
recorded in ``key.staged`` events (never a credential: tokens and keys come from the usual
environment and credential chains, not from URLs). Not for: parsing URLs or talking to a provider.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AwsStoreConfig", "AzureStoreConfig", "VaultStoreConfig"]


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VaultStoreConfig(_Config):
    """A Vault or OpenBao store: ``vault-transit://HOST[:PORT]/MOUNT/KEY`` or
    ``vault-kv://HOST[:PORT]/MOUNT/PATH`` (``?namespace=`` and, on loopback only, ``?tls=false``).
    The token comes from ``VAULT_TOKEN`` (or ``BAO_TOKEN``)."""

    scheme: Literal["vault-transit", "vault-kv"]
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    mount: str = Field(min_length=1)
    name: str = Field(min_length=1)
    tls: bool = True
    namespace: str | None = None

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """The server's base URL."""
        return f"{'https' if self.tls else 'http'}://{self.hostport}"

    def __str__(self) -> str:
        url = f"{self.scheme}://{self.hostport}/{self.mount}/{self.name}"
        query = [("namespace", self.namespace)] if self.namespace else []
        query += [] if self.tls else [("tls", "false")]
        return url + ("?" + urlencode(query, safe="/") if query else "")


class AwsStoreConfig(_Config):
    """An AWS store: ``aws-kms://REGION[?alias=PREFIX]`` or
    ``aws-secretsmanager://REGION/PREFIX`` (``?endpoint=`` for a VPC endpoint, or plain http on
    loopback). Credentials come from boto3's usual chain."""

    scheme: Literal["aws-kms", "aws-secretsmanager"]
    region: str = Field(min_length=1)
    prefix: str = ""
    endpoint: str | None = None
    #: Further ``?name=value`` options the store knows, sorted.
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str) -> str | None:
        return dict(self.options).get(name)

    def __str__(self) -> str:
        url = f"{self.scheme}://{self.region}" + (f"/{self.prefix}" if self.prefix else "")
        query = sorted(self.options + ((("endpoint", self.endpoint),) if self.endpoint else ()))
        return url + ("?" + urlencode(query, safe=":/") if query else "")


class AzureStoreConfig(_Config):
    """An Azure Key Vault store: ``azure-keyvault://NAME.vault.azure.net/KEY`` (ES256 only).
    Credentials come from ``DefaultAzureCredential``."""

    scheme: Literal["azure-keyvault"] = "azure-keyvault"
    vault_host: str = Field(min_length=1)
    key_name: str = Field(min_length=1, max_length=127)

    @property
    def vault_url(self) -> str:
        return f"https://{self.vault_host}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.vault_host}/{self.key_name}"
