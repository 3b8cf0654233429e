"""What the routes share: the engine a request answers from, admin auth, documented errors."""

from __future__ import annotations

import hmac
import os
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..search.engine import SearchEngine
from ..search.live import EngineSource
from .models import ErrorOut

Responses = dict[int | str, dict[str, Any]]
bearer = HTTPBearer(auto_error=False, description="SEARCHKIT_ADMIN_TOKEN")


def documented(*codes: int) -> Responses:
    """OpenAPI entries for the error statuses a route can answer, all shaped as ``ErrorOut``."""
    return {code: {"model": ErrorOut} for code in codes}


def _engine(request: Request, response: Response) -> SearchEngine:
    live: EngineSource = request.app.state.live
    sequence, engine = live.get()
    response.headers["X-Searchkit-Request"] = str(sequence)
    return engine


Engine = Annotated[SearchEngine, Depends(_engine)]


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    token = request.app.state.settings.admin_token
    if not token:
        raise HTTPException(403, "admin routes are disabled: set SEARCHKIT_ADMIN_TOKEN")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


def stamp(response: Response, generation: int) -> None:
    response.headers["X-Index-Generation"] = str(generation)
    response.headers["X-Searchkit-Worker"] = str(os.getpid())
