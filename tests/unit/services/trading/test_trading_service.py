"""The trading service over a real SQLite node: holds, settlement, fees, cancels, expiry, books.

BTC-USD in the default configuration: tick 1 USD, lot 0.01 BTC, maker fee 0.1 %, taker fee
0.2 %, fees in USD rounded up to the cent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.exchange import TimeInForce
from dpgnode.domain.ledger import AccountKind, AccountRef, OwnerType
from dpgnode.errors import (
    ConfigError,
    ConflictError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    NotFoundError,
    ValidationError,
)
from dpgnode.node import Node, build_node
from dpgnode.ports.trading import OrderStatus
from dpgnode.settings import load_settings
from tests.conftest import open_node
from tests.support.trading import balance, check_invariants, fund, place

HELD = AccountKind.HELD
FEES = AccountRef(OwnerType.OPERATOR, "op", "USD", AccountKind.FEES)


@pytest.fixture
def reopen(sqlite_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Callable[[], Node]]:
    """Opens more nodes on the test's SQLite file (a restart, or a second process)."""
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
    fund(node, "alice", "USD", "100000")
    fund(node, "bob", "BTC", "2")
    return node


def _fees(node: Node) -> int:
    account = node.queries.account(FEES)
    return 0 if account is None else account.balance


class TestPlaceAndSettle:
    def test_trade_settles_both_sides_and_both_fees_when_a_buy_meets_a_resting_sell(
        self, market: Node
    ) -> None:
        sell = place(market, "bob", "sell", "0.5", "60000")
        buy = place(market, "alice", "buy", "0.2", "60000")

        assert [t.quantity for t in buy.trades] == [20_000_000]
        trade = buy.trades[0]
        assert (trade.value, trade.buyer_fee, trade.seller_fee) == (1_200_000, 2_400, 1_200)
        assert balance(market, "alice", "BTC") == 20_000_000
        assert balance(market, "alice", "USD") == 10_000_000 - 1_200_000 - 2_400
        assert balance(market, "bob", "USD") == 1_200_000 - 1_200
        assert balance(market, "bob", "BTC", HELD) == 30_000_000
        assert _fees(market) == 3_600
        assert buy.order.status is OrderStatus.FILLED
        assert market.trading.order(sell.order.id).filled == 20_000_000
        check_invariants(market)

    def test_price_improvement_is_released_when_a_buy_fills_below_its_limit(
        self, market: Node
    ) -> None:
        place(market, "bob", "sell", "0.1", "59000")
        buy = place(market, "alice", "buy", "0.1", "60000")

        assert buy.order.status is OrderStatus.FILLED
        assert balance(market, "alice", "USD", HELD) == 0
        assert balance(market, "alice", "USD") == 10_000_000 - 590_000 - 1_180
        check_invariants(market)

    def test_buy_hold_covers_value_and_fee_when_the_order_rests(self, market: Node) -> None:
        placed = place(market, "alice", "buy", "1", "50000")

        # 50,000.00 USD + the larger of the fees (0.2 % = 100.00) + 1 cent of rounding slack
        assert balance(market, "alice", "USD", HELD) == 5_000_000 + 10_000 + 1
        assert placed.order.status is OrderStatus.OPEN
        check_invariants(market)

    def test_sell_hold_is_the_quantity_when_a_sell_rests(self, market: Node) -> None:
        place(market, "bob", "sell", "0.75", "70000")

        assert balance(market, "bob", "BTC", HELD) == 75_000_000
        assert balance(market, "bob", "BTC") == 125_000_000

    def test_maker_pays_maker_fee_when_its_resting_buy_is_hit(self, market: Node) -> None:
        place(market, "alice", "buy", "0.1", "60000")
        sell = place(market, "bob", "sell", "0.1", "60000")

        trade = sell.trades[0]
        assert (trade.buyer_fee, trade.seller_fee) == (600, 1_200)
        assert balance(market, "alice", "USD", HELD) == 0
        assert balance(market, "alice", "USD") == 10_000_000 - 600_000 - 600
        check_invariants(market)

    def test_taker_sweeps_levels_in_price_time_order_when_it_crosses_several(
        self, market: Node
    ) -> None:
        fund(market, "carol", "BTC", "1")
        first = place(market, "bob", "sell", "0.1", "60000")
        second = place(market, "carol", "sell", "0.1", "60000")
        place(market, "bob", "sell", "0.1", "61000")
        buy = place(market, "alice", "buy", "0.25", "61000")

        assert [(t.sell_order_id, t.price, t.quantity) for t in buy.trades] == [
            (first.order.id, "60000", 10_000_000),
            (second.order.id, "60000", 10_000_000),
            (buy.trades[2].sell_order_id, "61000", 5_000_000),
        ]
        check_invariants(market)


