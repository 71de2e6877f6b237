"""OpenTelemetry traces of API requests, collected by the SDK's in-memory exporter.

Spans are named by route template (never a raw path with ids), carry the request id, follow
a caller's ``traceparent``, leave out headers (no ``Authorization`` in a trace), skip the
scrape and health routes, and put their ids on the request's log lines.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from litestar.testing import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dpgnode.adapters.telemetry import build_tracing
from dpgnode.api.app import create_app
from dpgnode.domain.access import METRICS_VIEW
from dpgnode.errors import ConfigError
from dpgnode.logging import configure_logging
from dpgnode.settings import LogSettings, TelemetrySettings
from tests.unit.api.conftest import Api

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def traced(
    make_api: Callable[..., Api],
) -> Iterator[tuple[Api, TestClient[Any], InMemorySpanExporter]]:
    api = make_api()
    exporter = InMemorySpanExporter()
    api.node.tracing = build_tracing(TelemetrySettings(), exporter=exporter)
    with TestClient(create_app(api.node)) as client:
        yield api, client, exporter


def _server_spans(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]


def test_span_is_named_by_route_template_when_a_store_is_read(
    traced: tuple[Api, TestClient[Any], InMemorySpanExporter],
) -> None:
    api, client, exporter = traced
    headers = api.auth("admin", **{"X-Request-Id": "trace-me-1"})
    assert client.get(f"/api/v1/stores/{api.store_a}", headers=headers).status_code == 200
    (span,) = _server_spans(exporter)
    assert span.name == "GET /api/v1/stores/{storeId}"
    assert span.attributes["http.route"] == "/api/v1/stores/{storeId}"
    assert span.attributes["dpg.request_id"] == "trace-me-1"
    assert api.store_a not in span.name
    flat = json.dumps({k: str(v) for k, v in span.attributes.items()})
    assert api.secrets["admin"] not in flat
    assert "authorization" not in flat.lower()


def test_callers_trace_is_continued_when_it_sends_a_traceparent(
    traced: tuple[Api, TestClient[Any], InMemorySpanExporter],
) -> None:
    api, client, exporter = traced
    client.get("/api/v1/server/info", headers=api.auth(
        "readonly", traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01"))
    (span,) = _server_spans(exporter)
    assert format(span.context.trace_id, "032x") == TRACE_ID


def test_scrapes_and_health_checks_are_not_traced_when_called(
    traced: tuple[Api, TestClient[Any], InMemorySpanExporter],
) -> None:
    api, client, exporter = traced
    secret = api.key(METRICS_VIEW)
    assert client.get("/metrics", headers={"Authorization": f"token {secret}"}).status_code == 200
    assert client.get("/api/v1/health").status_code == 200
    assert exporter.get_finished_spans() == ()


def test_log_lines_carry_the_spans_ids_when_tracing_is_on(
    traced: tuple[Api, TestClient[Any], InMemorySpanExporter],
) -> None:
    api, client, exporter = traced
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(LogSettings(level="info", format="json"), stream=stream)
    try:
        client.get("/api/v1/server/info", headers=api.auth("readonly"))
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
    (span,) = _server_spans(exporter)
    access = next(
        json.loads(line) for line in stream.getvalue().splitlines()
        if json.loads(line).get("event") == "http_request"
    )
    assert access["trace_id"] == format(span.context.trace_id, "032x")


def test_tracing_is_off_when_no_endpoint_is_configured() -> None:
    assert build_tracing(TelemetrySettings()) is None


def test_malformed_collector_headers_are_refused_without_echoing_them() -> None:
    settings = TelemetrySettings(
        otlp_endpoint="http://127.0.0.1:4318/v1/traces", otlp_headers="api-key-without-value"
    )
    with pytest.raises(ConfigError) as refused:
        build_tracing(settings)
    assert "telemetry.otlp_headers" in refused.value.message
    assert "api-key-without-value" not in refused.value.message
