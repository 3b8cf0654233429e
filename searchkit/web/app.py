"""The HTTP API and search page: ``create_app(settings)`` -> FastAPI.

A thin shell over the library: each worker opens the index once (``LiveEngine``), follows
``CURRENT`` (or a sharded home's ``CLUSTER``) between requests, and holds one ``IndexWriter``
whose background thread makes live writes searchable. Errors become JSON with one ``detail``
line; no traceback reaches a client.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from ..build.writer import IndexWriter
from ..config import Settings
from ..errors import AuthError, SearchkitError
from ..search.live import EngineSource, LiveEngine
from . import admin_routes, index_routes, search_routes, write_routes
from .limits import BodyLimitMiddleware
from .models import document_limits
from .write_routes import start_refresher

log = logging.getLogger("searchkit")
LATENCY_WINDOW = 1000
GENERIC_5XX = {
    503: "the index is not available right now",
    507: "the server is out of disk space",
}


def create_app(
    settings: Settings | None = None,
    engines: Callable[[], EngineSource] | None = None,
    ray_address: str | None = None,
) -> FastAPI:
    """The application; the index is opened when the app starts (once per worker).

    ``engines`` replaces the in-process ``LiveEngine`` (the Ray ingress passes one over Serve
    handles); ``ray_address`` lets ``/admin/rebuild`` rebuild a sharded index on that cluster.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.live = engines() if engines else LiveEngine(settings.index_dir, settings)
        app.state.latencies = deque(maxlen=LATENCY_WINDOW)
        app.state.writer = IndexWriter(settings.index_dir, settings)
        stop = start_refresher(app.state.writer, settings.refresh_interval)
        yield
        stop.set()

    # Swagger UI and ReDoc from files in the fastapi-offline wheel: /docs works offline.
    app = FastAPIOffline(
        title="searchkit",
        summary="Hybrid full-text and semantic search over your own documents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ray_address = ray_address
    app.state.in_process = engines is None  # searched here, not through Ray handles
    # One query's Python work at a time in this worker (search_routes); the Ray ingress only
    # waits on its shards, and lets its requests overlap.
    app.state.gate = threading.Lock() if app.state.in_process else nullcontext()
    # Written documents are larger than queries: POST /documents streams large loads and
    # limits them itself (write_routes); PUT takes one document and its JSON around it.
    limits = {
        ("POST", "/documents"): None,
        ("PUT", "/documents/"): settings.max_document_bytes + 64 * 1024,
    }
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, limits=limits)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins)
    app.add_exception_handler(SearchkitError, _searchkit_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    for module in (search_routes, index_routes, write_routes, admin_routes):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=search_routes.STATIC), name="static")
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn workers: settings come from ``SEARCHKIT_*`` variables."""
    return create_app(Settings())


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI document, with the query limits this service's settings enforce."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        app.openapi_schema = document_limits(schema, settings)
    return app.openapi_schema


async def _searchkit_error(request: Request, exc: SearchkitError) -> JSONResponse:
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        detail = GENERIC_5XX.get(exc.status, "internal error")
        return JSONResponse({"detail": detail}, status_code=exc.status)
    challenge = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=challenge)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with the same shape as every other 4xx: one ``detail`` line a person can read."""
    error = exc.errors()[0]
    body_error = _body_error(error, request.headers.get("content-type", ""))
    if body_error:
        return JSONResponse({"detail": body_error}, status_code=422)
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))
    message = str(error.get("msg", "invalid request")).removeprefix("Value error, ")
    return JSONResponse({"detail": f"{where}: {message}" if where else message}, status_code=422)


def _body_error(error: dict[str, Any], content_type: str) -> str | None:
    """What is wrong with a body that is not a JSON object at all, in words: pydantic's own
    ("JSON decode error") does not say, nor that curl's ``-d`` sends a form content type."""
    kind, where = error.get("type"), tuple(error.get("loc", ()))
    if kind == "json_invalid":
        return f"the request body is not valid JSON: {(error.get('ctx') or {}).get('error', '')}"
    if kind == "missing" and where == ("body",):
        return "the request has no body: send a JSON object"
    if kind != "model_attributes_type" or where != ("body",):
        return None
    if isinstance(error.get("input"), bytes):  # the body was never read as JSON
        sent = content_type.split(";", maxsplit=1)[0].strip() or "none"
        return f"send the body as JSON with content-type: application/json (this request's: {sent})"
    return "the request body must be a JSON object"


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)
