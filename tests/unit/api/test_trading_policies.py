"""R18 for ``/api/v1/trading``: every trading route under its narrowest permission.

Callers: anonymous; the seeded store key (no trading permission); an unrestricted key not
bound to a user; an unbound ``dpg.trading.view`` key; keys bound to alice (view, trade) and
to bob (trade); a revoked key. Market data needs ``dpg.trading.view``; a user's data needs a
key bound to that user; orders need ``dpg.trading.trade``; another user's order is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from dpgnode.api.policy import Policy, policy_of
from dpgnode.domain.access import TRADING_TRADE, TRADING_VIEW, UNRESTRICTED
from dpgnode.ports.trading import OrderType, Side
from dpgnode.services.trading import OrderRequest
from tests.support.trading import fund
from tests.unit.api.conftest import Api

CALLERS = ("anonymous", "store_a", "admin", "viewer", "alice_view", "alice", "bob", "revoked")
T = "/api/v1/trading"
Request = tuple[str, str, dict[str, Any] | None]  # method, url, body


def _resting(api: Api) -> str:
    request = OrderRequest("alice", "BTC-USD", Side.BUY, OrderType.LIMIT, "0.01", "50000")
    return api.node.trading.place(request).order.id


def _operations(app: Litestar) -> list[tuple[str, str, Any]]:
    """Every (method, path, handler) of the app; WebSocket routes as ``websocket``."""
    operations: list[tuple[str, str, Any]] = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                operations.extend((m, route.path, handler) for m in sorted(handler.http_methods))
        else:
            operations.append((str(route.scope_type), route.path, route.route_handler))
    return operations


MARKET = (401, 403, 200, 200, 200, 200, 200, 401)
OWN_READ = (401, 403, 403, 403, 200, 200, 200, 401)
OWN_ORDER = (401, 403, 403, 403, 200, 200, 404, 401)
TRADE = (401, 403, 403, 403, 403, 201, 201, 401)
CANCEL = (401, 403, 403, 403, 403, 200, 404, 401)
MANAGE = (401, 403, 200, 403, 403, 403, 403, 401)


def _halted(api: Api) -> str:
    api.node.trading.halt_pair("BTC-USD")
    return f"{T}/pairs/BTC-USD/resume"

MATRIX: dict[tuple[str, str], tuple[Callable[[Api], Request], tuple[int, ...]]] = {
    ("GET", f"{T}/pairs"): (lambda a: ("GET", f"{T}/pairs", None), MARKET),
    ("GET", f"{T}/orderbook/{{pair:str}}"): (
        lambda a: ("GET", f"{T}/orderbook/BTC-USD", None), MARKET),
    ("GET", f"{T}/ticker/{{pair:str}}"): (lambda a: ("GET", f"{T}/ticker/BTC-USD", None), MARKET),
    ("GET", f"{T}/candles/{{pair:str}}"): (
        lambda a: ("GET", f"{T}/candles/BTC-USD", None), MARKET),
    ("POST", f"{T}/orders"): (
        lambda a: ("POST", f"{T}/orders", {"pair": "BTC-USD", "side": "sell", "quantity": "0.01",
                                           "price": "90000"}),
        TRADE),
    ("GET", f"{T}/orders"): (lambda a: ("GET", f"{T}/orders", None), OWN_READ),
    ("GET", f"{T}/orders/{{orderId:str}}"): (
        lambda a: ("GET", f"{T}/orders/{_resting(a)}", None), OWN_ORDER),
    ("DELETE", f"{T}/orders/{{orderId:str}}"): (
        lambda a: ("DELETE", f"{T}/orders/{_resting(a)}", None), CANCEL),
    ("GET", f"{T}/trades"): (lambda a: ("GET", f"{T}/trades", None), OWN_READ),
    ("GET", f"{T}/positions"): (lambda a: ("GET", f"{T}/positions", None), OWN_READ),
    # Operating the exchange (dpg.trading.manage: only the unrestricted admin here) and the
    # public tape (market data).
    ("POST", f"{T}/pairs/{{pair:str}}/halt"): (
        lambda a: ("POST", f"{T}/pairs/BTC-USD/halt", None), MANAGE),
    ("POST", f"{T}/pairs/{{pair:str}}/resume"): (
        lambda a: ("POST", _halted(a), None), MANAGE),
    ("GET", f"{T}/tape/{{pair:str}}"): (lambda a: ("GET", f"{T}/tape/BTC-USD", None), MARKET),
}


def _headers(api: Api, caller: str) -> dict[str, str]:
    secrets = {
        "admin": UNRESTRICTED, "viewer": TRADING_VIEW, "alice_view": f"{TRADING_VIEW}:alice",
        "alice": f"{TRADING_TRADE}:alice", "bob": f"{TRADING_TRADE}:bob",
    }
    if caller == "revoked":
        secret = api.key(f"{TRADING_TRADE}:alice")
        api.node.access.revoke_api_key(api.node.access.authenticate(secret).id)
        return {"Authorization": f"token {secret}"}
    if caller in secrets:
        return {"Authorization": f"token {api.key(secrets[caller])}"}
    return api.auth(caller)


@pytest.fixture
def market(api: Api) -> Api:
    api.node.trading.open_pair("BTC-USD")
    for user in ("alice", "bob"):
        fund(api.node, user, "USD", "10000")
        fund(api.node, user, "BTC", "1")
    return api


def test_matrix_covers_every_trading_route(api: Api) -> None:
    routes = {
        (method, path) for method, path, _ in _operations(api.client.app)
        if path.startswith(T) and method in ("GET", "POST", "DELETE")
    }
    assert routes == set(MATRIX)


def test_websocket_route_needs_the_view_permission(api: Api) -> None:
    handlers = [h for m, p, h in _operations(api.client.app) if p == f"{T}/ws"]
    assert [policy_of(h) for h in handlers] == [Policy("permission", TRADING_VIEW)]


@pytest.mark.parametrize("operation", sorted(MATRIX), ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("caller", CALLERS)
def test_trading_route_answers_each_caller_as_its_policy_says(
    market: Api, operation: tuple[str, str], caller: str
) -> None:
    build, expected = MATRIX[operation]
    method, url, body = build(market)

    response = market.client.request(method, url, json=body, headers=_headers(market, caller))

    assert response.status_code == expected[CALLERS.index(caller)], response.text


class TestBoundGrantCarriesThePermission:
    """Review finding: ``dpg.trading.view:alice`` + an unbound ``dpg.trading.trade`` (market
    data) must not trade as alice; the permission exercised has to come from the bound grant."""

    @pytest.fixture
    def mixed(self, market: Api) -> dict[str, str]:
        secret = market.key(f"{TRADING_VIEW}:alice", TRADING_TRADE)
        return {"Authorization": f"token {secret}"}

    def test_placing_is_refused_when_trade_is_not_bound_to_the_user(
        self, market: Api, mixed: dict[str, str]
    ) -> None:
        body = {"pair": "BTC-USD", "side": "sell", "quantity": "0.01", "price": "90000"}

        response = market.client.post(f"{T}/orders", json=body, headers=mixed)

        assert response.status_code == 403, response.text
        assert "dpg.trading.trade:alice" in response.json()["detail"]
        assert market.node.trading.orders(user_id="alice", limit=10) == []

    def test_cancelling_is_refused_when_trade_is_not_bound_to_the_user(
        self, market: Api, mixed: dict[str, str]
    ) -> None:
        order_id = _resting(market)

        response = market.client.delete(f"{T}/orders/{order_id}", headers=mixed)

        assert response.status_code == 403, response.text
        assert market.node.trading.order(order_id, "alice").status == "open"

    def test_reading_own_orders_is_allowed_through_the_bound_view_grant(
        self, market: Api, mixed: dict[str, str]
    ) -> None:
        order_id = _resting(market)

        response = market.client.get(f"{T}/orders", headers=mixed)

        assert response.status_code == 200
        assert [o["id"] for o in response.json()] == [order_id]
