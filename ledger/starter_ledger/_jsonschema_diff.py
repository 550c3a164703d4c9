"""JSON Schema comparison: the changes between two versions of one schema, classified.

For: ``SchemaDiffer``, which walks two versions of a JSON Schema (pydantic's output) from the root
through ``properties``, ``items``, ``additionalProperties``, ``anyOf``/``oneOf``/``allOf`` and
``prefixItems``, compares the ``$defs`` by name, resolves renamed ``$ref`` targets by structure,
and records each change as a ``SchemaChange`` placed by a JSON pointer; and the helpers an
OpenAPI comparison shares (``lookup``, ``member``). The rules are listed in
``starter_ledger.schemadiff``, the public entry. Not for: OpenAPI paths and operations
(``_openapi_diff``), or sorting and deduplicating the result (``schemadiff.sort_changes``).
"""

from __future__ import annotations

import json
from typing import Any

from starter_events.schemas import ChangeKind, SchemaChange

__all__ = ["SchemaDiffer", "lookup", "member"]

#: Limits of ``SchemaChange.where`` and ``.detail``.
_MAX_TEXT = 1024
#: Lower bounds: a larger value (or a new bound) tightens.
_LOWER = (
    "minLength",
    "minimum",
    "exclusiveMinimum",
    "minItems",
    "minProperties",
    "minContains",
)
#: Upper bounds: a smaller value (or a new bound) tightens.
_UPPER = (
    "maxLength",
    "maximum",
    "exclusiveMaximum",
    "maxItems",
    "maxProperties",
    "maxContains",
)
#: Constraints without a direction: new or changed tightens (if unsure, breaking), gone loosens.
_OTHER = ("pattern", "format", "multipleOf", "contentEncoding", "contentMediaType")
#: Where schemas are defined by name (walked once, by name, on both sides).
_NAMED_SCHEMA_PREFIXES = ("#/$defs/", "#/definitions/", "#/components/schemas/")