class TestRefusals:
    def test_insufficient_balance_is_refused_before_the_book_sees_the_order(
        self, market: Node
    ) -> None:
        before = market.trading.depth("BTC-USD")

        with pytest.raises(InsufficientFundsError):
            place(market, "alice", "buy", "2", "60000")

        after = market.trading.depth("BTC-USD")
        assert (after.seq, after.bids) == (before.seq, before.bids)
        assert market.trading.orders(user_id="alice") == []
        check_invariants(market)

    @pytest.mark.parametrize(
        ("quantity", "price", "field"),
        [("0.001", "60000", "quantity"), ("0.5", "60000.5", "price"), ("1000", "1", "quantity"),
         ("abc", "1", "quantity"), ("0.5", None, "price"), ("0.5", "0", "price")],
    )
    def test_bad_order_is_refused_naming_the_field_when_off_grid_or_out_of_range(
        self, market: Node, quantity: str, price: str | None, field: str
    ) -> None:
        with pytest.raises(ValidationError) as info:
            place(market, "alice", "buy", quantity, price)
        assert info.value.field == field

    def test_unknown_pair_is_refused_naming_the_field(self, market: Node) -> None:
        with pytest.raises(ValidationError) as info:
            place(market, "alice", "buy", "1", "1", pair="DOGE-USD")
        assert info.value.field == "pair"

    def test_order_is_refused_when_the_pair_was_never_opened(self, market: Node) -> None:
        with pytest.raises(NotFoundError):
            place(market, "alice", "buy", "0.01", "60000", pair="BTC-EUR")

    def test_order_is_refused_and_cancel_still_works_when_the_pair_is_halted(
        self, market: Node
    ) -> None:
        resting = place(market, "bob", "sell", "0.1", "60000")
        market.trading.halt_pair("BTC-USD")

        with pytest.raises(ConflictError, match="halted"):
            place(market, "alice", "buy", "0.1", "60000")
        cancelled = market.trading.cancel(resting.order.id, "bob")

        assert cancelled.status is OrderStatus.CANCELLED
        market.trading.resume_pair("BTC-USD")
        assert place(market, "bob", "sell", "0.1", "60000").order.status is OrderStatus.OPEN
        check_invariants(market)

    def test_post_only_is_refused_without_trace_when_it_would_trade(self, market: Node) -> None:
        place(market, "bob", "sell", "0.1", "60000")

        with pytest.raises(ValidationError) as info:
            place(market, "alice", "buy", "0.1", "60000", post_only=True)

        assert info.value.field == "postOnly"
        assert balance(market, "alice", "USD", HELD) == 0
        check_invariants(market)


