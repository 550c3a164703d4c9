"""The backend's ASGI application: ``create_app`` (for ``uvicorn --factory``).

For: building the app. Importing this module reads no settings, opens no store and starts
nothing; ``create_app`` only wires objects together; the lifespan (when the server starts)
reads the settings (``STARTER_*`` environment through ``BackendSettings`` unless given), opens
the ledger read-only and starts the refresh loop. The app is the fast path (plain ASGI, for the
JWKS and the checkpoint) in front of a FastAPI app holding every route, including those two for
the OpenAPI document and for the moments the fast path has nothing to serve.
Not for: writing to the ledger (nothing here can append).

Run it with ``uvicorn --factory starter_backend.app:create_app``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from starter_backend._fastpath import CHECKPOINT_PATH, JWKS_PATH, FastPath, select
from starter_backend._responses import etag_matches
from starter_contracts.api import (
    ConsistencyProofBody,
    EntriesPage,
    EntryItem,
    ErrorBody,
    HealthBody,
    InclusionProofBody,
    ReadyBody,
)
from starter_contracts.jwk import JWKS

if TYPE_CHECKING:
    from starter_backend._service import LedgerService
    from starter_contracts.settings import BackendSettings
    from starter_ledger.clock import Clock
    from starter_ledger.follow import View
    from starter_ledger.ledger import Ledger

__all__ = ["create_app"]

T = TypeVar("T")

#: Largest tree position a query may name (beyond any real ledger; keeps SQL integers in range).
MAX_POSITION = 2**53

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A parameter is out of range for the tree."},
    503: {"model": ErrorBody, "description": "No verified ledger state to serve yet."},
}


class ApiError(Exception):
    """An error answered with ``ErrorBody``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def create_app(settings: BackendSettings | None = None, *, clock: Clock | None = None) -> FastPath:
    """The backend app. ``settings`` default to the environment, read when the app starts."""
    fast: FastPath

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from starter_backend._service import LedgerService
        from starter_contracts.settings import BackendSettings

        service = LedgerService(settings or BackendSettings(), clock)
        app.state.service = service
        fast.service = service
        await service.start()
        try:
            yield
        finally:
            fast.service = None
            await service.stop()

    api = FastAPI(
        title="Starter Ledger backend",
        summary="JWKS, checkpoints, entries and Merkle proofs, served from verified ledger state.",
        version=_version(),
        lifespan=lifespan,
    )

    @api.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        body = ErrorBody(error=e.code, message=e.message).model_dump()
        return JSONResponse(body, status_code=e.status)

    def service_of(request: Request) -> LedgerService:
        service: LedgerService | None = getattr(request.app.state, "service", None)
        if service is None:
            raise ApiError(503, "not-started", "the service is not running (no lifespan)")
        return service

    async def on_ledger(request: Request, fn: Callable[[Ledger, View], T]) -> T:
        from starter_ledger.errors import LedgerError

        try:
            return await service_of(request).run(fn)
        except LookupError as e:
            raise ApiError(503, "not-ready", str(e)) from None
        except LedgerError as e:  # the store no longer holds what was verified (or is gone)
            raise ApiError(
                503,
                "ledger-unavailable",
                f"the ledger cannot answer this now: {e.message}; the replica will report it "
                "on /ready",
            ) from None

    def fast_response(request: Request, path: str) -> Response:
        service = service_of(request)
        responses = service.responses()
        if responses is None:
            raise ApiError(503, "not-ready", service.problem or "the ledger is not verified yet")
        prepared = select(responses, path)
        headers = {k.decode(): v.decode() for k, v in prepared.headers}
        inm = request.headers.get("if-none-match")
        if inm is not None and etag_matches(inm.encode(), prepared.etag):
            return Response(
                status_code=304,
                headers={k.decode(): v.decode() for k, v in prepared.not_modified_headers},
            )
        return Response(prepared.body, headers=headers)

    jwks_schema = JWKS.model_json_schema(ref_template="#/components/schemas/{model}")
    jwks_defs = jwks_schema.pop("$defs", {})

    @api.get(
        JWKS_PATH,
        tags=["keys"],
        summary="The JWK Set the ledger's key events imply now",
        response_class=Response,
        responses={
            200: {
                "description": "Public keys only; strong ETag; max-age capped by the next key "
                "change.",
                "content": {"application/jwk-set+json": {"schema": jwks_schema}},
            },
            304: {"description": "Not modified (If-None-Match matched the ETag)."},
            503: _ERRORS[503],
        },
    )
    def jwks(request: Request) -> Response:
        return fast_response(request, JWKS_PATH)

    @api.get(
        CHECKPOINT_PATH,
        tags=["ledger"],
        summary="The latest verified checkpoint (C2SP tlog-checkpoint as a signed note)",
        response_class=Response,
        responses={
            200: {"description": "The signed note.", "content": {"text/plain": {}}},
            304: {"description": "Not modified."},
            503: _ERRORS[503],
        },
    )
    def checkpoint(request: Request) -> Response:
        return fast_response(request, CHECKPOINT_PATH)

    @api.get("/ledger/entries", tags=["ledger"], responses=_ERRORS)
    async def entries(
        request: Request,
        start: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
        end: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
    ) -> EntriesPage:
        """Entries ``start`` (inclusive) to ``end`` (exclusive; default: a full page), verbatim."""
        limit = service_of(request).settings.max_page

        def read(ledger: Ledger, view: View) -> EntriesPage:
            size = view.size
            if start > size:
                raise ApiError(
                    400, "start-out-of-range", f"start {start} is beyond the tree size {size}"
                )
            stop = min(start + limit, size) if end is None else end
            if stop > size:
                raise ApiError(
                    400, "end-out-of-range", f"end {stop} is beyond the tree size {size}"
                )
            if stop < start:
                raise ApiError(400, "bad-range", f"end {stop} is before start {start}")
            if stop - start > limit:
                raise ApiError(
                    400,
                    "page-too-large",
                    f"{stop - start} entries asked for; a page holds at most {limit}",
                )
            items = [
                EntryItem(seq=seq, entry=raw.decode("ascii"))
                for seq, raw in ledger.store.iter_entries(start, stop)
            ]
            if len(items) != stop - start:
                raise ApiError(
                    503,
                    "ledger-unavailable",
                    f"the ledger holds fewer entries than the {size} verified: it was truncated",
                )
            return EntriesPage(
                start=start, end=stop, size=size, entries=items, next=stop if stop < size else None
            )

        return await on_ledger(request, read)

    @api.get("/ledger/proofs/inclusion", tags=["ledger"], responses=_ERRORS)
    async def inclusion(
        request: Request,
        index: Annotated[int, Query(ge=0, le=MAX_POSITION)],
        size: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
    ) -> InclusionProofBody:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` (default: the
        latest verified) entries."""

        def prove(ledger: Ledger, view: View) -> InclusionProofBody:
            n = view.size if size is None else size
            if n > view.size:
                raise ApiError(
                    400, "size-out-of-range", f"size {n} is beyond the tree size {view.size}"
                )
            if index >= n:
                raise ApiError(
                    400, "index-out-of-range", f"index {index} is not in a tree of {n} entries"
                )
            raw = next(iter(ledger.store.iter_entries(index, index + 1)))[1]
            root = view.root if n == view.size else ledger.root(n)
            return InclusionProofBody(
                index=index,
                size=n,
                leaf_hash=_b64(hashlib.sha256(b"\x00" + raw).digest()),
                root_hash=_b64(root),
                proof=[_b64(h) for h in ledger.inclusion_proof(index, n)],
            )

        return await on_ledger(request, prove)

    @api.get("/ledger/proofs/consistency", tags=["ledger"], responses=_ERRORS)
    async def consistency(
        request: Request,
        first: Annotated[int, Query(ge=1, le=MAX_POSITION)],
        second: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
    ) -> ConsistencyProofBody:
        """RFC 9162 consistency proof from the tree of ``first`` entries to that of ``second``
        (default: the latest verified)."""

        def prove(ledger: Ledger, view: View) -> ConsistencyProofBody:
            n = view.size if second is None else second
            if n > view.size:
                raise ApiError(
                    400, "second-out-of-range", f"second {n} is beyond the tree size {view.size}"
                )
            if first > n:
                raise ApiError(400, "bad-range", f"first {first} is larger than second {n}")
            return ConsistencyProofBody(
                first=first,
                second=n,
                first_root_hash=_b64(ledger.root(first)),
                second_root_hash=_b64(view.root if n == view.size else ledger.root(n)),
                proof=[_b64(h) for h in ledger.consistency_proof(first, n)],
            )

        return await on_ledger(request, prove)

    @api.get("/health", tags=["health"])
    async def health() -> HealthBody:
        """Liveness: the process answers."""
        return HealthBody()

    @api.get(
        "/ready",
        tags=["health"],
        responses={503: {"model": ReadyBody, "description": "Not ready, with the reason."}},
    )
    async def ready(request: Request) -> Any:
        """Readiness: the ledger is open and verified, and was checked for new entries within
        the freshness bound."""
        service = service_of(request)
        view = service.view
        responses = service.responses()
        ago = service.stale_for()
        problem = service.problem
        if problem is None and view is None:
            problem = "starting: the ledger is being verified"
        if problem is None and (ago is None or ago > service.settings.freshness_bound):
            problem = f"stale: the ledger was last checked {ago or 0:.1f} s ago"
        body = ReadyBody(
            status="not-ready" if problem else "ready",
            reason=problem,
            size=None if view is None else view.size,
            root_hash=None if view is None else view.root_hash,
            jwks_etag=None if responses is None else responses.jwks.etag.decode(),
            checked_ago=None if ago is None else round(ago, 3),
        )
        if problem:
            return JSONResponse(body.model_dump(), status_code=503)
        return body

    _register_schemas(api, jwks_defs)
    fast = FastPath(api, None)
    return fast


def _register_schemas(api: FastAPI, defs: dict[str, Any]) -> None:
    """Add the JWKS models' definitions to the OpenAPI document's components, where the JWKS
    response's ``$ref``s point."""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(defs)
        return api.openapi_schema or {}

    api.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    """The OpenAPI ``info.version``: the ``starter-contracts`` version (its ``_version.py``,
    written only by ``starter-cli release bump``), read when the app is built."""
    import starter_contracts

    return str(starter_contracts.__version__)
