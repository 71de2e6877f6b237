"""``/api/v1/trading``: every route, its answers and its errors, over a real node.

Alice and Bob trade BTC-USD through keys bound to their trading users
(``dpg.trading.trade:alice``); amounts on the wire are decimal strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from dpgnode.domain.access import TRADING_TRADE, TRADING_VIEW, UNRESTRICTED
from dpgnode.domain.ledger import AccountKind
from tests.support.trading import balance, fund
from tests.unit.api.conftest import Api

T = "/api/v1/trading"


@dataclass
class Market:
    api: Api
    alice: dict[str, str]
    bob: dict[str, str]

    def order(self, who: dict[str, str], **body: Any) -> Any:
        return self.api.client.post(f"{T}/orders", json=body, headers=who)


def _auth(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"token {secret}", **extra}


@pytest.fixture
def market(api: Api) -> Market:
    api.node.trading.open_pair("BTC-USD")
    fund(api.node, "alice", "USD", "100000")
    fund(api.node, "bob", "BTC", "2")
    return Market(
        api, _auth(api.key(f"{TRADING_TRADE}:alice")), _auth(api.key(f"{TRADING_TRADE}:bob"))
    )


def _errors(response: Any) -> list[str]:
    return [e["path"] for e in response.json().get("errors", [])]


class TestMarketData:
    def test_pairs_lists_every_configured_pair_with_its_status(self, market: Market) -> None:
        response = market.api.client.get(f"{T}/pairs", headers=market.alice)

        pairs = {p["symbol"]: p for p in response.json()}
        assert response.status_code == 200
        assert len(pairs) >= 50
        assert pairs["BTC-USD"] == {
            "symbol": "BTC-USD", "base": "BTC", "quote": "USD", "tick": "1", "lot": "0.01",
            "minSize": "0.01", "maxSize": "100", "makerFee": "0.001", "takerFee": "0.002",
            "mode": "fifo", "status": "open",
        }
        assert pairs["BTC-EUR"]["status"] == "closed"

    def test_orderbook_aggregates_levels_and_carries_the_sequence(self, market: Market) -> None:
        market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.5", price="61000")
        market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.25", price="61000")
        market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.1", price="59000")

        book = market.api.client.get(f"{T}/orderbook/BTC-USD", headers=market.alice).json()

        assert book == {
            "pair": "BTC-USD", "status": "open", "seq": 3,
            "bids": [["59000", "0.10000000"]], "asks": [["61000", "0.75000000"]],
        }

    @pytest.mark.parametrize("pair", ["DOGE-USD", "BTC-EUR"])
    def test_orderbook_is_not_found_when_the_pair_is_unknown_or_not_open(
        self, market: Market, pair: str
    ) -> None:
        response = market.api.client.get(f"{T}/orderbook/{pair}", headers=market.alice)
        assert response.status_code == 404

    def test_ticker_and_candles_follow_trades(self, market: Market) -> None:
        market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.5", price="61000")
        market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.2", price="61000")
        client = market.api.client

        ticker = client.get(f"{T}/ticker/BTC-USD", headers=market.alice).json()
        candles = client.get(f"{T}/candles/BTC-USD?interval=1h", headers=market.alice).json()

        assert (ticker["lastPrice"], ticker["bestAsk"], ticker["bestBid"]) == (
            "61000", "61000", None
        )
        assert (ticker["volume24h"], ticker["quoteVolume24h"], ticker["trades24h"]) == (
            "0.20000000", "12200.00", 1
        )
        assert [(c["open"], c["close"], c["volume"]) for c in candles] == [
            ("61000", "61000", "0.20000000")
        ]

    def test_candles_refuse_an_unknown_interval(self, market: Market) -> None:
        response = market.api.client.get(
            f"{T}/candles/BTC-USD?interval=2m", headers=market.alice
        )
        assert response.status_code == 400
        assert _errors(response) == ["interval"]


class TestPlaceOrders:
    def test_order_is_created_with_its_trades_when_it_crosses(self, market: Market) -> None:
        market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.5", price="60000")

        response = market.order(
            market.alice, pair="BTC-USD", side="buy", quantity="0.2", price="60000"
        )

        body = response.json()
        assert response.status_code == 201
        assert body["order"]["status"] == "filled"
        assert (body["order"]["filled"], body["order"]["averagePrice"]) == ("0.20000000", "60000")
        assert body["trades"][0]["seq"] > 0
        assert body["trades"][0]["orderId"] == body["order"]["id"]
        assert body["trades"][0] | {"id": "", "createdTime": 0, "orderId": "", "seq": 0} == {
            "id": "", "seq": 0, "pair": "BTC-USD", "price": "60000", "quantity": "0.20000000",
            "value": "12000.00", "takerSide": "buy", "createdTime": 0, "side": "buy",
            "role": "taker", "orderId": "", "fee": "24.00", "feeAsset": "USD",
        }

    def test_client_order_id_returns_the_first_order_with_200_when_sent_again(
        self, market: Market
    ) -> None:
        body = {"pair": "BTC-USD", "side": "buy", "quantity": "0.1", "price": "50000",
                "clientOrderId": "mine-1"}
        first = market.order(market.alice, **body)
        again = market.order(market.alice, **body)
        other = market.order(market.alice, **{**body, "price": "50001"})

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["order"]["id"] == first.json()["order"]["id"]
        assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")

    def test_idempotency_key_replays_the_first_response_when_a_post_is_retried(
        self, market: Market
    ) -> None:
        body = {"pair": "BTC-USD", "side": "buy", "quantity": "0.1", "price": "50000"}
        headers = {**market.alice, "Idempotency-Key": "retry-1"}
        first = market.api.client.post(f"{T}/orders", json=body, headers=headers)
        again = market.api.client.post(f"{T}/orders", json=body, headers=headers)

        assert first.content == again.content
        assert again.headers["idempotent-replayed"] == "true"
        assert len(market.api.node.trading.orders(user_id="alice")) == 1

    @pytest.mark.parametrize(
        ("body", "status", "path"),
        [
            ({"price": "60000.5"}, 422, "price"),
            ({"quantity": "0.001"}, 422, "quantity"),
            ({"quantity": "1000"}, 422, "quantity"),
            ({"pair": "DOGE-USD"}, 422, "pair"),
            ({"price": None}, 422, "price"),
            ({"side": "hold"}, 400, "side"),
            ({"userId": "bob"}, 400, "userId"),
            ({"quantity": 1}, 400, "quantity"),
            ({"type": "market", "postOnly": True}, 422, "postOnly"),
            ({"clientOrderId": "has space"}, 422, "clientOrderId"),
        ],
    )
    def test_bad_order_is_refused_naming_the_field(
        self, market: Market, body: dict[str, Any], status: int, path: str
    ) -> None:
        order = {"pair": "BTC-USD", "side": "buy", "quantity": "0.1", "price": "60000", **body}

        response = market.order(market.alice, **order)

        assert response.status_code == status, response.text
        assert _errors(response) == [path]

    def test_insufficient_funds_is_refused_with_422(self, market: Market) -> None:
        response = market.order(market.alice, pair="BTC-USD", side="buy", quantity="5",
                                price="60000")

        assert (response.status_code, response.json()["code"]) == (422, "insufficient_funds")
        assert market.api.node.trading.orders(user_id="alice") == []

    def test_halted_pair_refuses_orders_with_409_and_unopened_pair_with_404(
        self, market: Market
    ) -> None:
        market.api.node.trading.halt_pair("BTC-USD")

        halted = market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.1",
                              price="60000")
        closed = market.order(market.alice, pair="BTC-EUR", side="buy", quantity="0.1",
                              price="60000")

        assert halted.status_code == 409
        assert closed.status_code == 404

    def test_unbound_or_view_only_key_cannot_place_orders(self, market: Market) -> None:
        admin = market.order(
            market.api.auth("admin"), pair="BTC-USD", side="buy", quantity="0.1", price="1"
        )
        viewer = market.order(
            _auth(market.api.key(f"{TRADING_VIEW}:alice")), pair="BTC-USD", side="buy",
            quantity="0.1", price="1",
        )

        assert (admin.status_code, viewer.status_code) == (403, 403)
        assert "not bound to a trading user" in admin.json()["detail"]


class TestOwnOrdersTradesPositions:
    def test_user_sees_and_cancels_only_their_own_orders(self, market: Market) -> None:
        order = market.order(
            market.alice, pair="BTC-USD", side="buy", quantity="0.1", price="50000"
        ).json()["order"]
        client = market.api.client
        url = f"{T}/orders/{order['id']}"

        assert client.get(url, headers=market.bob).status_code == 404
        assert client.delete(url, headers=market.bob).status_code == 404
        assert client.get(url, headers=market.alice).json()["status"] == "open"
        cancelled = client.delete(url, headers=market.alice)
        again = client.delete(url, headers=market.alice)

        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
        assert again.status_code == 409
        listed = client.get(f"{T}/orders?status=cancelled", headers=market.alice).json()
        assert [o["id"] for o in listed] == [order["id"]]
        assert client.get(f"{T}/orders", headers=market.bob).json() == []

    def test_trades_are_paginated_and_show_the_callers_side(self, market: Market) -> None:
        for _ in range(3):
            market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.1", price="60000")
            market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.1", price="60000")
        client = market.api.client

        page = client.get(f"{T}/trades?limit=2", headers=market.bob).json()
        rest = client.get(f"{T}/trades?before={page[-1]['seq']}", headers=market.bob).json()

        assert [t["side"] for t in page + rest] == ["sell"] * 3
        assert [t["role"] for t in page + rest] == ["maker"] * 3
        assert len({t["id"] for t in page + rest}) == 3
        assert client.get(f"{T}/trades?before=x", headers=market.bob).status_code == 400

    def test_positions_show_quantity_average_price_and_pnl(self, market: Market) -> None:
        market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.2", price="60000")
        market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.1", price="60000")
        market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.1", price="62000")
        market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.2", price="62000")

        positions = market.api.client.get(f"{T}/positions", headers=market.alice).json()

        assert positions == [{
            "pair": "BTC-USD", "base": "BTC", "quote": "USD", "quantity": "0.30000000",
            "averagePrice": "60666.66", "cost": "18200.00", "realizedPnl": "0.00",
            "unrealizedPnl": "400.00", "lastPrice": "62000", "fees": "36.40",
        }]
        assert '"quantity":0' not in market.api.client.get(
            f"{T}/positions", headers=market.alice
        ).text


def test_operator_key_reads_market_data_when_it_is_unrestricted(api: Api) -> None:
    api.node.trading.open_pair("ETH-USD")
    headers = _auth(api.key(UNRESTRICTED))

    assert api.client.get(f"{T}/orderbook/ETH-USD", headers=headers).status_code == 200
    assert api.client.get(f"{T}/positions", headers=headers).status_code == 403


class TestStopOrders:
    def test_stop_is_pending_until_the_last_price_reaches_its_trigger(
        self, market: Market
    ) -> None:
        client = market.api.client
        placed = market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.1",
                              type="stop_loss", triggerPrice="59000", price="58500")
        stop_id = placed.json()["order"]["id"]
        pending = client.get(f"{T}/orders/{stop_id}", headers=market.bob)
        market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.01", price="59000")
        market.order(market.bob, pair="BTC-USD", side="sell", quantity="0.01", price="59000")
        fired = client.get(f"{T}/orders/{stop_id}", headers=market.bob).json()
        listed = client.get(f"{T}/orders?status=open", headers=market.bob).json()

        assert placed.status_code == 201
        assert {k: pending.json()[k] for k in ("type", "status", "triggerPrice", "stopType",
                                               "price", "timeInForce")} == {
            "type": "stop_loss", "status": "pending_trigger", "triggerPrice": "59000",
            "stopType": "limit", "price": "58500", "timeInForce": "GTC",
        }
        assert (fired["status"], fired["filled"]) == ("open", "0.00000000")
        assert [o["id"] for o in listed] == [stop_id]

    def test_stop_market_buy_without_protection_price_is_refused_naming_the_field(
        self, market: Market
    ) -> None:
        response = market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.1",
                                type="take_profit", triggerPrice="59000")

        assert response.status_code == 422, response.text
        assert _errors(response) == ["protectionPrice"]

    def test_cancelling_a_pending_stop_releases_its_hold(self, market: Market) -> None:
        placed = market.order(market.alice, pair="BTC-USD", side="buy", quantity="0.1",
                              type="stop_loss", triggerPrice="61000", protectionPrice="61500")
        stop_id = placed.json()["order"]["id"]

        cancelled = market.api.client.delete(f"{T}/orders/{stop_id}", headers=market.alice)

        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
        assert balance(market.api.node, "alice", "USD", AccountKind.HELD) == 0