class TestTimeInForceAndMarketOrders:
    def test_ioc_remainder_is_cancelled_and_released_when_liquidity_runs_out(
        self, market: Node
    ) -> None:
        place(market, "bob", "sell", "0.1", "60000")
        buy = place(market, "alice", "buy", "0.3", "60000", time_in_force=TimeInForce.IOC)

        assert (buy.order.status, buy.order.reason, buy.order.filled) == (
            OrderStatus.CANCELLED, "ioc", 10_000_000
        )
        assert balance(market, "alice", "USD", HELD) == 0
        check_invariants(market)

    def test_fok_trades_nothing_when_it_cannot_fill_entirely(self, market: Node) -> None:
        place(market, "bob", "sell", "0.1", "60000")
        buy = place(market, "alice", "buy", "0.3", "60000", time_in_force=TimeInForce.FOK)

        assert (buy.order.status, buy.order.reason, buy.trades) == (
            OrderStatus.CANCELLED, "fok", ()
        )
        assert balance(market, "alice", "USD") == 10_000_000
        check_invariants(market)

    def test_market_buy_holds_the_walked_cost_and_fills_at_book_prices(
        self, market: Node
    ) -> None:
        place(market, "bob", "sell", "0.1", "60000")
        place(market, "bob", "sell", "0.1", "62000")
        buy = place(market, "alice", "buy", "0.15", type="market")

        assert [(t.price, t.quantity) for t in buy.trades] == [
            ("60000", 10_000_000), ("62000", 5_000_000)
        ]
        assert buy.order.status is OrderStatus.FILLED
        spent = 600_000 + 310_000
        assert balance(market, "alice", "USD") == 10_000_000 - spent - 1_820
        check_invariants(market)

    def test_market_buy_walks_deep_books_when_it_needs_many_levels(self, market: Node) -> None:
        fund(market, "bob", "BTC", "1")
        for level in range(40):
            place(market, "bob", "sell", "0.01", str(60000 + level))
        buy = place(market, "alice", "buy", "0.35", type="market")

        assert (buy.order.status, len(buy.trades)) == (OrderStatus.FILLED, 35)
        assert buy.trades[-1].price == "60034"
        check_invariants(market)

    def test_market_sell_stops_at_its_protection_price(self, market: Node) -> None:
        place(market, "alice", "buy", "0.1", "60000")
        place(market, "alice", "buy", "0.1", "55000")
        sell = place(market, "bob", "sell", "0.2", "58000", type="market")

        assert [t.price for t in sell.trades] == ["60000"]
        assert (sell.order.status, sell.order.reason) == (OrderStatus.CANCELLED, "market")
        assert balance(market, "bob", "BTC", HELD) == 0
        check_invariants(market)

    def test_self_trade_is_prevented_when_a_user_meets_their_own_order(
        self, market: Node
    ) -> None:
        fund(market, "bob", "USD", "10000")
        place(market, "bob", "sell", "0.1", "60000")
        buy = place(market, "bob", "buy", "0.1", "60000")

        assert (buy.order.reason, buy.trades) == ("self_trade", ())
        check_invariants(market)


class TestCancelExpireAndReplay:
    def test_cancel_releases_the_hold_when_an_order_is_partly_filled(self, market: Node) -> None:
        buy = place(market, "alice", "buy", "0.5", "60000")
        place(market, "bob", "sell", "0.2", "60000")

        cancelled = market.trading.cancel(buy.order.id, "alice")

        assert (cancelled.status, cancelled.filled) == (OrderStatus.CANCELLED, 20_000_000)
        assert balance(market, "alice", "USD", HELD) == 0
        assert balance(market, "alice", "USD") == 10_000_000 - 1_200_000 - 1_200
        check_invariants(market)

    def test_cancel_is_refused_when_the_order_is_another_users_or_closed(
        self, market: Node
    ) -> None:
        sell = place(market, "bob", "sell", "0.1", "60000")

        with pytest.raises(NotFoundError):
            market.trading.cancel(sell.order.id, "alice")
        market.trading.cancel(sell.order.id, "bob")
        with pytest.raises(ConflictError):
            market.trading.cancel(sell.order.id, "bob")

    def test_orders_expire_and_release_their_holds_when_their_time_passes(
        self, market: Node, clock: FixedClock
    ) -> None:
        place(market, "alice", "buy", "0.1", "50000", expires_at=clock.now() + timedelta(minutes=5))
        keeps = place(market, "alice", "buy", "0.1", "49000")

        clock.advance(timedelta(minutes=4))
        assert market.trading.expire_due() == 0
        clock.advance(timedelta(minutes=1))
        assert market.trading.expire_due() == 1

        expired = market.trading.orders(user_id="alice", status=OrderStatus.EXPIRED)
        assert [o.reason for o in expired] == ["expired"]
        assert market.trading.order(keeps.order.id).status is OrderStatus.OPEN
        check_invariants(market)

    def test_operator_cancel_all_empties_the_book_and_releases_every_hold(
        self, market: Node
    ) -> None:
        place(market, "alice", "buy", "0.1", "50000")
        place(market, "bob", "sell", "0.3", "70000")

        cancelled = market.trading.cancel_all("BTC-USD")

        assert {(o.status, o.reason) for o in cancelled} == {(OrderStatus.CANCELLED, "operator")}
        depth = market.trading.depth("BTC-USD")
        assert (depth.bids, depth.asks) == ([], [])
        check_invariants(market)

    def test_client_order_id_returns_the_first_order_when_placed_again(
        self, market: Node
    ) -> None:
        first = place(market, "alice", "buy", "0.1", "50000", client_order_id="c-1")
        again = place(market, "alice", "buy", "0.1", "50000", client_order_id="c-1")

        assert (again.created, again.order.id) == (False, first.order.id)
        with pytest.raises(IdempotencyKeyReusedError):
            place(market, "alice", "buy", "0.2", "50000", client_order_id="c-1")
        assert len(market.trading.orders(user_id="alice")) == 1
        check_invariants(market)


