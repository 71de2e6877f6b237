"""The ``Metrics`` port over ``prometheus_client``, one registry per node.

A registry per :class:`PrometheusMetrics` (not the library's global one) keeps two nodes in
one process apart (tests build many) and keeps figures of other libraries out of
``/metrics``. Scrape-time families (:class:`~dpgnode.ports.metrics.Family`) are served by one
collector that calls each registered source when Prometheus scrapes; a source that fails is
skipped and reported through ``dpg_metrics_source_up``, so one broken query cannot blank the
whole page.

Each API worker process has its own registry: with ``api.workers > 1`` a scrape sees the
counters of the worker that answered (README, "Metrics").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Literal

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from dpgnode.ports.metrics import Family, Source

log = structlog.get_logger(__name__)

MATCHING_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25,
)
"""Seconds: one engine call takes microseconds; the tail shows a book rebuilt or swept."""
_MAX_LABEL = 80


def _label(value: str) -> str:
    # A label value longer than any pair, chain or sink name is a bug upstream; cut it so it
    # cannot bloat every scrape.
    return value[:_MAX_LABEL]


class _Sources(Collector):
    """Calls every registered source at scrape time (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, tuple[Family, Source]] = {}

    def add(self, family: Family, source: Source) -> None:
        with self._lock:
            self._sources[family.name] = (family, source)

    def describe(self) -> list[Metric]:
        return []  # names are checked when sources register, not by calling them here

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            sources = list(self._sources.values())
        up = GaugeMetricFamily(
            "dpg_metrics_source_up",
            "Whether the scrape-time source of a family answered (1) or failed (0)",
            labels=["family"],
        )
        for family, source in sources:
            try:
                metric = _family_metric(family, source)
            except Exception as exc:  # one failing query must not blank the page
                log.warning("metrics_source_failed", family=family.name,
                            error=f"{type(exc).__name__}: {exc}"[:300])
                up.add_metric([family.name], 0)
                continue
            up.add_metric([family.name], 1)
            yield metric
        yield up


def _family_metric(family: Family, source: Source) -> Metric:
    labels = list(family.labels)
    metric: GaugeMetricFamily | CounterMetricFamily = (
        CounterMetricFamily(family.name, family.help, labels=labels)
        if family.kind == "counter"
        else GaugeMetricFamily(family.name, family.help, labels=labels)
    )
    for values, value in source():
        if len(values) != len(labels):
            raise ValueError(f"{family.name}: {len(values)} label values for {len(labels)} labels")
        metric.add_metric([_label(v) for v in values], float(value))
    return metric


class PrometheusMetrics:
    """``MetricsExporter`` over a private ``CollectorRegistry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self._requests = Counter(
            "dpg_http_requests", "HTTP requests by method, route template and status",
            ["method", "route", "status"], registry=r,
        )
        self._duration = Histogram(
            "dpg_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template",
            ["method", "route"], registry=r,
        )
        self._matching = Histogram(
            "dpg_matching_duration_seconds",
            "Time the matching engine takes for one order command on a pair",
            ["pair"], buckets=MATCHING_BUCKETS, registry=r,
        )
        self._signer = Counter(
            "dpg_signer_calls", "Calls into the signer (HSM) by operation and outcome",
            ["operation", "outcome"], registry=r,
        )
        self._node_height = Gauge(
            "dpg_chain_node_height", "Best block height the chain's node reports", ["chain"],
            registry=r,
        )
        self._our_height = Gauge(
            "dpg_chain_processed_height", "Highest block the node's watcher has processed",
            ["chain"], registry=r,
        )
        self._lag = Gauge(
            "dpg_chain_lag_blocks", "Blocks the watcher is behind the chain's node", ["chain"],
            registry=r,
        )
        self._outbox = Counter(
            "dpg_outbox_deliveries", "Attempts to hand outbox events to a sink, by outcome",
            ["sink", "outcome"], registry=r,
        )
        self._webhooks = Counter(
            "dpg_webhook_deliveries", "Webhook delivery attempts by outcome", ["outcome"],
            registry=r,
        )
        self._sources = _Sources()
        r.register(self._sources)

    # -- Metrics ---------------------------------------------------------------------------

    def time_matching(self, pair: str) -> AbstractContextManager[object]:
        return self._matching.labels(_label(pair)).time()

    def record_signer_call(self, operation: str, outcome: str) -> None:
        self._signer.labels(_label(operation), _label(outcome)).inc()

    def record_chain_height(self, chain: str, node_height: int, our_height: int) -> None:
        name = _label(chain)
        self._node_height.labels(name).set(node_height)
        self._our_height.labels(name).set(our_height)
        self._lag.labels(name).set(max(0, node_height - our_height))

    def record_outbox_delivery(self, sink: str, outcome: Literal["ok", "failed"]) -> None:
        self._outbox.labels(_label(sink), outcome).inc()

    def record_webhook_delivery(self, outcome: str) -> None:
        self._webhooks.labels(_label(outcome)).inc()

    def add_source(self, family: Family, source: Source) -> None:
        self._sources.add(family, source)

    # -- MetricsExporter -------------------------------------------------------------------

    def record_http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method, route = _label(method), _label(route)
        self._requests.labels(method, route, str(status)).inc()
        self._duration.labels(method, route).observe(seconds)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
