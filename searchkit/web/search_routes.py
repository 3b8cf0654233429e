"""``/search`` (GET and POST) and the search page."""

from __future__ import annotations

import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from ..errors import UserInputError
from ..records import SearchResult
from ..search.engine import SearchEngine
from ..search.query_check import validate_query
from .deps import documented, live_engine, stamp
from .models import SearchBody, SearchQuery

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter()
_errors = documented(400, 413, 422, 500, 503)
QUICK_HITS = 20  # offset + k of a query the event loop answers itself


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/search", response_model=SearchResult, responses=_errors)
async def search_get(request: Request, params: Annotated[SearchQuery, Query()]) -> Response:
    """Ranked, highlighted passages (the body of `searchkit query --json`)."""
    _check_utf8(request)
    # Validated as SearchQuery already; the fields only POST takes keep their defaults.
    return await _answer(request, SearchBody.model_construct(**params.model_dump()))


@router.post("/search", response_model=SearchResult, responses=_errors)
async def search_post(request: Request, body: SearchBody) -> Response:
    """Like `GET /search`, plus metadata filters and per-query fusion settings."""
    return await _answer(request, body)


async def _answer(request: Request, body: SearchBody) -> Response:
    """Answer on the event loop what takes about a millisecond, less than handing it to a
    thread costs (``_quick``), from the local engine in hand, when no other query is running
    (the gate is free) and no new version is due. Everything else runs in the thread pool."""
    gate = request.app.state.gate
    if _quick(request, body) and gate.acquire(blocking=False):
        try:
            if (given := request.app.state.live.in_hand()) is not None:
                return _search(request, body, given)
        finally:
            gate.release()
    return await run_in_threadpool(_search_on_a_thread, request, body)


def _search_on_a_thread(request: Request, body: SearchBody) -> Response:
    """Encode the query, then search through the gate: one query's Python at a time.

    A worker's threads take turns at the GIL, so queries on several of them only slow each
    other (measured: 8 clients got fewer hybrid answers a second from one worker than one
    client did). The encoder releases the GIL, and runs before the gate: concurrent queries
    share its passes (``SharedQueryEncoder``) while another query searches."""
    given = live_engine(request)
    engine = given[1]
    validate_query(  # before encoding: a query the engine would refuse costs no encoding
        engine.settings, body.q, k=body.k, mode=body.mode, offset=body.offset,
        syntax=body.syntax, per_doc=body.per_doc,
    )  # fmt: skip
    vector = engine.query_encoder.vector(body.q, body.mode)
    with request.app.state.gate:
        return _search(request, body, given, vector)


def _quick(request: Request, body: SearchBody) -> bool:
    """A query short enough for the event loop: bm25, a first page or two, no filters (their
    lookups scan the catalog) and no query syntax."""
    return (
        request.app.state.in_process
        and body.mode == "bm25"
        and body.offset + body.k <= QUICK_HITS
        and not body.syntax
        and not body.filters
        and body.path_prefix is None
    )


def _search(
    request: Request,
    body: SearchBody,
    given: tuple[int, SearchEngine],
    vector: NDArray[np.float32] | None = None,
) -> Response:
    """The answer of the engine ``given`` (with the request's number), serialized once
    (``SearchResult.to_json``), not through FastAPI's response validation: it is the
    engine's own record, and that would cost more than the search."""
    sequence, engine = given
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
        highlight=body.highlight,
        path_prefix=body.path_prefix,
        filters=body.filters,
        min_relevance=body.min_relevance,
        query_vector=vector,
    )
    request.app.state.latencies.append(result.took_ms)
    answer = Response(result.to_json(), media_type="application/json")
    stamp(answer, result.generation, sequence)
    return answer


def _check_utf8(request: Request) -> None:
    """Refuse query strings that are not UTF-8 (Starlette would replace the bad bytes)."""
    try:
        urllib.parse.unquote_to_bytes(request.scope.get("query_string", b"")).decode("utf-8")
    except UnicodeDecodeError:
        raise UserInputError("the query string is not valid UTF-8") from None
