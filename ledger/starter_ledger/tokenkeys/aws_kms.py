"""``aws-kms://REGION`` token key store: one asymmetric AWS KMS key per token key.

For: keys whose private half must never leave an HSM. ``create("ES256")`` makes a
``ECC_NIST_P256`` ``SIGN_VERIFY`` key, ``create("EdDSA")`` an ``ECC_NIST_EDWARDS25519`` one; both
are tagged ``starter-ledger=token-key`` and ``starter-ledger-kid=<kid>``. The ref is the KMS
KeyId. The public key comes from ``GetPublicKey`` and signatures from ``Sign`` (``RAW`` messages;
ES256 inputs over 4096 bytes are hashed here and sent as ``DIGEST``); every signature is checked
against the public key before it is returned. Not for: keys the ledger must be able to export,
or offline use.

URL: ``aws-kms://REGION[?endpoint=URL][&alias=PREFIX]``. ``endpoint`` names a VPC endpoint or a
test server (boto3 also honours ``AWS_ENDPOINT_URL``); ``alias`` also creates
``alias/PREFIX/<kid>`` for each key, so operators can find keys by kid in the console.
Credentials come from boto3's default chain. The tests run ES256 against a moto server; moto
5.2 has no ``ECC_NIST_EDWARDS25519``, so the EdDSA path is tested with botocore's ``Stubber``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from cryptography.hazmat.primitives.serialization import load_der_public_key

from starter_ledger.errors import FormatError, KeyStoreError
from starter_ledger.jwk import (
    alg_of_jwk,
    der_to_raw_ecdsa,
    public_jwk_of,
    verify_signature,
)
from starter_ledger.tokenkeys._aws import AWS_ERRORS, make_client, parse_url, translate
from starter_ledger.tokenkeys.interface import PublicKeyParts, StoredKey

__all__ = ["AwsKmsSigner", "AwsKmsTokenKeyStore", "open_store"]

#: JWS alg -> (KMS KeySpec, SigningAlgorithm).
_SPECS = {
    "ES256": ("ECC_NIST_P256", "ECDSA_SHA_256"),
    "EdDSA": ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512"),
}
#: KMS accepts at most this many bytes in a RAW message.
_RAW_LIMIT = 4096
_ALIAS = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")


class AwsKmsSigner(PublicKeyParts):
    """Signs with one KMS key; ``repr`` shows only the key id and ``kid``."""

    __slots__ = ("_client", "_ref", "_url")

    def __init__(self, client: Any, url: str, ref: str, jwk: dict[str, str]) -> None:
        self._client, self._url, self._ref = client, url, ref
        self._set_public(jwk)

    def sign(self, message: bytes) -> bytes:
        algorithm = _SPECS[self._alg][1]
        body, kind = message, "RAW"
        if len(message) > _RAW_LIMIT:
            if self._alg == "EdDSA":
                raise KeyStoreError(
                    f"KMS signs at most {_RAW_LIMIT} bytes with Ed25519; this input has "
                    f"{len(message)}",
                    hint="keep tokens signed by aws-kms:// EdDSA keys under 4 KiB, or use ES256",
                )
            body, kind = hashlib.sha256(message).digest(), "DIGEST"
        try:
            response = self._client.sign(
                KeyId=self._ref, Message=body, MessageType=kind, SigningAlgorithm=algorithm
            )
        except AWS_ERRORS as e:
            raise translate(e, self._url, "kms:Sign", ref=self._ref) from None
        signature = bytes(response.get("Signature") or b"")
        if self._alg == "ES256":
            try:
                signature = der_to_raw_ecdsa(signature)
            except FormatError:
                raise KeyStoreError(f"KMS key {self._ref} returned a malformed signature") from None
        if not verify_signature(self._jwk, message, signature):
            raise KeyStoreError(
                f"KMS key {self._ref} in {self._url} returned a signature that does not verify "
                f"under key {self._kid}",
                hint="the key id may now point at another key; check the key in the KMS console",
            )
        return signature

    def __repr__(self) -> str:
        return f"AwsKmsSigner(ref={self._ref!r}, kid={self._kid!r})"


class AwsKmsTokenKeyStore:
    """Token keys as asymmetric AWS KMS keys in one region."""

    algs: tuple[str, ...] = ("EdDSA", "ES256")

    def __init__(self, url: str, *, client: Any = None) -> None:
        self._where = parse_url(url, "aws-kms", with_prefix=False, options=("alias",))
        alias = self._where.option("alias")
        if alias is not None and (
            not _ALIAS.fullmatch(alias) or alias.lower().split("/")[0] == "aws" or len(alias) > 200
        ):
            raise KeyStoreError(
                f"alias= of {self.url} must be letters, digits, _ and - (parts joined by /), "
                "not starting with 'aws/'"
            )
        self._alias = alias
        self._client = client if client is not None else make_client("kms", self._where)

    @property
    def url(self) -> str:
        return str(self._where)

    def _call(self, action: str, ref: str | None, **params: Any) -> dict[str, Any]:
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
        try:
            response: dict[str, Any] = getattr(self._client, method)(**params)
        except AWS_ERRORS as e:
            raise translate(e, self.url, f"kms:{action}", ref=ref) from None
        return response

    def create(self, alg: str) -> StoredKey:
        if alg not in _SPECS:
            raise KeyStoreError(
                f"{self.url} cannot create a key for algorithm {alg!r}", hint="use EdDSA or ES256"
            )
        created = self._call(
            "CreateKey",
            None,
            KeySpec=_SPECS[alg][0],
            KeyUsage="SIGN_VERIFY",
            Description="starter-ledger token signing key",
            Tags=[{"TagKey": "starter-ledger", "TagValue": "token-key"}],
        )
        ref = str(created["KeyMetadata"]["KeyId"])
        signer = self.signer(ref)
        if signer.alg != alg:
            raise KeyStoreError(f"KMS made a {signer.alg} key {ref} when asked for {alg}")
        self._call(
            "TagResource",
            ref,
            KeyId=ref,
            Tags=[{"TagKey": "starter-ledger-kid", "TagValue": signer.kid}],
        )
        if self._alias is not None:
            name = f"alias/{self._alias}/{signer.kid}"
            self._call("CreateAlias", ref, AliasName=name, TargetKeyId=ref)
        return StoredKey(ref=ref, alg=alg, public_jwk=signer.public_jwk, kid=signer.kid)

    def signer(self, ref: str) -> AwsKmsSigner:
        response = self._call("GetPublicKey", ref, KeyId=ref)
        usage = response.get("KeyUsage", "SIGN_VERIFY")
        spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")
        try:
            jwk = public_jwk_of(load_der_public_key(bytes(response["PublicKey"])))
        except (KeyError, ValueError, TypeError, FormatError):
            jwk = None
        if jwk is None or usage != "SIGN_VERIFY" or spec not in (None, _SPECS[alg_of_jwk(jwk)][0]):
            raise KeyStoreError(
                f"KMS key {ref} in {self.url} is a {spec} {usage} key, not an "
                "ECC_NIST_P256 or ECC_NIST_EDWARDS25519 SIGN_VERIFY key",
                hint="pass the key id 'keys rotate' recorded for this store",
            )
        return AwsKmsSigner(self._client, self.url, ref, jwk)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"AwsKmsTokenKeyStore({self.url!r})"


def open_store(url: str) -> AwsKmsTokenKeyStore:
    """The ``aws-kms://`` store at ``url``."""
    return AwsKmsTokenKeyStore(url)