class TestBooksAcrossProcesses:
    def test_book_is_rebuilt_in_time_priority_when_the_node_restarts(
        self, market: Node, reopen: Callable[[], Node]
    ) -> None:
        first = place(market, "bob", "sell", "0.1", "60000")
        second = place(market, "bob", "sell", "0.1", "60000")
        market.close()
        restarted = reopen()

        buy = place(restarted, "alice", "buy", "0.1", "60000")

        assert buy.trades[0].sell_order_id == first.order.id
        assert restarted.trading.order(second.order.id).status is OrderStatus.OPEN
        check_invariants(restarted)

    def test_stale_book_is_rebuilt_when_another_process_changed_it(
        self, market: Node, reopen: Callable[[], Node]
    ) -> None:
        resting = place(market, "bob", "sell", "0.1", "60000")
        other = reopen()
        other.trading.cancel_all("BTC-USD")

        buy = place(market, "alice", "buy", "0.1", "60000")

        assert buy.trades == ()
        assert market.trading.order(resting.order.id).status is OrderStatus.CANCELLED
        check_invariants(market)
        check_invariants(other)


class TestConfiguration:
    def test_changed_tick_is_refused_naming_it_when_orders_rest_on_the_old_one(
        self, market: Node, tmp_path: Path, clock: FixedClock, sqlite_url: str
    ) -> None:
        place(market, "bob", "sell", "0.1", "60001")
        market.close()
        pairs = tmp_path / "pairs.toml"
        pairs.write_text('[[pair]]\nbase = "BTC"\nquote = "USD"\ntick = "10"\nlot = "0.01"\n')
        settings = load_settings(
            tmp_path, overrides={"database": {"url": sqlite_url},
                                 "trading": {"pairs_file": str(pairs)}},
        )
        changed = build_node(settings, clock=clock)
        try:
            assert [p.symbol for p, _ in changed.trading.pairs()] == ["BTC-USD"]
            with pytest.raises(ConfigError) as info:
                place(changed, "alice", "buy", "0.1", "60000")
            assert info.value.details["field"] == "tick"
        finally:
            changed.close()


class TestMarketData:
    def test_ticker_candles_and_positions_follow_the_trades(
        self, market: Node, clock: FixedClock
    ) -> None:
        place(market, "bob", "sell", "0.2", "60000")
        place(market, "alice", "buy", "0.1", "60000")
        clock.advance(timedelta(minutes=1))
        place(market, "bob", "sell", "0.1", "64000")
        place(market, "alice", "buy", "0.2", "64000")
        fund(market, "carol", "USD", "10000")
        place(market, "carol", "buy", "0.01", "63000")

        ticker = market.trading.ticker("BTC-USD")
        minutes = market.trading.candles("BTC-USD", "1m")
        alice = market.trading.positions("alice")[0]
        bob = market.trading.positions("bob")[0]

        assert (ticker.last_price, ticker.open_24h, ticker.high_24h, ticker.trades_24h) == (
            "64000", "60000", "64000", 3
        )
        assert ticker.best_bid == 63000
        assert [(c.open, c.close, c.trades) for c in minutes] == [
            ("60000", "60000", 1), ("60000", "64000", 2)
        ]
        # alice bought 0.1 at 60,000, then 0.1 more at 60,000 (bob's rest) and 0.1 at 64,000
        assert (alice.position.quantity, alice.position.cost) == (30_000_000, 1_840_000)
        assert alice.unrealized_pnl == 1_920_000 - 1_840_000
        assert (bob.position.quantity, bob.position.realized_pnl) == (-30_000_000, 0)
        assert bob.unrealized_pnl == -1_920_000 + 1_840_000

    def test_mid_price_is_the_mean_of_best_bid_and_ask_when_both_sides_rest(
        self, market: Node
    ) -> None:
        assert market.trading.mid_price("BTC", "USD") is None
        place(market, "alice", "buy", "0.1", "59999")
        place(market, "bob", "sell", "0.1", "60002")

        assert market.trading.mid_price("BTC", "USD") == 120001 / 2
        market.trading.halt_pair("BTC-USD")
        assert market.trading.mid_price("BTC", "USD") is None
