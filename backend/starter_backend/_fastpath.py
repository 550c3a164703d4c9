"""The fast path: a plain ASGI layer that answers GET/HEAD of the JWKS and the checkpoint.

For: serving the two hot resources straight from precomputed bytes and header lists (200, or 304
on a matching ``If-None-Match``) without the framework's routing, validation and response
objects; everything else (and these paths while no verified state exists) goes to the FastAPI
app, whose routes for the same paths give the same answers and document them in OpenAPI.
Not for: anything that reads the store.
"""

from __future__ import annotations

from typing import Any

from starter_backend._responses import Prepared, Responses, etag_matches
from starter_backend._service import LedgerService

__all__ = ["CHECKPOINT_PATH", "JWKS_PATH", "FastPath", "select"]

JWKS_PATH = "/.well-known/jwks.json"
CHECKPOINT_PATH = "/ledger/checkpoint"

_FAST = (JWKS_PATH, CHECKPOINT_PATH)

Scope = dict[str, Any]


def select(responses: Responses, path: str) -> Prepared:
    return responses.jwks if path == JWKS_PATH else responses.checkpoint


def if_none_match(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"if-none-match":
            return value
    return None


class FastPath:
    """ASGI app: the fast path in front of ``app``."""

    def __init__(self, app: Any, service: Any) -> None:
        self.app = app
        #: The ``LedgerService`` while the app runs (set by the lifespan), else None.
        self.service: LedgerService | None = service

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path in _FAST and scope["method"] in ("GET", "HEAD"):
                service = self.service
                responses = service.responses() if service is not None else None
                if responses is not None:
                    await _send(select(responses, path), scope, send)
                    return
        await self.app(scope, receive, send)


async def _send(prepared: Prepared, scope: Scope, send: Any) -> None:
    inm = if_none_match(scope["headers"])
    if inm is not None and etag_matches(inm, prepared.etag):
        await send(
            {
                "type": "http.response.start",
                "status": 304,
                "headers": prepared.not_modified_headers,
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": prepared.headers})
    body = prepared.body if scope["method"] == "GET" else b""
    await send({"type": "http.response.body", "body": body})
