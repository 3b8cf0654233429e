"""Request bodies for the HTTP API, in a pure ASGI middleware, so that it holds for every route
whatever the framework's own options of the day: the size limit (413 with a JSON detail), and a
body sent without a content type read as the JSON every route takes."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
JSON = b"application/json"


class BodyLimitMiddleware:
    """``max_bytes`` for every request body, but the routes ``limits`` names (method and path
    prefix) get their own limit, or none where the route limits what it reads itself."""

    def __init__(self, app: Any, max_bytes: int, limits: dict[tuple[str, str], int | None]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        # Read the body up to the limit before the app sees any of it (covers chunked bodies).
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        if size and b"content-type" not in dict(scope.get("headers") or []):
            scope = {**scope, "headers": [*scope["headers"], (b"content-type", JSON)]}
        await self.app(scope, replay, send)

    def _limit(self, method: str, path: str) -> int | None:
        for (route_method, prefix), limit in self.limits.items():
            if method == route_method and path.startswith(prefix):
                return limit
        return self.max_bytes


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", JSON),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
