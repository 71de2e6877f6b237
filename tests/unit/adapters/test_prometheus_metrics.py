"""The Prometheus exporter: families, scrape-time sources, failures and content negotiation.

Expositions are parsed with ``prometheus_client``'s own parser, so a malformed page fails
here as it would fail in Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dpgnode.adapters.metrics import PrometheusMetrics
from dpgnode.ports.metrics import LEDGER_BALANCE, LEDGER_ENTRIES, Family, Sample

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: PrometheusMetrics) -> Series:
    body, content_type = metrics.render(None)
    assert content_type.startswith("text/plain")
    series: Series = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series


def value(series: Series, name: str, **labels: str) -> float:
    return series[(name, tuple(sorted(labels.items())))]


class TestEventMetrics:
    def test_http_request_is_counted_by_route_template_when_recorded(self) -> None:
        metrics = PrometheusMetrics()
        for _ in range(3):
            metrics.record_http_request("GET", "/api/v1/stores/{storeId}", 200, 0.002)
        metrics.record_http_request("GET", "/api/v1/stores/{storeId}", 404, 0.001)
        series = scrape(metrics)
        route = "/api/v1/stores/{storeId}"
        assert value(series, "dpg_http_requests_total", method="GET", route=route,
                     status="200") == 3
        assert value(series, "dpg_http_requests_total", method="GET", route=route,
                     status="404") == 1
        assert value(series, "dpg_http_request_duration_seconds_count", method="GET",
                     route=route) == 4
        assert value(series, "dpg_http_request_duration_seconds_sum", method="GET",
                     route=route) == pytest.approx(0.007)

    def test_matching_time_is_observed_per_pair_when_a_block_is_timed(self) -> None:
        metrics = PrometheusMetrics()
        with metrics.time_matching("BTC-USD"):
            pass
        with metrics.time_matching("BTC-USD"):
            pass
        series = scrape(metrics)
        assert value(series, "dpg_matching_duration_seconds_count", pair="BTC-USD") == 2
        # The smallest bucket is 10 µs: an engine call is that fast.
        assert ("dpg_matching_duration_seconds_bucket",
                (("le", "1e-05"), ("pair", "BTC-USD"))) in series

    def test_chain_lag_is_node_height_minus_ours_when_a_watcher_reports(self) -> None:
        metrics = PrometheusMetrics()
        metrics.record_chain_height("bitcoin", 850_010, 850_004)
        metrics.record_chain_height("ethereum", 100, 100)
        series = scrape(metrics)
        assert value(series, "dpg_chain_node_height", chain="bitcoin") == 850_010
        assert value(series, "dpg_chain_processed_height", chain="bitcoin") == 850_004
        assert value(series, "dpg_chain_lag_blocks", chain="bitcoin") == 6
        assert value(series, "dpg_chain_lag_blocks", chain="ethereum") == 0

    def test_signer_outbox_and_webhook_outcomes_are_counted_when_recorded(self) -> None:
        metrics = PrometheusMetrics()
        metrics.record_signer_call("sign_ecdsa", "ok")
        metrics.record_signer_call("sign_ecdsa", "unavailable")
        metrics.record_outbox_delivery("webhooks", "failed")
        metrics.record_webhook_delivery("delivered")
        series = scrape(metrics)
        assert value(series, "dpg_signer_calls_total", operation="sign_ecdsa",
                     outcome="unavailable") == 1
        assert value(series, "dpg_outbox_deliveries_total", sink="webhooks",
                     outcome="failed") == 1
        assert value(series, "dpg_webhook_deliveries_total", outcome="delivered") == 1

    def test_label_values_are_cut_when_a_caller_passes_a_huge_one(self) -> None:
        metrics = PrometheusMetrics()
        metrics.record_chain_height("x" * 10_000, 1, 1)
        assert all(
            len(label) <= 80 for (_, labels) in scrape(metrics) for _, label in labels
        )


class TestScrapeSources:
    def test_source_is_called_at_each_scrape_when_registered(self) -> None:
        metrics = PrometheusMetrics()
        entries = iter([5, 9])
        metrics.add_source(LEDGER_ENTRIES, lambda: [((), next(entries))])
        assert value(scrape(metrics), "dpg_ledger_entries_total") == 5
        assert value(scrape(metrics), "dpg_ledger_entries_total") == 9

    def test_gauge_family_keeps_big_integers_as_close_floats_when_summed_in_wei(self) -> None:
        metrics = PrometheusMetrics()
        wei = 10**30 + 1
        metrics.add_source(LEDGER_BALANCE, lambda: [(("ETH", "user", "available"), wei)])
        got = value(scrape(metrics), "dpg_ledger_balance_units", asset="ETH",
                    owner_type="user", kind="available")
        assert got == pytest.approx(float(wei), rel=1e-15)

    def test_failing_source_is_reported_down_when_the_others_still_answer(self) -> None:
        metrics = PrometheusMetrics()

        def broken() -> Iterable[Sample]:
            raise RuntimeError("database is locked")

        metrics.add_source(Family("dpg_broken", "never answers"), broken)
        metrics.add_source(LEDGER_ENTRIES, lambda: [((), 3)])
        series = scrape(metrics)
        assert value(series, "dpg_metrics_source_up", family="dpg_broken") == 0
        assert value(series, "dpg_metrics_source_up", family="dpg_ledger_entries") == 1
        assert value(series, "dpg_ledger_entries_total") == 3
        assert not any(name == "dpg_broken" for name, _ in series)

    def test_source_with_wrong_label_count_is_reported_down_when_scraped(self) -> None:
        metrics = PrometheusMetrics()
        metrics.add_source(LEDGER_BALANCE, lambda: [(("BTC",), 1)])
        series = scrape(metrics)
        assert value(series, "dpg_metrics_source_up", family="dpg_ledger_balance_units") == 0

    def test_later_source_replaces_the_earlier_when_a_family_is_registered_twice(self) -> None:
        metrics = PrometheusMetrics()
        metrics.add_source(LEDGER_ENTRIES, lambda: [((), 1)])
        metrics.add_source(LEDGER_ENTRIES, lambda: [((), 2)])
        assert value(scrape(metrics), "dpg_ledger_entries_total") == 2


class TestExposition:
    def test_openmetrics_is_served_when_the_scraper_asks_for_it(self) -> None:
        metrics = PrometheusMetrics()
        metrics.record_webhook_delivery("failed")
        body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
        assert content_type.startswith("application/openmetrics-text")
        assert body.rstrip().endswith(b"# EOF")

    def test_two_exporters_keep_their_figures_apart_when_built_in_one_process(self) -> None:
        first, second = PrometheusMetrics(), PrometheusMetrics()
        first.record_webhook_delivery("delivered")
        assert value(scrape(first), "dpg_webhook_deliveries_total", outcome="delivered") == 1
        assert ("dpg_webhook_deliveries_total", (("outcome", "delivered"),)) not in scrape(second)
