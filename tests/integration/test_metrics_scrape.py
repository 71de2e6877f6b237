"""``/metrics`` over SQLite and PostgreSQL: ledger totals exact at any size, scraped live.

The scrape-time query sums balances in Python from each database's exact column (TEXT on
SQLite, NUMERIC(78,0) on PostgreSQL); amounts beyond 2**63 (wei) must come out exact from
the query and as the nearest float from the exposition, which is all Prometheus can hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from dpgnode.adapters.storage.metrics import SqlObservedState
from dpgnode.api.app import create_app
from dpgnode.domain.access import METRICS_VIEW
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.node import Node
from dpgnode.ports.metrics import BalanceTotal

WEI = 10**30 + 7  # past 2**63 and past a float's 53-bit mantissa
WORLD = AccountRef(OwnerType.OPERATOR, "op", "ETH", AccountKind.WORLD)


def _user(name: str) -> AccountRef:
    return AccountRef(OwnerType.USER, name, "ETH", AccountKind.AVAILABLE)


@pytest.fixture
def client(any_node: Node) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(any_node)) as test_client:
        yield test_client


def test_ledger_totals_are_exact_when_balances_exceed_64_bits(any_node: Node) -> None:
    users = [f"u{n}" for n in range(5)]
    any_node.ledger.post(EntryDraft("big", (
        Posting(WORLD, -WEI * len(users)), *(Posting(_user(u), WEI) for u in users),
    )))
    totals = {(t.asset, t.owner_type, t.kind): t for t in SqlObservedState(any_node.engine)
              .ledger_totals()}
    assert totals[("ETH", "user", "available")] == BalanceTotal(
        "ETH", "user", "available", WEI * 5)
    assert totals[("ETH", "operator", "world")].units == -WEI * 5
    assert SqlObservedState(any_node.engine).ledger_entries() == 1


def test_scrape_reports_node_figures_when_the_app_serves_a_live_node(
    any_node: Node, client: TestClient[Any]
) -> None:
    any_node.ledger.post(EntryDraft("e1", (Posting(WORLD, -WEI), Posting(_user("a"), WEI))))
    secret = any_node.access.create_api_key("prometheus", [METRICS_VIEW]).secret
    client.get("/api/v1/health")
    response = client.get("/metrics", headers={"Authorization": f"token {secret}"})
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text) for s in family.samples
    }
    user_total = samples[("dpg_ledger_balance_units",
                          (("asset", "ETH"), ("kind", "available"), ("owner_type", "user")))]
    assert user_total == float(WEI)
    assert samples[("dpg_ledger_entries_total", ())] == 1
    assert samples[("dpg_http_requests_total", (("method", "GET"),
                                                ("route", "/api/v1/health"),
                                                ("status", "200")))] == 1
    assert all(v == 1 for (name, _), v in samples.items() if name == "dpg_metrics_source_up")