def _escape(token: str) -> str:
    """A JSON pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _enum_values(schema: dict[str, Any]) -> list[Any] | None:
    if "enum" in schema and isinstance(schema["enum"], list):
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def member(value: Any, key: str) -> dict[str, Any]:
    """``value[key]`` when both are JSON objects, else an empty object."""
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, dict) else {}


def lookup(root: Any, ref: str) -> Any:
    """The target of a local ``$ref`` (``#/a/b``) in ``root``, or None."""
    if not ref.startswith("#"):
        return None
    node = root
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


class SchemaDiffer:
    """Collects the changes between ``old`` and ``new``, two versions of snapshot ``name``."""

    def __init__(self, name: str, old: Any, new: Any) -> None:
        self.name = name
        self.old_root = old
        self.new_root = new
        self.changes: list[SchemaChange] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, kind: ChangeKind, breaking: bool, where: str, detail: str = "") -> None:
        self.changes.append(
            SchemaChange(
                kind=kind,
                breaking=breaking,
                snapshot=self.name,
                where=where[:_MAX_TEXT],
                detail=detail[:_MAX_TEXT],
            )
        )

    # -- documents ---------------------------------------------------------------------------

    def json_schema(self) -> None:
        """Compare the two documents as JSON Schemas: from the root, then ``$defs`` by name."""
        self.schema(self.old_root, self.new_root, "")
        if isinstance(self.old_root, dict) and isinstance(self.new_root, dict):
            for key in ("$defs", "definitions"):
                self._named(self.old_root.get(key), self.new_root.get(key), f"/{key}")

    def _named(self, old: Any, new: Any, where: str) -> None:
        """Schemas defined by name on both sides, compared by name (the others are compared
        where they are used)."""
        if not isinstance(old, dict) or not isinstance(new, dict):
            return
        for name in sorted(old.keys() & new.keys()):
            self.schema(old[name], new[name], f"{where}/{_escape(name)}")

    # -- JSON Schema -------------------------------------------------------------------------

    def _types(self, schema: Any, root: Any, depth: int = 0) -> frozenset[str]:
        """What a schema admits, summarised as JSON type names (``$ref`` resolved)."""
        if schema is True or schema == {}:
            return frozenset({"any"})
        if schema is False:
            return frozenset({"nothing"})
        if not isinstance(schema, dict) or depth > 32:
            return frozenset({"any"})
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = lookup(root, ref)
            if target is None:
                return frozenset({f"unresolved {ref}"})
            return self._types(target, root, depth + 1)
        declared = schema.get("type")
        if isinstance(declared, str):
            return frozenset({declared})
        if isinstance(declared, list):
            return frozenset(str(t) for t in declared)
        for key in ("anyOf", "oneOf", "allOf"):
            members = schema.get(key)
            if isinstance(members, list) and members:
                return frozenset().union(*(self._types(m, root, depth + 1) for m in members))
        values = _enum_values(schema)
        if values is not None:
            return frozenset(_json_type(v) for v in values)
        return frozenset({"any"})

    def _deref(self, schema: dict[str, Any], root: Any) -> dict[str, Any]:
        """``schema`` with its local ``$ref`` replaced by the target (sibling keywords kept); an
        unresolvable reference stays as it is."""
        out = schema
        for _ in range(16):
            ref = out.get("$ref")
            if not isinstance(ref, str):
                break
            target = lookup(root, ref)
            if not isinstance(target, dict):
                break
            siblings = {k: v for k, v in out.items() if k != "$ref"}
            out = {**target, **siblings}
        return out

    def _walked_by_name(self, ref: Any) -> bool:
        """True when ``ref`` names a schema that exists, by that name, on both sides."""
        return (
            isinstance(ref, str)
            and ref.startswith(_NAMED_SCHEMA_PREFIXES)
            and isinstance(lookup(self.old_root, ref), dict | bool)
            and isinstance(lookup(self.new_root, ref), dict | bool)
        )

    def schema(self, old: Any, new: Any, where: str) -> None:
        if old == new:
            return
        if not isinstance(old, dict) or not isinstance(new, dict):
            self.add("type-changed", True, where, f"schema {_show(old)} -> {_show(new)}")
            return
        old_ref, new_ref = old.get("$ref"), new.get("$ref")
        if old_ref is not None or new_ref is not None:
            if old_ref == new_ref and self._walked_by_name(old_ref):
                # The target is compared by name; only the sibling keywords remain here.
                old = {k: v for k, v in old.items() if k != "$ref"}
                new = {k: v for k, v in new.items() if k != "$ref"}
            else:
                pair = (str(old_ref), str(new_ref))
                if pair in self._seen:
                    return  # a recursive structure: already being compared
                self._seen.add(pair)
                old = self._deref(old, self.old_root)
                new = self._deref(new, self.new_root)
        self._compare(old, new, where)

    def _compare(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        old_types = self._types(old, self.old_root)
        new_types = self._types(new, self.new_root)
        if old_types != new_types:
            self.add(
                "type-changed",
                True,
                where,
                f"type {' | '.join(sorted(old_types))} -> {' | '.join(sorted(new_types))}",
            )
            return
        self._enum(old, new, where)
        self._constraints(old, new, where)
        self._object(old, new, where)
        if "items" in old or "items" in new:
            if "items" not in new:
                self.add("constraint-changed", False, f"{where}/items", "items unconstrained")
            elif "items" not in old:
                self.add("constraint-changed", True, f"{where}/items", "items now constrained")
            else:
                self.schema(old["items"], new["items"], f"{where}/items")
        for key in ("anyOf", "oneOf", "allOf"):
            self._alternatives(key, old.get(key), new.get(key), where)
        self._positional(old.get("prefixItems"), new.get("prefixItems"), f"{where}/prefixItems")

    def _enum(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        old_values, new_values = _enum_values(old), _enum_values(new)
        if old_values is None and new_values is None:
            return
        if old_values is None:
            self.add("constraint-changed", True, where, f"now restricted to {_show(new_values)}")
            return
        if new_values is None:
            self.add(
                "constraint-changed", False, where, f"no longer restricted to {_show(old_values)}"
            )
            return
        old_keys = {json.dumps(v, sort_keys=True): v for v in old_values}
        new_keys = {json.dumps(v, sort_keys=True): v for v in new_values}
        for key in sorted(old_keys.keys() - new_keys.keys()):
            self.add("enum-value-removed", True, where, f"value {key} removed")
        for key in sorted(new_keys.keys() - old_keys.keys()):
            self.add("enum-value-added", False, where, f"new value {key}")

    def _constraints(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        for key in (*_LOWER, *_UPPER):
            before, after = old.get(key), new.get(key)
            if before == after:
                continue
            if after is None:
                tightened = False
            elif before is None or not (_number(before) and _number(after)):
                tightened = True
            else:
                tightened = after > before if key in _LOWER else after < before
            self._constraint(key, before, after, tightened, where)
        for key in _OTHER:
            before, after = old.get(key), new.get(key)
            if before != after:
                self._constraint(key, before, after, after is not None, where)
        if old.get("uniqueItems") is not new.get("uniqueItems"):
            tightened = new.get("uniqueItems") is True
            self._constraint(
                "uniqueItems", old.get("uniqueItems"), new.get("uniqueItems"), tightened, where
            )

    def _constraint(self, key: str, before: Any, after: Any, tightened: bool, where: str) -> None:
        if after is None:
            text = f"{key} {_show(before)} removed"
        elif before is None:
            text = f"new {key} {_show(after)}"
        else:
            text = f"{key} {_show(before)} -> {_show(after)}"
        self.add(
            "constraint-changed",
            tightened,
            where,
            f"{text} ({'tightened' if tightened else 'loosened'})",
        )

    def _object(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        old_props = member(old, "properties")
        new_props = member(new, "properties")
        old_req = {r for r in old.get("required", []) if isinstance(r, str)}
        new_req = {r for r in new.get("required", []) if isinstance(r, str)}
        for name in sorted(old_props.keys() - new_props.keys()):
            was = " (it was required)" if name in old_req else ""
            self.add(
                "field-removed",
                True,
                f"{where}/properties/{_escape(name)}",
                f"field {name!r} removed{was}",
            )
        for name in sorted(new_props.keys() - old_props.keys()):
            place = f"{where}/properties/{_escape(name)}"
            if name in new_req:
                self.add("required-added", True, place, f"new required field {name!r}")
            else:
                self.add("field-added", False, place, f"new optional field {name!r}")
        for name in sorted(old_props.keys() & new_props.keys()):
            place = f"{where}/properties/{_escape(name)}"
            if name in new_req and name not in old_req:
                self.add("required-added", True, place, f"field {name!r} is now required")
            elif name in old_req and name not in new_req:
                self.add("required-removed", False, place, f"field {name!r} is now optional")
            self.schema(old_props[name], new_props[name], place)
        named = old_props.keys() | new_props.keys()
        for name in sorted((new_req - old_req) - named):
            self.add("required-added", True, f"{where}/required", f"{name!r} is now required")
        for name in sorted((old_req - new_req) - named):
            self.add("required-removed", False, f"{where}/required", f"{name!r} is now optional")
        self._additional(old, new, where)
        if old.get("patternProperties") != new.get("patternProperties"):
            self.add(
                "constraint-changed",
                True,
                f"{where}/patternProperties",
                "patternProperties changed",
            )

    def _additional(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        """``additionalProperties``: absent or true admits anything, false nothing."""
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        if before == after:
            return
        place = f"{where}/additionalProperties"
        if isinstance(before, dict) and isinstance(after, dict):
            self.schema(before, after, place)
            return
        # Order of permissiveness: false < a schema < true.
        rank = {False: 0, True: 2}

        def level(value: Any) -> int:
            return rank.get(value, 1) if isinstance(value, bool) else 1

        tightened = level(after) < level(before)
        self.add(
            "constraint-changed",
            tightened,
            place,
            f"additionalProperties {_show(before)} -> {_show(after)} "
            f"({'tightened' if tightened else 'loosened'})",
        )

    def _alternatives(self, key: str, old: Any, new: Any, where: str) -> None:
        """``anyOf``/``oneOf``/``allOf``: alternatives paired by what they admit when that is
        unambiguous, else by position."""
        if old == new or (old is None and new is None):
            return
        place = f"{where}/{key}"
        if not isinstance(old, list) or not isinstance(new, list):
            self.add("type-changed", True, place, f"{key} {_show(old)} -> {_show(new)}")
            return
        old_keys = [" | ".join(sorted(self._types(m, self.old_root))) for m in old]
        new_keys = [" | ".join(sorted(self._types(m, self.new_root))) for m in new]
        if len(set(old_keys)) == len(old_keys) and len(set(new_keys)) == len(new_keys):
            for k in sorted(set(old_keys) - set(new_keys)):
                self.add("type-changed", True, place, f"alternative {k} removed")
            for k in sorted(set(new_keys) - set(old_keys)):
                self.add("type-changed", True, place, f"new alternative {k}")
            for i, k in enumerate(old_keys):
                if k in new_keys:
                    j = new_keys.index(k)
                    self.schema(old[i], new[j], f"{place}/{j}")
        else:
            self._positional(old, new, place)

    def _positional(self, old: Any, new: Any, place: str) -> None:
        if old == new:
            return
        if not isinstance(old, list) or not isinstance(new, list) or len(old) != len(new):
            count_old = len(old) if isinstance(old, list) else 0
            count_new = len(new) if isinstance(new, list) else 0
            self.add("type-changed", True, place, f"{count_old} schemas -> {count_new}")
            return
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            self.schema(a, b, f"{place}/{i}")
