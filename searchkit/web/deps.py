"""What the routes share: the engine a request answers from, admin auth, documented errors."""

from __future__ import annotations

import hmac
import os
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import AdminDisabledError, AuthError
from ..search.engine import SearchEngine
from ..search.live import EngineSource
from .models import ErrorOut

Responses = dict[int | str, dict[str, Any]]
SEQUENCE_HEADER = "X-Searchkit-Request"
bearer = HTTPBearer(auto_error=False, description="SEARCHKIT_ADMIN_TOKEN")


def documented(*codes: int) -> Responses:
    """OpenAPI entries for the error statuses a route can answer, all shaped as ``ErrorOut``."""
    return {code: {"model": ErrorOut} for code in codes}


def live_engine(request: Request) -> tuple[int, SearchEngine]:
    """The request's sequence number in this worker, and the engine it answers from."""
    live: EngineSource = request.app.state.live
    return live.get()


def _engine(request: Request, response: Response) -> SearchEngine:
    sequence, engine = live_engine(request)
    response.headers[SEQUENCE_HEADER] = str(sequence)
    return engine


Engine = Annotated[SearchEngine, Depends(_engine)]


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    token = request.app.state.settings.admin_token
    if not token:
        raise AdminDisabledError("admin routes are disabled: set SEARCHKIT_ADMIN_TOKEN")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise AuthError("a valid bearer token is required")


def stamp(response: Response, generation: int, sequence: int | None = None) -> None:
    """The version that answered, the worker, and the request's sequence number there."""
    if sequence is not None:
        response.headers[SEQUENCE_HEADER] = str(sequence)
    response.headers["X-Index-Generation"] = str(generation)
    response.headers["X-Searchkit-Worker"] = str(os.getpid())
