"""``/api/v1/trading/ws``: book snapshots then consecutive deltas, trades, the user's orders.

The feed reads committed events back from the outbox, so what a client sees is what was
committed. ``receive_json(timeout=...)`` only bounds a wait for a message that must come;
nothing here asserts on time.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing.websocket_test_session import WebSocketTestSession

from dpgnode.domain.access import STORE_VIEW, TRADING_TRADE, TRADING_VIEW
from tests.support.trading import fund
from tests.unit.api.conftest import Api

WS = "/api/v1/trading/ws"
WAIT = 20.0


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"token {secret}"}


@pytest.fixture
def market(api: Api) -> Api:
    api.node.trading.open_pair("BTC-USD")
    fund(api.node, "alice", "USD", "100000")
    fund(api.node, "bob", "BTC", "2")
    return api


def _next(ws: WebSocketTestSession, kind: str) -> dict[str, Any]:
    """The next message of ``kind`` (other kinds, e.g. tickers, are skipped)."""
    while True:
        message: dict[str, Any] = ws.receive_json(timeout=WAIT)
        if message["type"] == kind:
            return message


def _collect(ws: WebSocketTestSession, wanted: dict[str, int]) -> dict[str, list[Any]]:
    """Messages by type until ``wanted`` counts of each type arrived (in arrival order)."""
    seen: dict[str, list[Any]] = {}
    while any(len(seen.get(kind, [])) < count for kind, count in wanted.items()):
        message = ws.receive_json(timeout=WAIT)
        seen.setdefault(message["type"], []).append(message)
    return seen


def _order(api: Api, secret: str, **body: Any) -> Any:
    response = api.client.post("/api/v1/trading/orders", json=body, headers=_auth(secret))
    assert response.status_code == 201, response.text
    return response.json()


def test_client_sees_snapshot_then_consecutive_deltas_and_its_order_updates(
    market: Api,
) -> None:
    alice = market.key(f"{TRADING_TRADE}:alice")
    bob = market.key(f"{TRADING_TRADE}:bob")
    _order(market, bob, pair="BTC-USD", side="sell", quantity="0.5", price="61000")

    with market.client.websocket_connect(WS, headers=_auth(alice)) as ws:
        ws.send_json({"op": "subscribe", "channels": ["book:BTC-USD", "orders",
                                                     "trades:BTC-USD"]})
        assert _next(ws, "subscribed")["channels"] == ["book:BTC-USD", "orders", "trades:BTC-USD"]
        snapshot = _next(ws, "snapshot")["data"]
        assert (snapshot["seq"], snapshot["asks"], snapshot["bids"]) == (
            1, [["61000", "0.50000000"]], []
        )
        _order(market, alice, pair="BTC-USD", side="buy", quantity="0.1", price="60000")
        _order(market, bob, pair="BTC-USD", side="sell", quantity="0.2", price="62000")
        placed = _order(market, alice, pair="BTC-USD", side="buy", quantity="0.2", price="61000")

        seen = _collect(ws, {"delta": 3, "trade": 1, "order": 2})
        deltas = [m["data"] for m in seen["delta"]]
        trade, orders = seen["trade"][0]["data"], [m["data"] for m in seen["order"]]

    assert [d["seq"] for d in deltas] == [2, 3, 4]
    assert deltas[0]["bids"] == [["60000", "0.10000000"]]
    assert deltas[1]["asks"] == [["62000", "0.20000000"]]
    assert deltas[2]["asks"] == [["61000", "0.30000000"]]
    assert (trade["price"], trade["quantity"], trade["takerSide"]) == (
        "61000", "0.20000000", "buy"
    )
    assert trade["seq"] == placed["trades"][0]["seq"] > 0
    assert all(o["userId"] == "alice" for o in orders)  # bob's order updates are not sent
    assert (orders[1]["id"], orders[1]["status"]) == (placed["order"]["id"], "filled")


def test_deltas_a_snapshot_already_covers_are_not_sent(market: Api) -> None:
    viewer = market.key(TRADING_VIEW)
    bob = market.key(f"{TRADING_TRADE}:bob")
    _order(market, bob, pair="BTC-USD", side="sell", quantity="0.1", price="61000")
    _order(market, bob, pair="BTC-USD", side="sell", quantity="0.1", price="61001")

    with market.client.websocket_connect(WS, headers=_auth(viewer)) as ws:
        ws.send_json({"op": "subscribe", "channels": ["book:BTC-USD"]})
        snapshot = _next(ws, "snapshot")["data"]
        _order(market, bob, pair="BTC-USD", side="sell", quantity="0.1", price="61002")
        delta = _next(ws, "delta")["data"]

    assert delta["seq"] == snapshot["seq"] + 1


def test_bad_commands_get_errors_naming_the_field_and_ping_gets_pong(market: Api) -> None:
    viewer = market.key(TRADING_VIEW)
    with market.client.websocket_connect(WS, headers=_auth(viewer)) as ws:
        ws.send_json({"op": "subscribe", "channels": ["orders"]})
        unbound = _next(ws, "error")
        ws.send_json({"op": "subscribe", "channels": ["book:DOGE-USD"]})
        unknown = _next(ws, "error")
        ws.send_json({"op": "dance"})
        bad_op = _next(ws, "error")
        ws.send_text("not json")
        not_json = _next(ws, "error")
        ws.send_json({"op": "ping"})
        pong = _next(ws, "pong")

    assert "bound to a trading user" in unbound["message"]
    assert (unknown["field"], bad_op["field"], not_json["field"]) == ("channels", "op", "op")
    assert pong == {"type": "pong"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, 4401), ({"Authorization": "Bearer x"}, 4401), ("store", 4403)],
)
def test_handshake_is_refused_when_the_key_is_missing_or_lacks_the_permission(
    market: Api, headers: Any, code: int
) -> None:
    if headers == "store":
        headers = _auth(market.key(STORE_VIEW))
    with pytest.raises(WebSocketDisconnect) as info, market.client.websocket_connect(
        WS, headers=headers
    ) as ws:
        ws.receive_json(timeout=WAIT)
    assert info.value.code == code


def test_stop_owner_gets_an_order_update_when_the_stop_fires(market: Api) -> None:
    alice = market.key(f"{TRADING_TRADE}:alice")
    bob = market.key(f"{TRADING_TRADE}:bob")
    carol = market.key(f"{TRADING_TRADE}:carol")
    fund(market.node, "carol", "USD", "1000")
    _order(market, bob, pair="BTC-USD", side="sell", quantity="0.1", price="60000")

    with market.client.websocket_connect(WS, headers=_auth(alice)) as ws:
        ws.send_json({"op": "subscribe", "channels": ["orders"]})
        _next(ws, "subscribed")
        stop = _order(market, alice, pair="BTC-USD", side="buy", quantity="0.09",
                      type="stop_loss", triggerPrice="60000", protectionPrice="60500")
        pending = _next(ws, "order")["data"]
        _order(market, carol, pair="BTC-USD", side="buy", quantity="0.01", price="60000")
        fired = _next(ws, "order")["data"]

    assert (pending["id"], pending["status"]) == (stop["order"]["id"], "pending_trigger")
    assert (fired["id"], fired["status"], fired["filled"], fired["triggerPrice"]) == (
        stop["order"]["id"], "filled", "0.09000000", "60000"
    )
