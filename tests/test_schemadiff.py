"""Schema changes are classified the way a consumer of the contracts lives through them.

Each rule of ``starter_ledger.schemadiff`` on small hand-written JSON Schemas, on two versions of a
real pydantic model, and on OpenAPI documents; and a property: whatever fields are removed or added,
exactly those are reported, removals and new required fields as breaking.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from starter_events import SchemaChange
from starter_ledger.schemadiff import diff_documents, diff_snapshots

NAME = "Release.schema.json"

BASE: dict[str, Any] = {
    "additionalProperties": False,
    "properties": {
        "channel": {"enum": ["stable", "beta"], "title": "Channel", "type": "string"},
        "name": {"maxLength": 64, "title": "Name", "type": "string"},
        "size": {"title": "Size", "type": "integer"},
        "tags": {"items": {"type": "string"}, "title": "Tags", "type": "array"},
    },
    "required": ["name", "size"],
    "title": "Release",
    "type": "object",
}


def summary(changes: list[SchemaChange]) -> set[tuple[str, bool, str]]:
    return {(c.kind, c.breaking, c.where) for c in changes}


def changed(edit: Callable[[dict[str, Any]], None]) -> set[tuple[str, bool, str]]:
    new = copy.deepcopy(BASE)
    edit(new)
    return summary(diff_documents(NAME, BASE, new))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = doc
        for part in parents:
            node = node[part]
        node[last] = value

    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = doc
        for part in parents:
            node = node[part]
        del node[last]

    return edit


P = "/properties"
CASES: list[tuple[str, Callable[[dict[str, Any]], None], set[tuple[str, bool, str]]]] = [
    ("field removed", _drop("properties/size"), {("field-removed", True, f"{P}/size")}),
    (
        "optional field added",
        _set("properties/note", {"type": "string"}),
        {("field-added", False, f"{P}/note")},
    ),
    (
        "required field added",
        lambda d: (d["properties"].update(owner={"type": "string"}), d["required"].append("owner")),
        {("required-added", True, f"{P}/owner")},
    ),
    (
        "optional field made required",
        _set("required", ["name", "size", "channel"]),
        {("required-added", True, f"{P}/channel")},
    ),
    (
        "required field made optional",
        _set("required", ["name"]),
        {("required-removed", False, f"{P}/size")},
    ),
    ("type changed", _set("properties/size/type", "string"), {("type-changed", True, f"{P}/size")}),
    (
        "type widened to nullable",
        _set("properties/size", {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        {("type-changed", True, f"{P}/size")},
    ),
    (
        "item type changed",
        _set("properties/tags/items/type", "integer"),
        {("type-changed", True, f"{P}/tags/items")},
    ),
    (
        "enum value removed",
        _set("properties/channel/enum", ["stable"]),
        {("enum-value-removed", True, f"{P}/channel")},
    ),
    (
        "enum value added",
        _set("properties/channel/enum", ["stable", "beta", "edge"]),
        {("enum-value-added", False, f"{P}/channel")},
    ),
    (
        "maxLength tightened",
        _set("properties/name/maxLength", 32),
        {("constraint-changed", True, f"{P}/name")},
    ),
    (
        "maxLength loosened",
        _set("properties/name/maxLength", 128),
        {("constraint-changed", False, f"{P}/name")},
    ),
    (
        "maxLength removed",
        _drop("properties/name/maxLength"),
        {("constraint-changed", False, f"{P}/name")},
    ),
    (
        "minimum added",
        _set("properties/size/minimum", 1),
        {("constraint-changed", True, f"{P}/size")},
    ),
    (
        "pattern added",
        _set("properties/name/pattern", "^[a-z]+$"),
        {("constraint-changed", True, f"{P}/name")},
    ),
    (
        "additional properties allowed",
        _drop("additionalProperties"),
        {("constraint-changed", False, "/additionalProperties")},
    ),
    ("only titles and descriptions", _set("properties/size/title", "Bytes"), set()),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_change_is_classified(
    edit: Callable[[dict[str, Any]], None], expected: set[tuple[str, bool, str]]
) -> None:
    """Every kind of change is found at its JSON pointer and marked breaking or not."""
    assert changed(edit) == expected


def test_identical_documents_have_no_changes() -> None:
    """A document compared with itself (or an equal copy) has no changes."""
    assert diff_documents(NAME, BASE, copy.deepcopy(BASE)) == []


def test_const_change_is_a_removed_and_an_added_value() -> None:
    """Changing a ``const`` (a one-value Literal) removes the old value: breaking."""
    old = {"properties": {"use": {"const": "sig", "type": "string"}}, "type": "object"}
    new = {"properties": {"use": {"const": "enc", "type": "string"}}, "type": "object"}
    assert summary(diff_documents(NAME, old, new)) == {
        ("enum-value-removed", True, "/properties/use"),
        ("enum-value-added", False, "/properties/use"),
    }


def _with_defs(defs: dict[str, Any], ref: str) -> dict[str, Any]:
    return {
        "$defs": defs,
        "properties": {"key": {"$ref": f"#/$defs/{ref}"}},
        "required": ["key"],
        "type": "object",
    }


JWK = {"properties": {"kid": {"type": "string"}}, "required": ["kid"], "type": "object"}


def test_defs_are_compared_by_name() -> None:
    """A change inside a ``$defs`` model is placed under ``/$defs/<Name>``."""
    new_jwk = copy.deepcopy(JWK)
    new_jwk["properties"]["kid"]["type"] = "integer"
    changes = diff_documents(
        NAME, _with_defs({"JWK": JWK}, "JWK"), _with_defs({"JWK": new_jwk}, "JWK")
    )
    assert summary(changes) == {("type-changed", True, "/$defs/JWK/properties/kid")}


def test_renamed_nested_model_is_compared_by_structure() -> None:
    """Renaming a nested model changes nothing; a renamed and changed one is reported where used."""
    old = _with_defs({"JWK": JWK}, "JWK")
    assert diff_documents(NAME, old, _with_defs({"PublicJWK": JWK}, "PublicJWK")) == []
    changed_jwk = {"properties": {}, "type": "object"}
    assert summary(diff_documents(NAME, old, _with_defs({"Key": changed_jwk}, "Key"))) == {
        ("field-removed", True, "/properties/key/properties/kid")
    }


def test_recursive_models_terminate() -> None:
    """A self-referencing model (a tree of nodes) is compared without looping."""

    def tree(name: str, value_type: str) -> dict[str, Any]:
        node = {
            "properties": {
                "children": {"items": {"$ref": f"#/$defs/{name}"}, "type": "array"},
                "value": {"type": value_type},
            },
            "type": "object",
        }
        return {"$defs": {name: node}, "$ref": f"#/$defs/{name}"}

    changes = diff_documents(NAME, tree("Node", "string"), tree("Leaf", "integer"))
    assert summary(changes) == {("type-changed", True, "/properties/value")}


class ReleaseV1(BaseModel):
    """A release (version 1)."""

    model_config = ConfigDict(title="Release")

    name: str = Field(max_length=64)
    size: int
    channel: Literal["stable", "beta"] = "stable"
    note: str | None = None


class ReleaseV2(BaseModel):
    """A release (version 2): every kind of change at once."""

    model_config = ConfigDict(title="Release")

    name: str = Field(max_length=32)
    size: str
    channel: Literal["stable"] = "stable"
    owner: str
    tag: str | None = None


def test_real_pydantic_models() -> None:
    """Two versions of a pydantic model: removed field, type change, new required field, removed
    enum value and tightened constraint are breaking; a new optional field is not."""
    changes = diff_documents(NAME, ReleaseV1.model_json_schema(), ReleaseV2.model_json_schema())
    assert summary(changes) == {
        ("field-removed", True, "/properties/note"),
        ("type-changed", True, "/properties/size"),
        ("required-added", True, "/properties/owner"),
        ("enum-value-removed", True, "/properties/channel"),
        ("constraint-changed", True, "/properties/name"),
        ("field-added", False, "/properties/tag"),
    }
    assert changes == sorted(changes, key=lambda c: (c.snapshot, c.where, c.kind, c.detail))


def _openapi(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "components": {"schemas": schemas or {}},
        "info": {"title": "t", "version": "1"},
        "openapi": "3.1.0",
        "paths": paths,
    }


def _op(params: list[dict[str, Any]] | None = None, responses: Any = None) -> dict[str, Any]:
    return {
        "parameters": params or [],
        "responses": responses
        or {
            "200": {
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}},
                "description": "ok",
            },
            "304": {"description": "not modified"},
        },
    }


PAGE = {"properties": {"size": {"type": "integer"}}, "required": ["size"], "type": "object"}
START = {"in": "query", "name": "start", "required": False, "schema": {"type": "integer"}}


def test_openapi_endpoints_removed_and_added() -> None:
    """A removed endpoint is breaking, a new one is not."""
    old = _openapi({"/entries": {"get": _op()}, "/old": {"get": _op()}}, {"Page": PAGE})
    new = _openapi({"/entries": {"get": _op(), "post": _op()}}, {"Page": PAGE})
    assert summary(diff_documents("openapi.json", old, new)) == {
        ("endpoint-removed", True, "GET /old"),
        ("endpoint-added", False, "POST /entries"),
    }


def test_openapi_operation_changes() -> None:
    """Inside an operation: a new required parameter, a removed response status or media type and
    a changed component schema are breaking; a new optional parameter is not."""
    old = _openapi({"/entries": {"get": _op([START])}}, {"Page": PAGE})
    index = {"in": "query", "name": "index", "required": True, "schema": {"type": "integer"}}
    end = {"in": "query", "name": "end", "schema": {"type": "integer"}}
    responses = {
        "200": {"content": {"text/plain": {}}, "description": "ok"},
    }
    page = {"properties": {}, "type": "object"}
    new = _openapi({"/entries": {"get": _op([START, index, end], responses)}}, {"Page": page})
    assert summary(diff_documents("openapi.json", old, new)) == {
        ("required-added", True, "GET /entries parameters/query/index"),
        ("field-added", False, "GET /entries parameters/query/end"),
        ("field-removed", True, "GET /entries responses/304"),
        ("field-removed", True, "GET /entries responses/200/application/json"),
        ("field-added", False, "GET /entries responses/200/text/plain"),
        ("field-removed", True, "/components/schemas/Page/properties/size"),
    }


def test_openapi_parameter_made_required_and_retyped() -> None:
    """A parameter made required, or given another type, is breaking."""
    old = _openapi({"/entries": {"get": _op([START])}}, {"Page": PAGE})
    start = {**START, "required": True, "schema": {"type": "string"}}
    new = _openapi({"/entries": {"get": _op([start])}}, {"Page": PAGE})
    assert summary(diff_documents("openapi.json", old, new)) == {
        ("required-added", True, "GET /entries parameters/query/start"),
        ("type-changed", True, "GET /entries parameters/query/start"),
    }


def test_snapshot_files_added_and_removed() -> None:
    """A snapshot file no longer produced is breaking; a new one is not."""
    changes = diff_snapshots({"A.schema.json": BASE}, {"B.schema.json": BASE})
    assert summary(changes) == {
        ("snapshot-removed", True, ""),
        ("snapshot-added", False, ""),
    }
    assert [c.snapshot for c in changes] == ["A.schema.json", "B.schema.json"]


FIELD_NAMES = st.sets(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]))


@settings(max_examples=60, deadline=None)
@given(old=FIELD_NAMES, new=FIELD_NAMES, required=FIELD_NAMES)
def test_property_removed_and_added_fields_are_exactly_reported(
    old: set[str], new: set[str], required: set[str]
) -> None:
    """Whatever fields disappear or appear, exactly those are reported: removals and new required
    fields as breaking, new optional fields as compatible."""

    def schema(names: set[str], req: set[str]) -> dict[str, Any]:
        return {
            "properties": {n: {"type": "string"} for n in sorted(names)},
            "required": sorted(req & names),
            "type": "object",
        }

    changes = diff_documents(NAME, schema(old, set()), schema(new, required))
    expected = {("field-removed", True, f"/properties/{n}") for n in old - new}
    expected |= {
        ("required-added" if n in required else "field-added", n in required, f"/properties/{n}")
        for n in new - old
    }
    expected |= {("required-added", True, f"/properties/{n}") for n in (old & new) & required}
    assert summary(changes) == expected
