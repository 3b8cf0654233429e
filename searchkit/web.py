"""The HTTP API and search page: ``create_app(settings)`` -> FastAPI.

A thin shell over the library: each worker opens the index once (``LiveEngine``), follows
``CURRENT`` between requests, and never opens an index writer. One handler turns every error
into JSON with a ``detail``; no traceback or absolute path ever reaches a client.
"""

from __future__ import annotations

import hmac
import logging
import os
import statistics
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from .config import Settings
from .errors import SearchkitError
from .live import EngineSource, LiveEngine, Searcher
from .records import SearchResult
from .web_limits import BodyLimitMiddleware
from .web_models import (
    DocumentOut,
    ErrorOut,
    HealthOut,
    JobOut,
    LatencyOut,
    SearchBody,
    SearchQuery,
    StatsOut,
)

log = logging.getLogger("searchkit")
STATIC = Path(__file__).resolve().parent / "static"
LATENCY_WINDOW = 1000
GENERIC_5XX = {
    503: "the index is not available right now",
    507: "the server is out of disk space",
}
Responses = dict[int | str, dict[str, Any]]


def _documented(*codes: int) -> Responses:
    """OpenAPI entries for the error statuses a route can answer, all shaped as ``ErrorOut``."""
    return {code: {"model": ErrorOut} for code in codes}


_errors = _documented(400, 413, 422, 500, 503)
_admin_errors = _documented(401, 403, 409, 413, 422, 500)
bearer = HTTPBearer(auto_error=False, description="SEARCHKIT_ADMIN_TOKEN")


def create_app(
    settings: Settings | None = None, engines: Callable[[], EngineSource] | None = None
) -> FastAPI:
    """The application; the index is opened when the app starts (once per worker).

    ``engines`` replaces the local ``LiveEngine`` (the sharded service passes its own).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.live = engines() if engines else LiveEngine(settings.index_dir, settings)
        app.state.latencies = deque(maxlen=LATENCY_WINDOW)
        yield

    app = FastAPI(
        title="searchkit",
        summary="Hybrid full-text and semantic search over your own documents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sharded = engines is not None
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins)
    app.add_exception_handler(SearchkitError, _searchkit_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    _routes(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn workers: settings come from ``SEARCHKIT_*`` variables."""
    return create_app(Settings())


async def _searchkit_error(request: Request, exc: SearchkitError) -> JSONResponse:
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        detail = GENERIC_5XX.get(exc.status, "internal error")
        return JSONResponse({"detail": detail}, status_code=exc.status)
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def _engine(request: Request, response: Response) -> Searcher:
    live: EngineSource = request.app.state.live
    sequence, engine = live.get()
    response.headers["X-Searchkit-Request"] = str(sequence)
    return engine


Engine = Annotated[Searcher, Depends(_engine)]


def _require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    token = request.app.state.settings.admin_token
    if not token:
        raise HTTPException(403, "admin routes are disabled: set SEARCHKIT_ADMIN_TOKEN")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


def _stamp(response: Response, generation: int) -> None:
    response.headers["X-Index-Generation"] = str(generation)
    response.headers["X-Searchkit-Worker"] = str(os.getpid())


