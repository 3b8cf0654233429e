"""Live documents over HTTP: ``PUT``/``DELETE /documents/{id}`` and ``POST /documents``.

Writes need the bearer token of ``/admin``. A write answers once it is durable (202, with its
sequence number); with ``?refresh=wait`` once it is searchable (200, with the generation that
shows it), or after ten minutes of waiting 202 as without. Every worker refreshes every
``refresh_interval`` (``build.writer``).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..build.writer import IndexWriter
from ..errors import BuildLockedError, SearchkitError, TooLargeError, UserInputError
from .deps import documented, require_admin
from .models import DocumentIn, WriteOut

log = logging.getLogger("searchkit")
router = APIRouter(dependencies=[Depends(require_admin)])
_errors = documented(400, 401, 403, 413, 422, 503)
NDJSON = ("application/x-ndjson", "application/jsonlines", "application/ndjson")
Refresh = Annotated[
    Literal["false", "wait"],
    Query(description="`wait`: answer once the write is searchable, not only durable"),
]


@router.put("/documents/{doc_id:path}", response_model=WriteOut, status_code=202, responses=_errors)
def put_document(
    doc_id: str, document: DocumentIn, request: Request, refresh: Refresh = "false"
) -> JSONResponse:
    """Add or replace one document."""
    seq = _writer(request).upsert([{**document.model_dump(), "id": doc_id}])
    return _written(request, seq, refresh)


@router.delete(
    "/documents/{doc_id:path}", response_model=WriteOut, status_code=202, responses=_errors
)
def delete_document(doc_id: str, request: Request, refresh: Refresh = "false") -> JSONResponse:
    """Delete one document (an id the index lacks is no error)."""
    return _written(request, _writer(request).delete([doc_id]), refresh)


@router.post("/documents", response_model=WriteOut, status_code=202, responses=_errors)
async def post_documents(request: Request, refresh: Refresh = "false") -> JSONResponse:
    """Add or replace a batch of documents, visible together: a JSON array, or NDJSON (one
    document per line, ``content-type: application/x-ndjson``) for large loads."""
    settings = request.app.state.settings
    line_limit = settings.max_document_bytes + 64 * 1024  # a document and its JSON around it
    if request.headers.get("content-type", "").split(";")[0].strip() in NDJSON:
        documents = await _ndjson(request, line_limit, settings.max_batch_bytes)
    else:
        documents = _array(await _body(request, settings.max_batch_bytes))
    writer = _writer(request)
    seq = await run_in_threadpool(writer.upsert, documents)  # the fsync: off the event loop
    return await run_in_threadpool(_written, request, seq, refresh)


def start_refresher(writer: IndexWriter, interval: float) -> threading.Event:
    """Make writes searchable within ``interval`` seconds, in the background; set the event
    to stop. It looks twice per interval, so that a write that just missed one refresh shows
    after the next, refresh time included. Each worker runs one: the build lock lets one at a
    time through, the others skip a turn."""
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(interval / 2):
            try:
                writer.flush()
            except BuildLockedError:
                pass  # another worker's refresh, or a rebuild: writes wait in the log
            except SearchkitError as exc:
                log.error("refreshing live documents failed: %s", exc)
            except Exception:  # a bug: say so, and keep refreshing
                log.exception("refreshing live documents failed")

    threading.Thread(target=refresh, name="searchkit-refresh", daemon=True).start()
    return stop


def _writer(request: Request) -> IndexWriter:
    writer: IndexWriter = request.app.state.writer
    return writer


def _written(request: Request, seq: int, refresh: str) -> JSONResponse:
    if refresh != "wait":
        return JSONResponse({"seq": seq, "visible": False, "generation": None}, 202)
    generation = _writer(request).wait_visible(seq)
    if generation is None:  # durable, and searchable at a later refresh
        return JSONResponse({"seq": seq, "visible": False, "generation": None}, 202)
    return JSONResponse(
        {"seq": seq, "visible": True, "generation": generation},
        headers={"X-Index-Generation": str(generation)},
    )


async def _body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


async def _ndjson(request: Request, line_limit: int, limit: int) -> list[dict[str, Any]]:
    """Documents from NDJSON, read as it streams in; a line over ``line_limit`` bytes, or a
    body over ``limit``, is refused before the rest arrives, an invalid line refuses the
    whole batch."""
    documents: list[dict[str, Any]] = []
    pending = bytearray()
    number = size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        pending += chunk
        *lines, rest = pending.split(b"\n")
        pending = bytearray(rest)
        for line in lines:
            number += 1
            _add_line(documents, line, number, line_limit)
        if len(pending) > line_limit:
            raise _too_large(line_limit, number + 1)
    if pending.strip():
        _add_line(documents, bytes(pending), number + 1, line_limit)
    return documents


def _add_line(
    documents: list[dict[str, Any]], line: bytes | bytearray, number: int, limit: int
) -> None:
    if len(line) > limit:
        raise _too_large(limit, number)
    if not line.strip():
        return
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        message = f"line {number} is not valid JSON ({exc}); nothing was written"
        raise UserInputError(message) from None
    if not isinstance(record, dict):
        raise UserInputError(f"line {number} is not a JSON object; nothing was written")
    documents.append(record)


def _array(body: bytes) -> list[dict[str, Any]]:
    try:
        documents = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserInputError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(documents, list):
        raise UserInputError("the body is a JSON array of documents (or NDJSON, one per line)")
    return documents


def _too_large(limit: int, line: int | None = None) -> TooLargeError:
    if line is None:
        return TooLargeError(f"request body larger than {limit} bytes; nothing was written")
    return TooLargeError(f"line {line} is larger than {limit} bytes; nothing was written")
