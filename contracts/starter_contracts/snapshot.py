"""The JSON Schema of every contract model, as the schema freeze snapshots them.

For: ``json_schemas()``, which maps ``<Model>.schema.json`` to the model's JSON Schema (pydantic's
``model_json_schema`` in validation mode) for every pydantic model named in
``starter_contracts.__all__``. It is registered as the ``contracts`` source of the
``starter_ledger.snapshots`` entry point group, beside the backend's OpenAPI document. Not for:
writing files or comparing snapshots (``starter_ledger.freeze``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["json_schemas"]


def json_schemas() -> dict[str, Any]:
    """``{"<Model>.schema.json": <JSON Schema>}`` for every public contract model, by name."""
    from pydantic import BaseModel

    import starter_contracts

    out: dict[str, Any] = {}
    for name in sorted(starter_contracts.__all__):
        value = getattr(starter_contracts, name)
        if isinstance(value, type) and issubclass(value, BaseModel):
            out[f"{name}.schema.json"] = value.model_json_schema()
    return out
