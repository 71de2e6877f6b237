"""``GET /metrics`` through the real app over a real node: access, labels, and every family.

Each scrape is parsed with ``prometheus_client``'s parser. Requests are labelled by route
template, so the number of series does not grow with ids; the dedicated
``dpg.metrics.view`` permission reads ``/metrics`` and nothing else.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
from litestar.routes import HTTPRoute
from prometheus_client.parser import text_string_to_metric_families

from dpgnode.api.context import path_ids
from dpgnode.domain.access import LEDGER_VIEW, METRICS_VIEW, STORE_VIEW
from dpgnode.domain.custody.audit import AuditAction, AuditEvent, AuditResult
from dpgnode.domain.events import OutboxEvent
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.logging import configure_logging
from dpgnode.ports.uow import Tx
from dpgnode.settings import LogSettings
from tests.support.trading import fund, place
from tests.unit.api.conftest import Api

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
HOT = AccountRef(OwnerType.OPERATOR, "op", "BTC", AccountKind.AVAILABLE)
WORLD = AccountRef(OwnerType.OPERATOR, "op", "BTC", AccountKind.WORLD)
STORE_ROUTE = "/api/v1/stores/{storeId}"


def scrape(api: Api, secret: str) -> Series:
    response = api.client.get("/metrics", headers={"Authorization": f"token {secret}"})
    assert response.status_code == 200, response.text
    series: Series = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series


def value(series: Series, name: str, **labels: str) -> float:
    return series[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def scraper(api: Api) -> str:
    """A key with only the metrics permission, as a Prometheus server would hold."""
    return api.key(METRICS_VIEW)


class TestAccess:
    def test_scrape_is_served_as_prometheus_text_when_the_key_has_the_metrics_scope(
        self, api: Api, scraper: str
    ) -> None:
        response = api.client.get("/metrics", headers={"Authorization": f"token {scraper}"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "dpg_http_requests_total" in response.text

    def test_openmetrics_is_served_when_the_scraper_asks_for_it(
        self, api: Api, scraper: str
    ) -> None:
        response = api.client.get("/metrics", headers={
            "Authorization": f"token {scraper}",
            "Accept": "application/openmetrics-text; version=1.0.0",
        })
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        assert response.text.rstrip().endswith("# EOF")

    @pytest.mark.parametrize("permissions", [(STORE_VIEW, LEDGER_VIEW), (LEDGER_VIEW,)])
    def test_scrape_is_refused_when_the_key_lacks_the_metrics_scope(
        self, api: Api, permissions: tuple[str, ...]
    ) -> None:
        secret = api.key(*permissions)
        response = api.client.get("/metrics", headers={"Authorization": f"token {secret}"})
        assert response.status_code == 403
        assert response.json()["details"] == {"permission": METRICS_VIEW}

    def test_scrape_is_refused_when_no_key_is_sent(self, api: Api) -> None:
        assert api.client.get("/metrics").status_code == 401

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/api/v1/stores"), ("GET", "/api/v1/ledger/accounts"),
         ("GET", "/api/v1/ledger/verify"), ("POST", "/api/v1/stores")],
    )
    def test_metrics_key_is_refused_when_it_asks_for_anything_else(
        self, api: Api, scraper: str, method: str, path: str
    ) -> None:
        response = api.client.request(
            method, path, headers={"Authorization": f"token {scraper}"},
            json={"name": "x"} if method == "POST" else None,
        )
        assert response.status_code == 403

    def test_metrics_route_is_left_out_of_the_openapi_document_when_it_is_served(
        self, api: Api
    ) -> None:
        paths = api.client.get("/api/v1/openapi.json").json()["paths"]
        assert not any("metrics" in path for path in paths)


class TestRequestMetrics:
    def test_requests_share_one_series_per_route_template_when_their_ids_differ(
        self, api: Api, scraper: str
    ) -> None:
        admin = api.auth("admin")
        for store in (api.store_a, api.store_b, api.store_a):
            assert api.client.get(f"/api/v1/stores/{store}", headers=admin).status_code == 200
        assert api.client.get("/api/v1/stores/st_missing42", headers=admin).status_code == 404
        series = scrape(api, scraper)
        assert value(series, "dpg_http_requests_total", method="GET", route=STORE_ROUTE,
                     status="200") == 3
        assert value(series, "dpg_http_requests_total", method="GET", route=STORE_ROUTE,
                     status="404") == 1
        assert value(series, "dpg_http_request_duration_seconds_count", method="GET",
                     route=STORE_ROUTE) == 4
        labels = {label for _, pairs in series for _, label in pairs}
        assert not labels & {api.store_a, api.store_b, "st_missing42"}

    def test_route_labels_are_only_route_templates_when_many_paths_were_requested(
        self, api: Api, scraper: str
    ) -> None:
        admin = api.auth("admin")
        for n in range(30):
            api.client.get(f"/api/v1/stores/st_{n}", headers=admin)
            api.client.get(f"/api/v1/ledger/accounts/op:op:BTC:{n}/statement", headers=admin)
            api.client.get(f"/api/v1/nowhere/{n}", headers=admin)  # no route: not counted
        templates = {
            route.path_format for route in api.client.app.routes if isinstance(route, HTTPRoute)
        }
        series = scrape(api, scraper)
        routes = {
            dict(pairs)["route"] for name, pairs in series
            if name.startswith("dpg_http_request")
        }
        assert routes <= templates
        assert len(routes) <= 4  # stores, statement, metrics (and nothing per id)

    def test_request_errors_are_counted_by_status_when_a_key_is_refused(
        self, api: Api, scraper: str
    ) -> None:
        api.client.get("/api/v1/ledger/accounts", headers=api.auth("store_a"))
        api.client.get("/api/v1/ledger/accounts", headers={"Authorization": "token wrong"})
        series = scrape(api, scraper)
        route = "/api/v1/ledger/accounts"
        assert value(series, "dpg_http_requests_total", method="GET", route=route,
                     status="403") == 1
        assert value(series, "dpg_http_requests_total", method="GET", route=route,
                     status="401") == 1


class TestNodeFigures:
    def test_ledger_totals_are_the_accounts_sums_when_entries_are_posted(
        self, api: Api, scraper: str
    ) -> None:
        for n in (1, 2):
            api.node.ledger.post(
                EntryDraft(f"m{n}", (Posting(WORLD, -100 * n), Posting(HOT, 100 * n)))
            )
        series = scrape(api, scraper)
        balance = "dpg_ledger_balance_units"
        assert value(series, balance, asset="BTC", owner_type="operator", kind="available") == 300
        assert value(series, balance, asset="BTC", owner_type="operator", kind="world") == -300
        per_asset: dict[str, float] = {}
        for name, pairs in series:
            if name == balance:
                asset = dict(pairs)["asset"]
                per_asset[asset] = per_asset.get(asset, 0) + series[(name, pairs)]
        assert per_asset == {"BTC": 0}
        assert value(series, "dpg_ledger_entries_total") == api.node.queries.head()[0]

    def test_outbox_queue_depth_falls_to_zero_when_the_relay_delivers(
        self, api: Api, scraper: str
    ) -> None:
        received: list[OutboxEvent] = []
        api.node.subscribe("audit-copy", received.append)
        api.node.ledger.post(EntryDraft("e1", (Posting(WORLD, -5), Posting(HOT, 5))))
        newest, _ = api.node.outbox.progress()
        api.clock.advance(timedelta(seconds=90))
        before = scrape(api, scraper)
        assert value(before, "dpg_outbox_events_total") == newest
        assert value(before, "dpg_outbox_pending_events", sink="audit-copy") == newest
        # The oldest pending event was written by the seed, before the clock moved.
        assert value(before, "dpg_outbox_oldest_pending_age_seconds", sink="audit-copy") >= 90

        api.node.relay.run_once()

        after = scrape(api, scraper)
        assert value(after, "dpg_outbox_pending_events", sink="audit-copy") == 0
        assert value(after, "dpg_outbox_oldest_pending_age_seconds", sink="audit-copy") == 0
        assert value(after, "dpg_outbox_deliveries_total", sink="audit-copy",
                     outcome="ok") == len(received) == newest

    def test_matching_latency_is_observed_per_pair_when_orders_are_placed(
        self, api: Api, scraper: str
    ) -> None:
        node = api.node
        node.trading.open_pair("BTC-USD")
        fund(node, "alice", "USD", "100000")
        fund(node, "bob", "BTC", "2")
        place(node, "bob", "sell", "0.5", "60000")
        place(node, "alice", "buy", "0.2", "60000")
        series = scrape(api, scraper)
        assert value(series, "dpg_matching_duration_seconds_count", pair="BTC-USD") == 2
        assert value(series, "dpg_matching_duration_seconds_bucket", pair="BTC-USD",
                     le="+Inf") == 2

    def test_signing_outcomes_come_from_the_audit_log_when_a_signature_fails(
        self, api: Api, scraper: str
    ) -> None:
        zero = scrape(api, scraper)
        assert {
            outcome: value(zero, "dpg_custody_signing_total", outcome=outcome)
            for outcome in ("requested", "succeeded", "failed")
        } == {"requested": 0, "succeeded": 0, "failed": 0}
        audit = api.node.custody.audit
        events = [AuditEvent("signer", AuditAction.SIGNING_REQUESTED, "pay_1", AuditResult.PENDING),
                  AuditEvent("signer", AuditAction.SIGNING_FAILED, "pay_1", AuditResult.FAILED)]

        def record(tx: Tx) -> None:
            for event in events:
                audit.append(tx, event)

        api.node.writer.run(record)
        series = scrape(api, scraper)
        assert value(series, "dpg_custody_signing_total", outcome="requested") == 1
        assert value(series, "dpg_custody_signing_total", outcome="failed") == 1
        assert value(series, "dpg_custody_signing_total", outcome="succeeded") == 0
        assert all(
            value(series, "dpg_metrics_source_up", family=family) == 1
            for name, pairs in series if name == "dpg_metrics_source_up"
            for family in [dict(pairs)["family"]]
        )


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(LogSettings(level="info", format="json"), stream=stream)
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_access_log_names_the_route_and_the_paths_ids_when_a_store_is_read(
    api: Api, log_stream: io.StringIO
) -> None:
    api.client.get(f"/api/v1/stores/{api.store_a}",
                   headers=api.auth("admin", **{"X-Request-Id": "trace-77"}))
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    access = next(line for line in lines if line.get("event") == "http_request")
    assert access["route"] == STORE_ROUTE
    assert access["store_id"] == api.store_a
    assert access["request_id"] == "trace-77"


def test_path_ids_keep_only_id_shaped_values_when_binding_the_log_context() -> None:
    scope: Any = {"path_params": {
        "storeId": "st_1", "invoiceId": "a b\nforged=1", "requestId": "spoofed",
        "account": "op:op:BTC:available", "txid": "ab" * 32,
    }}
    assert path_ids(scope) == {"store_id": "st_1", "txid": "ab" * 32}
