"""``/documents/{id}``, ``/healthz`` and ``/stats``: what the served index holds and how it runs."""

from __future__ import annotations

import os
import statistics
from collections import deque
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from ..errors import NotFoundError
from .deps import Engine, documented, stamp
from .models import DocumentOut, HealthOut, LatencyOut, StatsOut

router = APIRouter()


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentOut,
    responses=documented(404, 413, 422, 500, 503),
)
def document(doc_id: str, response: Response, engine: Engine) -> dict[str, Any]:
    """A document's metadata and passages."""
    found = engine.document(doc_id)
    if found is None:
        raise NotFoundError("no such document in the index")
    stamp(response, engine.generation)
    return {**found, "generation": engine.generation}


@router.get("/healthz", response_model=HealthOut, responses=documented(500, 503))
async def health(request: Request, response: Response) -> dict[str, Any]:
    """The server is up and serves a generation. Answered on the event loop, as a quick search
    is, unless a new version is due (a thread opens it): a probe does not wait behind queries
    that fill the thread pool."""
    live = request.app.state.live
    sequence, engine = live.in_hand() or await run_in_threadpool(live.get)
    stamp(response, engine.generation, sequence)
    return {"status": "ok", "generation": engine.generation}


@router.get("/stats", response_model=StatsOut, responses=documented(500, 503))
def stats(request: Request, response: Response, engine: Engine) -> dict[str, Any]:
    """Generation, counts, model, languages, and this worker's recent query latency."""
    info = engine.info()
    stamp(response, engine.generation)
    return {
        "generation": info["generation"],
        "documents": info["documents"],
        "passages": info["passages"],
        "model": info["model"],
        "languages": info["languages"],
        "bytes": info["bytes"],
        "worker": os.getpid(),
        "latency": _percentiles(request.app.state.latencies),
    }


def _percentiles(latencies: deque[float]) -> LatencyOut:
    values = sorted(latencies)
    if len(values) < 2:
        only = values[0] if values else None
        return LatencyOut(count=len(values), p50_ms=only, p95_ms=only, p99_ms=only)
    cuts = [round(cut, 3) for cut in statistics.quantiles(values, n=100)]
    return LatencyOut(count=len(values), p50_ms=cuts[49], p95_ms=cuts[94], p99_ms=cuts[98])
