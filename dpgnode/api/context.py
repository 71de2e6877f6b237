"""Request ids, access logs and request metrics.

Each request gets an id: the caller's ``X-Request-Id`` when it is a sane token, else a new
one. It is bound to every log line written while the request runs and echoed in the
response's ``X-Request-Id`` header (error responses made outside this middleware carry it
too: ``dpgnode.api.errors`` adds it). The ids the route's path names (``invoiceId``,
``storeId``, ``txid``...) are bound the same way, as ``invoice_id``, ``store_id``, ``txid``,
when they look like ids. One access-log line per request records method, path, route,
status, duration and the key id; headers, query strings and bodies are never logged.

The same measurement feeds ``dpg_http_requests_total`` and
``dpg_http_request_duration_seconds``, labelled by the route's *template*
(``/api/v1/stores/{storeId}``), never the raw path, so ids cannot multiply the series; and,
when tracing is on, names the request's span after the template too.
"""

from __future__ import annotations

import re
import time
from typing import Any

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
from dpgnode.api.tracing import name_current_span
from dpgnode.ports.metrics import MetricsExporter

_HEADER = b"x-request-id"
_ID_VALUE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
UNMATCHED_ROUTE = "(unmatched)"
log = structlog.get_logger("dpgnode.api.access")


def route_of(scope: Scope) -> str:
    """The matched route's template, or ``(unmatched)`` before or without routing."""
    template = scope.get("path_template")
    return template if isinstance(template, str) and template else UNMATCHED_ROUTE


def path_ids(scope: Scope) -> dict[str, str]:
    """Log context from the path's id parameters: ``invoiceId`` -> ``invoice_id``, ``txid``.

    Only values shaped like ids are kept: a path parameter is caller input.
    """
    params: dict[str, Any] = scope.get("path_params") or {}
    context: dict[str, str] = {}
    for name, value in params.items():
        if not (name.endswith("Id") or name == "txid"):
            continue
        key, text = _CAMEL.sub("_", name).lower(), str(value)
        if key != "request_id" and _ID_VALUE.fullmatch(text):  # the request's own id wins
            context[key] = text
    return context


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: MetricsExporter | None = None) -> None:
        self.app = app
        self._metrics = metrics

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
        method, route = str(scope.get("method", "")), route_of(scope)
        name_current_span(method, route, request_id)
        with structlog.contextvars.bound_contextvars(request_id=request_id, **path_ids(scope)):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                status = status_for(exc)
                raise
            finally:
                seconds = time.perf_counter() - started
                if self._metrics is not None:
                    self._metrics.record_http_request(method, route, status, seconds)
                key = identity_of(scope).key
                log.info(
                    "http_request",
                    method=method,
                    path=scope.get("path", ""),
                    route=route,
                    status=status,
                    duration_ms=round(seconds * 1000, 3),
                    key_id=key.id if key is not None else None,
                    client=client_ip(scope),
                )
