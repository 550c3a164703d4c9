"""Short-lived test tokens (JWT, RFC 7519) signed with the active token-signing key.

For: ``issue_token``, which ``starter-cli keys sign-test`` uses to prove end to end that the key
the JWKS says is active can sign, wherever its private half lives, and that a standard JWKS client
accepts the result. Not for: the backend's real access tokens (their claims are the backend's).
"""

from __future__ import annotations

import datetime as dt
import uuid

from starter_ledger.encoding import b64url_encode
from starter_ledger.jcs import canonicalize
from starter_ledger.tokenkeys import TokenSigner

__all__ = ["issue_token"]


def issue_token(
    signer: TokenSigner,
    *,
    issuer: str,
    subject: str,
    audience: str,
    ttl: dt.timedelta,
    now: dt.datetime,
) -> str:
    """A compact JWS JWT: header ``{"alg", "kid", "typ": "JWT"}``, claims ``iss``, ``sub``,
    ``aud``, ``iat``, ``nbf``, ``exp`` (``now + ttl``) and a random ``jti``."""
    issued = int(now.timestamp())
    header = {"alg": signer.alg, "kid": signer.kid, "typ": "JWT"}
    claims = {
        "aud": audience,
        "exp": issued + max(1, int(ttl.total_seconds())),
        "iat": issued,
        "iss": issuer,
        "jti": uuid.uuid4().hex,
        "nbf": issued,
        "sub": subject,
    }
    signing_input = f"{b64url_encode(canonicalize(header))}.{b64url_encode(canonicalize(claims))}"
    return f"{signing_input}.{b64url_encode(signer.sign(signing_input.encode('ascii')))}"
