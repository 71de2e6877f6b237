"""Stop orders through the trading service, over a real SQLite node.

BTC-USD in the default configuration: tick 1 USD, lot 0.01 BTC, maker fee 0.1 %, taker fee
0.2 %. Stops fire on the last trade price: a sell stop-loss at ``last <= trigger``, a buy
stop-loss at ``last >= trigger`` (take-profit the other way round).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.ledger import AccountKind
from dpgnode.errors import ConflictError, ValidationError
from dpgnode.node import Node
from dpgnode.ports.trading import OrderStatus
from dpgnode.services.trading.fees import limit_buy_hold
from tests.conftest import open_node
from tests.support.trading import balance, check_invariants, fund, place

HELD = AccountKind.HELD
BTC = 100_000_000  # satoshi per BTC


@pytest.fixture
def reopen(sqlite_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Callable[[], Node]]:
    """Opens another node on the test's SQLite file (a restart)."""
    opened: list[Node] = []

    def factory() -> Node:
        opened.append(open_node(sqlite_url, tmp_path, clock, upgrade=False))
        return opened[-1]

    yield factory
    for built in opened:
        built.close()


@pytest.fixture
def market(node: Node) -> Node:
    node.trading.open_pair("BTC-USD")
    for user in ("alice", "dave"):
        fund(node, user, "USD", "100000")
    for user in ("bob", "carol", "dave"):
        fund(node, user, "BTC", "1")
    return node


def _stop(node: Node, user: str, side: str, quantity: str, trigger: str, **extra: object) -> str:
    extra.setdefault("type", "stop_loss")
    placed = place(node, user, side, quantity, trigger_price=trigger, **extra)  # type: ignore[arg-type]
    assert placed.order.status is OrderStatus.PENDING_TRIGGER
    assert placed.trades == ()
    return placed.order.id


def _order_events(node: Node, order_id: str) -> list[str]:
    events = node.trading._store.events_after(0, "trading.order", 1000)
    return [str(e.payload["status"]) for e in events if e.payload["id"] == order_id]


