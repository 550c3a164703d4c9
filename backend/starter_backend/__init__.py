"""The Starter HTTP service: JWKS, checkpoints, entries and proofs from verified ledger state.

For: ``create_app`` (an ASGI app; run it with ``uvicorn --factory
starter_backend.app:create_app``). It may import ``starter_ledger`` and ``starter_contracts``,
never ``starter_cli`` (import-linter enforces both). Importing the package imports nothing else:
FastAPI is loaded when ``create_app`` is first used. Not for: writing to the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starter_backend.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from starter_backend.app import create_app

        return create_app
    msg = f"module 'starter_backend' has no attribute {name!r}"
    raise AttributeError(msg)
