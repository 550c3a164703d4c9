"""Classified differences between two versions of a JSON Schema or an OpenAPI document.

For: ``diff_documents`` (one snapshot file, old vs new) and ``diff_snapshots`` (a whole set of
snapshot files), each returning ``starter_events.SchemaChange`` values sorted by snapshot, place,
kind and detail. Pure: no files, no clock.

The rules, read from the side of whoever depends on the contract:

- breaking: a removed field, snapshot, endpoint, parameter, request body, response status or media
  type; any type change (also widening, e.g. ``string`` to ``string | null``: a reader of the
  contract may not expect the new type); a new required field or parameter, or an optional one
  made required; a removed enum (or ``const``) value; a tightened constraint (a larger minimum, a
  smaller maximum, a new or changed ``pattern``/``format``/``multipleOf``, additional properties
  newly refused); a constraint whose direction is unclear.
- non-breaking: an added optional field, snapshot, endpoint, response status or media type; a
  required field made optional; an added enum value; a loosened or removed constraint.
- not classified (they still make ``contracts check`` fail until frozen, and show in its diff):
  titles, descriptions, defaults and examples.

Pydantic's schemas are walked from the root through ``properties``, ``items``,
``additionalProperties``, ``anyOf``/``oneOf``/``allOf`` and ``prefixItems``; the ``$defs`` (and
an OpenAPI document's ``components/schemas``) are compared by name, each change placed by a JSON
pointer (``/$defs/PublishedJWK/properties/kid``). A ``$ref`` whose name changed is resolved and
compared by structure, so renaming a nested model is not a change in itself. In an OpenAPI
document (it has an ``openapi`` member) changes inside an operation are placed as ``GET /path``
followed by the place in the operation (``GET /ledger/entries parameters/query/start``).
Not for: reading or writing snapshot files, or deciding when to freeze (``starter_ledger.freeze``).

Layout: the JSON Schema rules are implemented in ``starter_ledger._jsonschema_diff``, the OpenAPI
paths and operations in ``starter_ledger._openapi_diff``; this module is the public entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starter_events.schemas import SchemaChange
from starter_ledger._jsonschema_diff import SchemaDiffer
from starter_ledger._openapi_diff import OpenAPIDiffer, is_openapi

__all__ = ["diff_documents", "diff_snapshots", "sort_changes"]


def diff_snapshots(old: dict[str, Any], new: dict[str, Any]) -> list[SchemaChange]:
    """The changes from the snapshot set ``old`` to ``new`` (both ``{file name: document}``)."""
    changes: list[SchemaChange] = []
    for name in sorted(old.keys() - new.keys()):
        changes.append(
            SchemaChange(
                kind="snapshot-removed",
                breaking=True,
                snapshot=name,
                where="",
                detail=f"snapshot {name} is no longer produced",
            )
        )
    for name in sorted(new.keys() - old.keys()):
        changes.append(
            SchemaChange(
                kind="snapshot-added",
                breaking=False,
                snapshot=name,
                where="",
                detail=f"new snapshot {name}",
            )
        )
    for name in sorted(old.keys() & new.keys()):
        changes.extend(diff_documents(name, old[name], new[name]))
    return sort_changes(changes)


def diff_documents(name: str, old: Any, new: Any) -> list[SchemaChange]:
    """The changes from ``old`` to ``new``, two versions of the snapshot file ``name``: an
    OpenAPI document when either has an ``openapi`` member, else a JSON Schema."""
    if old == new:
        return []
    if is_openapi(old) or is_openapi(new):
        openapi = OpenAPIDiffer(name, old, new)
        openapi.openapi()
        return sort_changes(openapi.changes)
    differ = SchemaDiffer(name, old, new)
    differ.json_schema()
    return sort_changes(differ.changes)


def sort_changes(changes: Iterable[SchemaChange]) -> list[SchemaChange]:
    """``changes`` without duplicates, by snapshot, place, kind and detail."""
    unique = {(c.snapshot, c.where, c.kind, c.detail, c.breaking): c for c in changes}
    return [unique[k] for k in sorted(unique)]
