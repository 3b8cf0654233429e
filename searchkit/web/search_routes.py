"""``/search`` (GET and POST) and the search page."""

from __future__ import annotations

import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse

from ..records import SearchResult
from ..search.engine import SearchEngine
from .deps import Engine, documented, stamp
from .models import SearchBody, SearchQuery

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter()
_errors = documented(400, 413, 422, 500, 503)


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/search", response_model=SearchResult, responses=_errors)
def search_get(
    request: Request, engine: Engine, params: Annotated[SearchQuery, Query()]
) -> Response:
    """Ranked, highlighted passages (the body of `searchkit query --json`)."""
    _check_utf8(request)
    return _search(request, engine, SearchBody(**params.model_dump()))


@router.post("/search", response_model=SearchResult, responses=_errors)
def search_post(request: Request, engine: Engine, body: SearchBody) -> Response:
    """Like `GET /search`, plus metadata filters and per-query fusion settings."""
    return _search(request, engine, body)


def _search(request: Request, engine: SearchEngine, body: SearchBody) -> Response:
    """The engine's answer, serialized once (``SearchResult.to_json``), not through FastAPI's
    response validation: it is the engine's own record, and that would cost more than the
    search."""
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
        min_relevance=body.min_relevance,
    )
    request.app.state.latencies.append(result.took_ms)
    answer = Response(result.to_json(), media_type="application/json")
    stamp(answer, result.generation)
    return answer


def _check_utf8(request: Request) -> None:
    """Refuse query strings that are not UTF-8 (Starlette would replace the bad bytes)."""
    try:
        urllib.parse.unquote_to_bytes(request.scope.get("query_string", b"")).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "the query string is not valid UTF-8") from None
