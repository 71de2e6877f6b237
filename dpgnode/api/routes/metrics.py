"""``GET /metrics``: the node's figures for Prometheus (text format, or OpenMetrics on request).

Access needs the permission ``dpg.metrics.view``: give the scraper a key with that permission
only, which can read nothing else (unrestricted and server-admin keys have it too). The
route is outside ``/api/v1`` and the OpenAPI document, where Prometheus expects it and API
clients do not look. Scrape-time figures read committed state, so the handler runs in a
worker thread.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from dpgnode.api.policy import requires
from dpgnode.domain.access import METRICS_VIEW
from dpgnode.node import Node

METRICS_PATH = "/metrics"


@get(METRICS_PATH, opt=requires(METRICS_VIEW), sync_to_thread=True, include_in_schema=False)
def metrics(request: Request[Any, Any, Any], node: NamedDependency[Node]) -> Response[bytes]:
    body, content_type = node.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)


ROUTES = [metrics]