class TestStopPlacement:
    def test_sell_stop_holds_its_quantity_when_placed(self, market: Node) -> None:
        order_id = _stop(market, "bob", "sell", "0.1", "59000")

        order = market.trading.order(order_id)
        assert (order.trigger_price, order.price, order.tif) == ("59000", None, "IOC")
        assert balance(market, "bob", "BTC", HELD) == BTC // 10
        assert market.trading.depth("BTC-USD").asks == []  # a pending stop is not in the book
        check_invariants(market)

    def test_buy_stop_limit_holds_its_value_at_the_limit_plus_the_worst_fee(
        self, market: Node
    ) -> None:
        _stop(market, "alice", "buy", "0.1", "61000", price="61500")

        pair = market.trading.pair("BTC-USD")
        assert balance(market, "alice", "USD", HELD) == limit_buy_hold(pair, 61500, 10)
        assert balance(market, "alice", "USD", HELD) == 615_000 + 1_230 + 1
        check_invariants(market)

    def test_stop_market_buy_is_refused_when_it_has_no_protection_price(
        self, market: Node
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            place(market, "alice", "buy", "0.1", type="stop_loss", trigger_price="61000")

        assert refused.value.field == "protectionPrice"
        assert balance(market, "alice", "USD", HELD) == 0

    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({}, "triggerPrice"),
            ({"trigger_price": "61000.5"}, "triggerPrice"),
            ({"trigger_price": "61000", "price": "1", "protection_price": "2"},
             "protectionPrice"),
            ({"trigger_price": "61000", "post_only": True}, "postOnly"),
        ],
    )
    def test_stop_is_refused_when_its_fields_do_not_fit(
        self, market: Node, extra: dict[str, object], field: str
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            place(market, "bob", "sell", "0.1", type="take_profit", **extra)  # type: ignore[arg-type]
        assert refused.value.field == field

    def test_limit_order_is_refused_when_it_has_a_trigger_price(self, market: Node) -> None:
        with pytest.raises(ValidationError) as refused:
            place(market, "bob", "sell", "0.1", "60000", trigger_price="59000")
        assert refused.value.field == "triggerPrice"


class TestStopTrigger:
    def test_sell_stop_loss_fires_and_settles_when_the_last_price_falls_to_its_trigger(
        self, market: Node
    ) -> None:
        stop_id = _stop(market, "bob", "sell", "0.1", "59000")
        place(market, "alice", "buy", "0.05", "59000")
        place(market, "alice", "buy", "0.1", "58000")

        placed = place(market, "carol", "sell", "0.05", "59000")  # last price 59000: fires

        assert [(t.price, t.quantity, t.sell_order_id) for t in placed.trades] == [
            ("59000", 5_000_000, placed.order.id), ("58000", 10_000_000, stop_id),
        ]
        assert len({t.entry_id for t in placed.trades}) == 2  # one journal entry per trade
        stop = market.trading.order(stop_id)
        assert (stop.status, stop.filled, stop.fee_paid) == (OrderStatus.FILLED, BTC // 10, 1_160)
        assert balance(market, "bob", "USD") == 580_000 - 1_160
        assert balance(market, "bob", "BTC", HELD) == 0
        assert _order_events(market, stop_id) == ["pending_trigger", "filled"]
        check_invariants(market)

    def test_stop_limit_rests_in_the_book_when_it_fires_without_a_match(
        self, market: Node
    ) -> None:
        stop_id = _stop(market, "alice", "buy", "0.1", "60000", price="59500",
                        type="stop_loss")
        place(market, "bob", "sell", "0.01", "60000")

        placed = place(market, "dave", "buy", "0.01", "60000")  # last 60000 >= trigger

        assert [t.buy_order_id for t in placed.trades] == [placed.order.id]
        stop = market.trading.order(stop_id)
        assert (stop.status, stop.filled) == (OrderStatus.OPEN, 0)
        assert market.trading.depth("BTC-USD").bids == [(59500, 10)]
        assert _order_events(market, stop_id) == ["pending_trigger", "open"]
        check_invariants(market)

    def test_stop_market_cancels_what_it_cannot_trade_within_its_protection_price(
        self, market: Node
    ) -> None:
        place(market, "bob", "sell", "0.05", "60000")
        place(market, "bob", "sell", "0.1", "62000")
        stop_id = _stop(market, "alice", "buy", "0.1", "60000", protection_price="61000")

        place(market, "dave", "buy", "0.01", "60000")  # last 60000: alice's stop fires

        stop = market.trading.order(stop_id)
        assert (stop.status, stop.reason, stop.filled) == (
            OrderStatus.CANCELLED, "market", 4_000_000
        )
        assert balance(market, "alice", "USD", HELD) == 0
        assert balance(market, "alice", "BTC") == 4_000_000
        depth = market.trading.depth("BTC-USD")
        assert (depth.bids, depth.asks) == ([], [(62000, 10)])
        check_invariants(market)

    def test_stops_that_fire_together_run_in_the_order_they_were_placed(
        self, market: Node
    ) -> None:
        # carol's stop is placed first but has the lower trigger: placement order decides.
        carol = _stop(market, "carol", "sell", "0.1", "59000")
        bob = _stop(market, "bob", "sell", "0.1", "59500")
        place(market, "alice", "buy", "0.05", "58900")
        place(market, "alice", "buy", "0.1", "58000")

        placed = place(market, "dave", "sell", "0.05", "58900")  # last 58900: both fire

        assert [t.sell_order_id for t in placed.trades] == [placed.order.id, carol]
        assert market.trading.order(carol).status is OrderStatus.FILLED
        bob_order = market.trading.order(bob)
        assert (bob_order.status, bob_order.reason, bob_order.filled) == (
            OrderStatus.CANCELLED, "market", 0
        )
        assert balance(market, "bob", "BTC", HELD) == 0
        check_invariants(market)

    def test_stop_fires_at_once_when_its_condition_holds_when_placed(
        self, market: Node
    ) -> None:
        place(market, "bob", "sell", "0.01", "60000")
        place(market, "dave", "buy", "0.01", "60000")
        place(market, "alice", "buy", "0.1", "59000")

        placed = place(market, "carol", "sell", "0.1", type="stop_loss", trigger_price="60500")

        assert placed.order.status is OrderStatus.FILLED
        assert [t.price for t in placed.trades] == ["59000"]
        check_invariants(market)


class TestStopCancelAndRestart:
    def test_cancelling_a_pending_stop_releases_its_hold(self, market: Node) -> None:
        stop_id = _stop(market, "alice", "buy", "0.1", "61000", price="61500")

        cancelled = market.trading.cancel(stop_id, "alice")

        assert (cancelled.status, cancelled.reason) == (OrderStatus.CANCELLED, "cancelled")
        assert balance(market, "alice", "USD", HELD) == 0
        assert balance(market, "alice", "USD") == 10_000_000
        with pytest.raises(ConflictError):
            market.trading.cancel(stop_id, "alice")
        place(market, "bob", "sell", "0.01", "61000")
        place(market, "dave", "buy", "0.01", "61000")  # a cancelled stop never fires
        assert market.trading.order(stop_id).status is OrderStatus.CANCELLED
        check_invariants(market)

    def test_restart_rebuilds_pending_stops_in_placement_order_and_the_last_price(
        self, market: Node, reopen: Callable[[], Node]
    ) -> None:
        place(market, "bob", "sell", "0.01", "60000")
        place(market, "dave", "buy", "0.01", "60000")  # last price 60000
        carol = _stop(market, "carol", "sell", "0.1", "59000")
        bob = _stop(market, "bob", "sell", "0.1", "59500")

        restarted = reopen()
        # The last price came back: a buy stop at 60000 fires at once on the new node.
        place(restarted, "bob", "sell", "0.01", "60000")
        fired = place(restarted, "alice", "buy", "0.01", type="stop_loss",
                      trigger_price="60000", protection_price="60000")
        assert fired.order.status is OrderStatus.FILLED
        place(restarted, "alice", "buy", "0.05", "58900")
        place(restarted, "alice", "buy", "0.1", "58000")
        placed = place(restarted, "dave", "sell", "0.05", "58900")

        assert [t.sell_order_id for t in placed.trades] == [placed.order.id, carol]
        assert restarted.trading.order(bob).reason == "market"
        check_invariants(restarted)