def _routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/search", response_model=SearchResult, responses=_errors)
    def search_get(
        request: Request,
        response: Response,
        engine: Engine,
        params: Annotated[SearchQuery, Query()],
    ) -> dict[str, Any]:
        """Ranked, highlighted passages (the body of `searchkit query --json`)."""
        _check_utf8(request)
        return _search(request, response, engine, SearchBody(**params.model_dump()))

    @app.post("/search", response_model=SearchResult, responses=_errors)
    def search_post(
        request: Request, response: Response, engine: Engine, body: SearchBody
    ) -> dict[str, Any]:
        """Like `GET /search`, plus metadata filters and per-query fusion settings."""
        return _search(request, response, engine, body)

    @app.get(
        "/documents/{doc_id:path}",
        response_model=DocumentOut,
        responses=_documented(404, 413, 422, 500, 503),
    )
    def document(doc_id: str, response: Response, engine: Engine) -> dict[str, Any]:
        """A document's metadata and passages."""
        found = engine.document(doc_id)
        if found is None:
            raise HTTPException(404, "no such document in the index")
        _stamp(response, engine.generation)
        return {**found, "generation": engine.generation}

    @app.get("/healthz", response_model=HealthOut, responses=_documented(500, 503))
    def health(response: Response, engine: Engine) -> dict[str, Any]:
        """The server is up and serves a generation."""
        _stamp(response, engine.generation)
        return {"status": "ok", "generation": engine.generation}

    @app.get("/stats", response_model=StatsOut, responses=_documented(500, 503))
    def stats(request: Request, response: Response, engine: Engine) -> dict[str, Any]:
        """Generation, counts, model, and this worker's recent query latency."""
        info = engine.info()
        _stamp(response, engine.generation)
        return {
            "generation": info["generation"],
            "documents": info["documents"],
            "passages": info["passages"],
            "model": info["model"],
            "bytes": info["bytes"],
            "worker": os.getpid(),
            "latency": _percentiles(request.app.state.latencies),
        }

    @app.post(
        "/admin/rebuild",
        status_code=202,
        response_model=JobOut,
        responses=_admin_errors,
        dependencies=[Depends(_require_admin)],
    )
    def rebuild(request: Request) -> dict[str, Any]:
        """Start a rebuild from the live sources in its own process; 409 while one runs."""
        from .jobs import start_rebuild

        if request.app.state.sharded:
            raise HTTPException(
                409, "a sharded index is rebuilt on its cluster: searchkit rebuild --ray-address"
            )
        return start_rebuild(request.app.state.settings.index_dir)

    @app.get(
        "/admin/jobs/{job_id}",
        response_model=JobOut,
        responses=_admin_errors | _documented(404),
        dependencies=[Depends(_require_admin)],
    )
    def job(request: Request, job_id: str) -> dict[str, Any]:
        """A rebuild job's state (any worker can answer)."""
        from .jobs import read_job

        found = read_job(request.app.state.settings.index_dir, job_id)
        if found is None:
            raise HTTPException(404, "no such job")
        return found


def _search(
    request: Request, response: Response, engine: Searcher, body: SearchBody
) -> dict[str, Any]:
    fusion = engine.fusion
    fusion = replace(
        fusion,
        method=body.fusion or fusion.method,
        vector_weight=fusion.vector_weight if body.vector_weight is None else body.vector_weight,
        rrf_k=body.rrf_k or fusion.rrf_k,
        candidates=body.candidates or fusion.candidates,
    )
    result = engine.query(
        body.q,
        k=body.k,
        mode=body.mode,
        offset=body.offset,
        syntax=body.syntax,
        per_doc=body.per_doc,
        fusion=fusion,
        explain=body.explain,
        path_prefix=body.path_prefix,
        filters=body.filters,
    )
    request.app.state.latencies.append(result.took_ms)
    _stamp(response, result.generation)
    return result.to_dict()


def _check_utf8(request: Request) -> None:
    """Refuse query strings that are not UTF-8 (Starlette would replace the bad bytes)."""
    try:
        urllib.parse.unquote_to_bytes(request.scope.get("query_string", b"")).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "the query string is not valid UTF-8") from None


def _percentiles(latencies: deque[float]) -> LatencyOut:
    values = sorted(latencies)
    if len(values) < 2:
        only = values[0] if values else None
        return LatencyOut(count=len(values), p50_ms=only, p95_ms=only, p99_ms=only)
    cuts = statistics.quantiles(values, n=100)
    return LatencyOut(count=len(values), p50_ms=cuts[49], p95_ms=cuts[94], p99_ms=cuts[98])
