"""OpenTelemetry in the API: Litestar's plugin over the node's tracer provider.

Only when the node has tracing (``[telemetry] otlp_endpoint``; the ``otel`` extra). Spans
are named ``METHOD /route/{template}``: the plugin starts the span before routing, knowing
only the method, and :func:`name_current_span` (called by the context middleware once the
route is known) gives it the template, so ids never reach span names. Headers are never
captured (the ``Authorization`` header stays out of traces); ``/metrics`` and the health
check are not traced, since scrapers and probes would drown real requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import trace as otel_trace

    OTEL_INSTALLED = True
except ImportError:  # the otel extra is optional: without it nothing is ever traced
    OTEL_INSTALLED = False

if TYPE_CHECKING:
    from litestar.plugins import PluginProtocol
    from litestar.types import Scope

    from dpgnode.node import Node

UNTRACED_PATHS = ["^/metrics$", "^/api/v1/health$"]


def tracing_plugins(node: Node) -> list[PluginProtocol]:
    """Litestar's OpenTelemetry plugin over ``node.tracing``; none when tracing is off."""
    if node.tracing is None:
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    config = OpenTelemetryConfig(
        tracer_provider=node.tracing.provider,
        scope_span_details_extractor=_method_only,
        exclude=UNTRACED_PATHS,
        exclude_spans=["receive", "send"],
    )
    return [OpenTelemetryPlugin(config)]


def _method_only(scope: Scope) -> tuple[str, dict[str, Any]]:
    # Before routing the path is raw (ids in it); the route's template names the span later.
    return str(scope.get("method") or scope.get("type", "")), {}


def name_current_span(method: str, route: str, request_id: str) -> None:
    """Name the request's span after its route template and tag it with the request id."""
    if not OTEL_INSTALLED:
        return
    span = otel_trace.get_current_span()
    if not span.is_recording():
        return
    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("dpg.request_id", request_id)
