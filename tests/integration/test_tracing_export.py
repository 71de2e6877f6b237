"""Traces leave over real OTLP/HTTP to a collector, with the configured headers.

A minimal collector (an HTTP server on 127.0.0.1 that decodes OTLP protobuf with
OpenTelemetry's own message types) receives what a node configured with
``[telemetry] otlp_endpoint`` exports; closing the node flushes the batch.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.api.app import create_app
from dpgnode.domain.access import STORE_VIEW
from dpgnode.node import build_node
from dpgnode.services.access import StoreFields
from dpgnode.settings import load_settings

pytestmark = pytest.mark.integration


@dataclass
class Collector:
    url: str
    requests: list[tuple[dict[str, str], ExportTraceServiceRequest]] = field(default_factory=list)

    def span_names(self) -> list[str]:
        return [
            span.name
            for _, export in self.requests
            for resource in export.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@pytest.fixture
def collector() -> Iterator[Collector]:
    received = Collector("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            export = ExportTraceServiceRequest()
            export.ParseFromString(body)
            received.requests.append(({k.lower(): v for k, v in self.headers.items()}, export))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    yield received
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_spans_reach_the_collector_with_its_headers_when_the_node_closes(
    collector: Collector, tmp_path: Path
) -> None:
    settings = load_settings(tmp_path, overrides={"telemetry": {
        "otlp_endpoint": collector.url, "otlp_headers": "x-collector-key=k123, x-team=ops",
        "service_name": "dpg-test",
    }})
    node = build_node(settings, clock=FixedClock(), upgrade=True)
    try:
        store = node.access.create_store(StoreFields(name="Traced")).id
        secret = node.access.create_api_key("reader", [STORE_VIEW]).secret
        with TestClient(create_app(node)) as client:
            headers = {"Authorization": f"token {secret}"}
            assert client.get(f"/api/v1/stores/{store}", headers=headers).status_code == 200
    finally:
        node.close()  # flushes the batch processor
    assert collector.span_names() == ["GET /api/v1/stores/{storeId}"]
    headers, export = collector.requests[0]
    assert headers["x-collector-key"] == "k123"
    assert headers["x-team"] == "ops"
    resource = {a.key: a.value.string_value for a in export.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "dpg-test"
