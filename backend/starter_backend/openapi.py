"""The backend's OpenAPI document, for the schema freeze.

For: ``openapi_document()``, registered as the ``openapi`` source of the
``starter_ledger.snapshots`` entry point group: ``{"openapi.json": <document>}``. Building the
app wires routes only (no settings, store or server), so this runs anywhere. Not for: serving it
(the app serves ``/openapi.json`` itself).
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def openapi_document() -> dict[str, Any]:
    """``{"openapi.json": <the OpenAPI document of create_app()>}``."""
    from starter_backend.app import create_app

    return {"openapi.json": create_app().app.openapi()}
