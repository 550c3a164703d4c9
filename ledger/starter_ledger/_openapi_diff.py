"""OpenAPI comparison: the changes between two versions of an OpenAPI document, classified.

For: ``is_openapi`` and ``OpenAPIDiffer``, which compares the operations of each path (an
endpoint added or removed; its parameters, request body, responses and media types) and the
named ``components/schemas``, placing each change as ``GET /path`` followed by the place in the
operation (``GET /ledger/entries parameters/query/start``). The schemas inside are compared by
the JSON Schema rules it inherits from ``SchemaDiffer``. The rules are listed in
``starter_ledger.schemadiff``, the public entry. Not for: JSON Schema keywords
(``_jsonschema_diff``).
"""

from __future__ import annotations

from typing import Any

from starter_ledger._jsonschema_diff import SchemaDiffer, lookup, member

__all__ = ["OpenAPIDiffer", "is_openapi"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def is_openapi(document: Any) -> bool:
    """True for an OpenAPI document: a JSON object with an ``openapi`` member."""
    return isinstance(document, dict) and "openapi" in document


class OpenAPIDiffer(SchemaDiffer):
    """``SchemaDiffer`` for OpenAPI documents: operations by path and method, then the named
    component schemas."""

    def openapi(self) -> None:
        """Compare the two documents as OpenAPI documents."""
        old = self.old_root if isinstance(self.old_root, dict) else {}
        new = self.new_root if isinstance(self.new_root, dict) else {}
        old_paths = member(old, "paths")
        new_paths = member(new, "paths")
        for path in sorted(old_paths.keys() | new_paths.keys()):
            old_item = member(old_paths, path)
            new_item = member(new_paths, path)
            for method in _METHODS:
                old_op, new_op = old_item.get(method), new_item.get(method)
                label = f"{method.upper()} {path}"
                if isinstance(old_op, dict) and not isinstance(new_op, dict):
                    self.add("endpoint-removed", True, label, f"endpoint {label} removed")
                elif isinstance(new_op, dict) and not isinstance(old_op, dict):
                    self.add("endpoint-added", False, label, f"new endpoint {label}")
                elif isinstance(old_op, dict) and isinstance(new_op, dict):
                    self._operation(label, old_item, old_op, new_item, new_op)
        old_components = member(old, "components")
        new_components = member(new, "components")
        self._named(
            old_components.get("schemas"), new_components.get("schemas"), "/components/schemas"
        )

    # -- OpenAPI operations ------------------------------------------------------------------

    def _resolve_object(self, value: Any, root: Any) -> Any:
        """A parameter, request body or response, following a local ``$ref``."""
        for _ in range(16):
            if not (isinstance(value, dict) and isinstance(value.get("$ref"), str)):
                break
            value = lookup(root, value["$ref"])
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
        old = member(old_op, "responses")
        new = member(new_op, "responses")
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
