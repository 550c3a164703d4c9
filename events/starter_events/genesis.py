"""``ledger.genesis``: the first entry, naming the ledger's origin and its first signer.

For: the payload model. Not for: the rule that genesis is self-signed (``starter_ledger.trust``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from starter_contracts import ORIGIN_PATTERN, Ed25519PublicJWK
from starter_events._registry import register


@register("ledger.genesis", 1, "creates the ledger, naming its origin and first signer")
class GenesisPayload(BaseModel):
    """Payload of ``ledger.genesis`` v1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Must equal the envelope's ``origin``.
    origin: str = Field(pattern=ORIGIN_PATTERN)
    #: The first authorised signer; the genesis entry must be signed by it.
    signer: Ed25519PublicJWK
    description: str = Field(default="", max_length=1024)
