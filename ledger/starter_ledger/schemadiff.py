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
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starter_events.schemas import ChangeKind, SchemaChange

__all__ = ["diff_documents", "diff_snapshots", "sort_changes"]

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
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


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
    differ = _Differ(name, old, new)
    if _is_openapi(old) or _is_openapi(new):
        differ.openapi()
    else:
        differ.json_schema()
    return sort_changes(differ.changes)


def sort_changes(changes: Iterable[SchemaChange]) -> list[SchemaChange]:
    """``changes`` without duplicates, by snapshot, place, kind and detail."""
    unique = {(c.snapshot, c.where, c.kind, c.detail, c.breaking): c for c in changes}
    return [unique[k] for k in sorted(unique)]


def _is_openapi(document: Any) -> bool:
    return isinstance(document, dict) and "openapi" in document


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


def _member(value: Any, key: str) -> dict[str, Any]:
    """``value[key]`` when both are JSON objects, else an empty object."""
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, dict) else {}


def _lookup(root: Any, ref: str) -> Any:
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


class _Differ:
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
        self.schema(self.old_root, self.new_root, "")
        if isinstance(self.old_root, dict) and isinstance(self.new_root, dict):
            for key in ("$defs", "definitions"):
                self._named(self.old_root.get(key), self.new_root.get(key), f"/{key}")

    def openapi(self) -> None:
        old = self.old_root if isinstance(self.old_root, dict) else {}
        new = self.new_root if isinstance(self.new_root, dict) else {}
        old_paths = _member(old, "paths")
        new_paths = _member(new, "paths")
        for path in sorted(old_paths.keys() | new_paths.keys()):
            old_item = _member(old_paths, path)
            new_item = _member(new_paths, path)
            for method in _METHODS:
                old_op, new_op = old_item.get(method), new_item.get(method)
                label = f"{method.upper()} {path}"
                if isinstance(old_op, dict) and not isinstance(new_op, dict):
                    self.add("endpoint-removed", True, label, f"endpoint {label} removed")
                elif isinstance(new_op, dict) and not isinstance(old_op, dict):
                    self.add("endpoint-added", False, label, f"new endpoint {label}")
                elif isinstance(old_op, dict) and isinstance(new_op, dict):
                    self._operation(label, old_item, old_op, new_item, new_op)
        old_components = _member(old, "components")
        new_components = _member(new, "components")
        self._named(
            old_components.get("schemas"), new_components.get("schemas"), "/components/schemas"
        )

    def _named(self, old: Any, new: Any, where: str) -> None:
        """Schemas defined by name on both sides, compared by name (the others are compared
        where they are used)."""
        if not isinstance(old, dict) or not isinstance(new, dict):
            return
        for name in sorted(old.keys() & new.keys()):
            self.schema(old[name], new[name], f"{where}/{_escape(name)}")

    # -- OpenAPI operations ------------------------------------------------------------------

    def _resolve_object(self, value: Any, root: Any) -> Any:
        """A parameter, request body or response, following a local ``$ref``."""
        for _ in range(16):
            if not (isinstance(value, dict) and isinstance(value.get("$ref"), str)):
                break
            value = _lookup(root, value["$ref"])
        return value if isinstance(value, dict) else {}

    def _parameters(self, item: dict[str, Any], op: dict[str, Any], root: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for source in (item.get("parameters"), op.get("parameters")):
            for raw in source if isinstance(source, list) else []:
                param = self._resolve_object(raw, root)
                if "name" in param:
                    out[f"{param.get('in', 'query')}/{param['name']}"] = param
        return out

    def _operation(
        self,
        label: str,
        old_item: dict[str, Any],
        old_op: dict[str, Any],
        new_item: dict[str, Any],
        new_op: dict[str, Any],
    ) -> None:
        old_params = self._parameters(old_item, old_op, self.old_root)
        new_params = self._parameters(new_item, new_op, self.new_root)
        for key in sorted(old_params.keys() - new_params.keys()):
            where_in, _, name = key.partition("/")
            self.add(
                "field-removed",
                True,
                f"{label} parameters/{key}",
                f"{where_in} parameter {name!r} removed",
            )
        for key in sorted(new_params.keys() - old_params.keys()):
            where_in, _, name = key.partition("/")
            if new_params[key].get("required") is True:
                self.add(
                    "required-added",
                    True,
                    f"{label} parameters/{key}",
                    f"new required {where_in} parameter {name!r}",
                )
            else:
                self.add(
                    "field-added",
                    False,
                    f"{label} parameters/{key}",
                    f"new optional {where_in} parameter {name!r}",
                )
        for key in sorted(old_params.keys() & new_params.keys()):
            where = f"{label} parameters/{key}"
            old_param, new_param = old_params[key], new_params[key]
            self._required_flag(old_param, new_param, where, f"parameter {key.partition('/')[2]!r}")
            if "schema" in old_param or "schema" in new_param:
                self.schema(old_param.get("schema", {}), new_param.get("schema", {}), where)
        self._request_body(label, old_op, new_op)
        self._responses(label, old_op, new_op)

    def _required_flag(
        self, old: dict[str, Any], new: dict[str, Any], where: str, what: str
    ) -> None:
        was, now = old.get("required") is True, new.get("required") is True
        if now and not was:
            self.add("required-added", True, where, f"{what} is now required")
        elif was and not now:
            self.add("required-removed", False, where, f"{what} is now optional")

    def _request_body(self, label: str, old_op: dict[str, Any], new_op: dict[str, Any]) -> None:
        where = f"{label} requestBody"
        if "requestBody" not in old_op and "requestBody" not in new_op:
            return
        old = self._resolve_object(old_op.get("requestBody"), self.old_root)
        new = self._resolve_object(new_op.get("requestBody"), self.new_root)
        if "requestBody" not in new_op:
            self.add("field-removed", True, where, "request body removed")
            return
        if "requestBody" not in old_op:
            if new.get("required") is True:
                self.add("required-added", True, where, "new required request body")
            else:
                self.add("field-added", False, where, "new optional request body")
            return
        self._required_flag(old, new, where, "the request body")
        self._content(where, old.get("content"), new.get("content"))

    def _responses(self, label: str, old_op: dict[str, Any], new_op: dict[str, Any]) -> None:
        old = _member(old_op, "responses")
        new = _member(new_op, "responses")
        for status in sorted(old.keys() - new.keys()):
            self.add(
                "field-removed", True, f"{label} responses/{status}", f"response {status} removed"
            )
        for status in sorted(new.keys() - old.keys()):
            self.add("field-added", False, f"{label} responses/{status}", f"new response {status}")
        for status in sorted(old.keys() & new.keys()):
            self._content(
                f"{label} responses/{status}",
                self._resolve_object(old[status], self.old_root).get("content"),
                self._resolve_object(new[status], self.new_root).get("content"),
            )

    def _content(self, where: str, old: Any, new: Any) -> None:
        old = old if isinstance(old, dict) else {}
        new = new if isinstance(new, dict) else {}
        for media in sorted(old.keys() - new.keys()):
            self.add("field-removed", True, f"{where}/{media}", f"media type {media} removed")
        for media in sorted(new.keys() - old.keys()):
            self.add("field-added", False, f"{where}/{media}", f"new media type {media}")
        for media in sorted(old.keys() & new.keys()):
            old_media = old[media] if isinstance(old[media], dict) else {}
            new_media = new[media] if isinstance(new[media], dict) else {}
            if "schema" in old_media or "schema" in new_media:
                self.schema(
                    old_media.get("schema", {}), new_media.get("schema", {}), f"{where}/{media}"
                )

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
            target = _lookup(root, ref)
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
            target = _lookup(root, ref)
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
            and isinstance(_lookup(self.old_root, ref), dict | bool)
            and isinstance(_lookup(self.new_root, ref), dict | bool)
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
        old_props = _member(old, "properties")
        new_props = _member(new, "properties")
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
