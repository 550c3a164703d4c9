"""``schema.frozen``: the contracts' schema snapshots were frozen at a version.

For: the payload model. Each freeze records the ``starter-contracts`` version, the SHA-256 of
every committed snapshot file (the JSON Schema of each contract model and the backend's OpenAPI
document) and the changes since the previous freeze, each classified as breaking or not. Not for:
computing snapshots or diffs (``starter_ledger.freeze``).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from starter_events._registry import register

#: A snapshot file name: ``<Model>.schema.json`` or ``openapi.json``; no folders.
SNAPSHOT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.json$"
#: ``sha256:`` and 64 lowercase hex digits.
DIGEST = r"^sha256:[0-9a-f]{64}$"

#: Kinds of change between two freezes (``breaking`` says which way each one counts).
ChangeKind = Literal[
    "snapshot-added",
    "snapshot-removed",
    "field-added",
    "field-removed",
    "type-changed",
    "required-added",
    "required-removed",
    "enum-value-added",
    "enum-value-removed",
    "endpoint-added",
    "endpoint-removed",
    "constraint-changed",
]


def check_snapshots(value: dict[str, str]) -> dict[str, str]:
    """Validator of a ``{snapshot file name: "sha256:<hex>"}`` member."""
    for name, digest in value.items():
        if not re.fullmatch(SNAPSHOT_NAME, name):
            raise ValueError(f"snapshot name {name[:80]!r} is not a plain *.json file name")
        if not re.fullmatch(DIGEST, digest):
            raise ValueError(f"digest of {name} is not sha256:<64 hex>")
    return value


class SchemaChange(BaseModel):
    """One classified difference between the frozen snapshots and the new ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ChangeKind
    breaking: bool
    #: The snapshot file it is in.
    snapshot: str = Field(pattern=SNAPSHOT_NAME)
    #: Where in the document: a JSON pointer (``/properties/size``) or ``GET /path``.
    where: str = Field(max_length=1024)
    detail: str = Field(default="", max_length=1024)


@register("schema.frozen", 1, "records a freeze of the contracts' schema snapshots")
class SchemaFrozenPayload(BaseModel):
    """Payload of ``schema.frozen`` v1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The ``starter-contracts`` package version (PEP 440) the snapshots belong to.
    contracts_version: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z.+!-]+$")
    #: Snapshot file name -> ``sha256:<hex>`` of its bytes.
    snapshots: dict[str, str] = Field(min_length=1, max_length=512)
    #: What changed since the previous freeze (empty for the first one).
    changes: list[SchemaChange] = Field(default_factory=list, max_length=4096)
    #: True when any change is breaking.
    breaking: bool = False

    _names_and_digests = field_validator("snapshots")(check_snapshots)

    @model_validator(mode="after")
    def _breaking_matches(self) -> SchemaFrozenPayload:
        if self.breaking != any(c.breaking for c in self.changes):
            raise ValueError("breaking must be true exactly when a change is breaking")
        return self
