"""Metrics exporters: Prometheus (``prometheus_client``) behind the ``Metrics`` port."""

from dpgnode.adapters.metrics.prometheus import PrometheusMetrics

__all__ = ["PrometheusMetrics"]
