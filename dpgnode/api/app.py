"""The Litestar application: ``create_app(node)``, and ``app_from_env()`` for granian.

Serve with ``granian --interface asgi --factory dpgnode.api.app:app_from_env`` (``dpg node
start`` does). Everything lives under ``/api/v1``; the OpenAPI document is at
``/api/v1/openapi.json`` and a browsable UI at ``/api/v1/docs``. Only Prometheus'
``/metrics`` is outside it (and outside the document).

Each request passes, outermost first: request id, access log and request metrics ->
identification of the API key -> rate limit -> ``Idempotency-Key`` -> the policy guard ->
the handler. Errors from any of them become problem documents in ``dpgnode.api.errors``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from dpgnode import __version__
from dpgnode.api.auth import AuthMiddleware, provide_api_key
from dpgnode.api.context import RequestContextMiddleware
from dpgnode.api.errors import problem_response
from dpgnode.api.idempotency import IdempotencyMiddleware
from dpgnode.api.policy import policy_guard, public
from dpgnode.api.ratelimit import RateLimitMiddleware
from dpgnode.api.routes import api_keys, ledger, server, stores, trading_ws
from dpgnode.api.routes import blockchain as blockchain_routes
from dpgnode.api.routes import conversion as conversion_routes
from dpgnode.api.routes import custody as custody_routes
from dpgnode.api.routes import events as event_routes
from dpgnode.api.routes import metrics as metrics_routes
from dpgnode.api.routes import trading as trading_routes
from dpgnode.api.routes import trading_admin as trading_admin_routes
from dpgnode.api.routes import wallets as wallet_routes
from dpgnode.api.tracing import tracing_plugins
from dpgnode.logging import configure_logging
from dpgnode.node import Node, build_node
from dpgnode.settings import load_settings

API_PREFIX = "/api/v1"


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="DPG node",
        version=__version__,
        description=(
            "Merchant payment gateway API, compatible with BTCPay Server's Greenfield API. "
            "Authenticate with `Authorization: token <API key>`. Errors are RFC 9457 "
            "problem documents; amounts are decimal strings."
        ),
        components=Components(
            security_schemes={
                "token": SecurityScheme(
                    type="apiKey", name="Authorization", security_scheme_in="header",
                    description="`token <API key>`",
                )
            }
        ),
        security=[{"token": []}],
        render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin(path="/openapi.json")],
        openapi_router=Router(
            f"{API_PREFIX}/docs", route_handlers=[], opt=public(), include_in_schema=False
        ),
    )


def create_app(node: Node, *, on_shutdown: Sequence[Callable[[], None]] = ()) -> Litestar:
    """The API over a wired node; the caller keeps ownership of ``node`` (and closes it)."""
    api = node.settings.api

    def provide_node() -> Node:
        return node

    return Litestar(
        route_handlers=[
            Router(
                API_PREFIX,
                route_handlers=[
                    *server.ROUTES, *stores.ROUTES, *api_keys.ROUTES, *ledger.ROUTES,
                    *conversion_routes.ROUTES,
                    *wallet_routes.ROUTES,
                    *trading_routes.ROUTES, trading_ws.trading_feed,
                    *trading_admin_routes.ROUTES, *custody_routes.ROUTES, *event_routes.ROUTES,
                    *blockchain_routes.ROUTES,
                ],
            ),
            *metrics_routes.ROUTES,  # /metrics, outside the API prefix (Prometheus' default)
        ],
        middleware=[
            DefineMiddleware(RequestContextMiddleware, metrics=node.metrics),
            DefineMiddleware(AuthMiddleware, access=node.access),
            DefineMiddleware(
                RateLimitMiddleware, clock=node.clock,
                per_key=api.rate_limit_per_key, per_ip=api.rate_limit_per_ip,
            ),
            DefineMiddleware(
                IdempotencyMiddleware, service=node.idempotency, max_body_bytes=api.max_body_bytes
            ),
        ],
        guards=[policy_guard],
        dependencies={
            "node": Provide(provide_node, sync_to_thread=False),
            "api_key": Provide(provide_api_key, sync_to_thread=False),
        },
        exception_handlers={Exception: problem_response},
        openapi_config=_openapi(),
        request_max_body_size=api.max_body_bytes,
        state=State({"node": node}),
        on_shutdown=list(on_shutdown),
        lifespan=[trading_ws.feed_lifespan],
        plugins=tracing_plugins(node),
        logging_config=None,
        debug=False,
    )


def app_from_env() -> Litestar:
    """Factory for granian: settings from ``DPG_DATA_DIR`` / ``DPG_CONFIG_FILE`` / ``DPG_*``."""
    config_file = os.environ.get("DPG_CONFIG_FILE")
    settings = load_settings(config_file=Path(config_file) if config_file else None)
    configure_logging(settings.log)
    node = build_node(settings)
    node.start_workers()
    return create_app(node, on_shutdown=[node.close])
