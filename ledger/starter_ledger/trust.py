"""The trust model: who may sign the entry at each position.

For: ``SignerSet``, the pure projection of ``ledger.genesis``, ``signer.added`` and
``signer.revoked`` events into the set of authorised signers, and ``check`` / ``apply``, the rules
that append and verify share:

- entry 0 is ``ledger.genesis``, signed by the signer it names, and fixes the origin;
- every later entry carries that origin and is signed by a signer authorised at its position
  (authorised by the entries before it);
- ``signer.added`` carries a proof of possession by the new key; ``signer.revoked`` removes an
  authorised signer, never the last one.

A broken rule is a ``TrustViolation`` naming the check. Not for: signatures over bytes (``verify``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starter_ledger.errors import FormatError
from starter_ledger.jcs import canonicalize
from starter_ledger.jws import POP_MEDIA_TYPE, parse_compact, sign_compact
from starter_ledger.keys import Signer, Verifier, public_key_bytes, thumbprint

#: Event types that change the signer set; the stores index them by type.
SIGNER_EVENT_TYPES = ("ledger.genesis", "signer.added", "signer.revoked")


class TrustViolation(Exception):
    """An entry breaks a trust rule; ``check`` names the rule."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check
        self.message = message


def pop_payload(origin: str, kid: str) -> bytes:
    """The bytes a new signer signs to prove possession of its key."""
    return canonicalize({"kid": kid, "origin": origin, "purpose": "signer.added"})


def make_proof_of_possession(origin: str, new_signer: Signer) -> str:
    """Compact JWS by ``new_signer`` over ``pop_payload``: the ``proof_of_possession`` member."""
    return sign_compact(pop_payload(origin, new_signer.kid), new_signer, POP_MEDIA_TYPE)


@dataclass
class SignerSet:
    """Authorised signers after some prefix of the ledger."""

    origin: str | None = None
    #: kid -> raw public key of every currently authorised signer.
    authorised: dict[str, bytes] = field(default_factory=dict)
    #: kid -> raw public key of every key ever authorised (to check old signatures).
    known: dict[str, bytes] = field(default_factory=dict)
    #: Position of the next entry this set applies to.
    size: int = 0

    def copy(self) -> SignerSet:
        return SignerSet(self.origin, dict(self.authorised), dict(self.known), self.size)

    def check_signer(self, seq: int, kid: str) -> None:
        """Raise unless ``kid`` may sign the entry at ``seq`` (before applying it)."""
        if seq == 0:
            return
        if kid not in self.authorised:
            state = "was revoked" if kid in self.known else "was never authorised"
            raise TrustViolation(
                "authorisation", f"entry {seq} is signed by key {kid}, which {state}"
            )

    def apply(self, seq: int, origin: str, type_: str, payload: dict[str, Any], kid: str) -> None:
        """Check the trust rules for one entry and update the set; raises ``TrustViolation``."""
        if seq != self.size:
            raise TrustViolation("seq", f"signer set is at position {self.size}, not {seq}")
        if seq == 0:
            self._genesis(origin, type_, payload, kid)
        else:
            if type_ == "ledger.genesis":
                raise TrustViolation("trust", f"entry {seq} is a second ledger.genesis")
            if origin != self.origin:
                raise TrustViolation(
                    "origin", f"entry {seq} names origin {origin!r}, the ledger is {self.origin!r}"
                )
            self.check_signer(seq, kid)
            if type_ == "signer.added":
                self._added(seq, payload)
            elif type_ == "signer.revoked":
                self._revoked(seq, payload)
        self.size = seq + 1

    def _genesis(self, origin: str, type_: str, payload: dict[str, Any], kid: str) -> None:
        if type_ != "ledger.genesis":
            raise TrustViolation("trust", f"entry 0 is {type_}, not ledger.genesis")
        if payload.get("origin") != origin:
            raise TrustViolation("origin", "genesis payload origin differs from its envelope's")
        jwk = payload["signer"]
        if thumbprint(jwk) != kid:
            raise TrustViolation("authorisation", "genesis is not signed by the signer it names")
        self.origin = origin
        self.authorised[kid] = self.known[kid] = public_key_bytes(jwk)

    def _added(self, seq: int, payload: dict[str, Any]) -> None:
        jwk = payload["jwk"]
        new_kid = thumbprint(jwk)
        if new_kid in self.authorised:
            raise TrustViolation("trust", f"entry {seq} adds {new_kid}, which is already a signer")
        public_key = public_key_bytes(jwk)
        try:
            pop = parse_compact(payload["proof_of_possession"], POP_MEDIA_TYPE)
        except FormatError as e:
            raise TrustViolation("proof-of-possession", f"entry {seq}: {e.message}") from None
        if pop.kid != new_kid or pop.payload != pop_payload(self.origin or "", new_kid):
            raise TrustViolation(
                "proof-of-possession",
                f"entry {seq}: proof of possession is not for key {new_kid} on this ledger",
            )
        if not Verifier(public_key).verify(pop.signing_input, pop.signature):
            raise TrustViolation(
                "proof-of-possession", f"entry {seq}: proof of possession signature is invalid"
            )
        self.authorised[new_kid] = self.known[new_kid] = public_key

    def _revoked(self, seq: int, payload: dict[str, Any]) -> None:
        kid = payload["kid"]
        if kid not in self.authorised:
            raise TrustViolation("trust", f"entry {seq} revokes {kid}, which is not a signer")
        if len(self.authorised) == 1:
            raise TrustViolation("trust", f"entry {seq} revokes the last authorised signer")
        del self.authorised[kid]
