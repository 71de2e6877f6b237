"""Request ids and access logs.

Each request gets an id: the caller's ``X-Request-Id`` when it is a sane token, else a new
one. It is bound to every log line written while the request runs and echoed in the
response's ``X-Request-Id`` header (error responses made outside this middleware carry it
too: ``dpgnode.api.errors`` adds it). One access-log line per request records method, path,
status, duration and the key id; headers, query strings and bodies are never logged.
"""

from __future__ import annotations

import time

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from dpgnode.api.auth import client_ip, identity_of
from dpgnode.api.errors import (
    REQUEST_ID_STATE,
    incoming_request_id,
    new_request_id,
    status_for,
)

_HEADER = b"x-request-id"
log = structlog.get_logger("dpgnode.api.access")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or new_request_id()
        scope.setdefault("state", {})[REQUEST_ID_STATE] = request_id
        status = 500
        encoded = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _HEADER for name, _ in headers):
                    headers.append((_HEADER, encoded))
                message = {**message, "headers": headers}
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                status = status_for(exc)
                raise
            finally:
                key = identity_of(scope).key
                log.info(
                    "http_request",
                    method=scope.get("method", ""),
                    path=scope.get("path", ""),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    key_id=key.id if key is not None else None,
                    client=client_ip(scope),
                )
