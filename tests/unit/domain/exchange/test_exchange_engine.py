"""Unit tests of the matching engine: each order type, each rejection, each rule, by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dpgnode.domain.exchange import (
    BUY,
    MAX_PRICE,
    SELL,
    MatchingEngine,
    MatchingMode,
    StopKind,
    TimeInForce,
)
from dpgnode.domain.exchange.types import OrderView


def take(engine: MatchingEngine) -> list[tuple[object, ...]]:
    events: list[tuple[object, ...]] = list(engine.events)
    engine.events.clear()
    return events


@pytest.fixture
def book() -> MatchingEngine:
    """Asks 101 x5 (s1, acct s), 102 x5 (s2); bids 99 x5 (b1, acct b), 98 x5 (b2)."""
    engine = MatchingEngine()
    engine.limit("s1", "s", SELL, 101, 5)
    engine.limit("s2", "s", SELL, 102, 5)
    engine.limit("b1", "b", BUY, 99, 5)
    engine.limit("b2", "b", BUY, 98, 5)
    engine.events.clear()
    return engine


class TestLimit:
    def test_rests_when_it_does_not_cross(self, book: MatchingEngine) -> None:
        book.limit("x", "t", BUY, 100, 3)
        assert take(book) == [("accepted", "x")]
        assert book.best_bid == 100
        assert book.order("x") == OrderView("x", BUY, 3, 100)

    def test_trades_at_the_makers_price_when_it_crosses(self, book: MatchingEngine) -> None:
        book.limit("x", "t", BUY, 102, 7)
        assert take(book) == [
            ("accepted", "x"),
            ("trade", "s1", "x", 101, 5),
            ("trade", "s2", "x", 102, 2),
        ]
        assert book.depth() == ([(99, 5), (98, 5)], [(102, 3)])
        assert book.last_price == 102

    def test_rests_the_remainder_at_its_limit_when_it_walks_the_book(
        self, book: MatchingEngine
    ) -> None:
        book.limit("x", "t", SELL, 98, 12)
        assert take(book) == [
            ("accepted", "x"),
            ("trade", "b1", "x", 99, 5),
            ("trade", "b2", "x", 98, 5),
        ]
        assert book.depth() == ([], [(98, 2), (101, 5), (102, 5)])

    def test_older_order_trades_first_when_prices_are_equal(self) -> None:
        engine = MatchingEngine()
        engine.limit("first", "a", SELL, 100, 2)
        engine.limit("second", "b", SELL, 100, 2)
        engine.limit("x", "c", BUY, 100, 3)
        assert [e for e in engine.events if e[0] == "trade"] == [
            ("trade", "first", "x", 100, 2),
            ("trade", "second", "x", 100, 1),
        ]

    def test_ioc_cancels_the_remainder_when_it_cannot_fill(self, book: MatchingEngine) -> None:
        book.limit("x", "t", BUY, 101, 8, TimeInForce.IOC)
        assert take(book) == [
            ("accepted", "x"),
            ("trade", "s1", "x", 101, 5),
            ("cancelled", "x", 3, "ioc"),
        ]
        assert book.order("x") is None

    def test_fok_trades_nothing_when_it_cannot_fill_whole(self, book: MatchingEngine) -> None:
        book.limit("x", "t", BUY, 101, 6, TimeInForce.FOK)
        assert take(book) == [("accepted", "x"), ("cancelled", "x", 6, "fok")]
        assert book.depth()[1] == [(101, 5), (102, 5)]

    def test_fok_fills_across_levels_when_enough_rests(self, book: MatchingEngine) -> None:
        book.limit("x", "t", BUY, 102, 10, "FOK")  # type: ignore[arg-type]  # plain string
        assert take(book) == [
            ("accepted", "x"),
            ("trade", "s1", "x", 101, 5),
            ("trade", "s2", "x", 102, 5),
        ]

    def test_fok_is_killed_when_self_trade_prevention_would_stop_it(self) -> None:
        engine = MatchingEngine()
        engine.limit("m1", "a", SELL, 100, 2)
        engine.limit("own", "t", SELL, 100, 2)
        engine.limit("m2", "a", SELL, 100, 2)
        engine.events.clear()
        engine.limit("x", "t", BUY, 100, 3, TimeInForce.FOK)
        assert take(engine) == [("accepted", "x"), ("cancelled", "x", 3, "fok")]

    def test_post_only_is_rejected_when_it_would_cross(self, book: MatchingEngine) -> None:
        book.limit("x", "t", BUY, 101, 1, post_only=True)
        assert take(book) == [("rejected", "x", "would_cross")]
        book.limit("y", "t", BUY, 100, 1, post_only=True)
        assert take(book) == [("accepted", "y")]
        assert book.best_bid == 100


    def test_quantity_has_no_upper_bound_when_any_path_takes_it(self) -> None:
        engine = MatchingEngine()
        big = 2**70  # beyond MAX_QTY, which bounds a pair, not the engine
        engine.limit("gtc", "a", SELL, 100, big)
        engine.limit("ioc", "b", BUY, 100, big + 1, TimeInForce.IOC)
        assert take(engine) == [
            ("accepted", "gtc"),
            ("accepted", "ioc"),
            ("trade", "gtc", "ioc", 100, big),
            ("cancelled", "ioc", 1, "ioc"),
        ]
        engine.limit("rest", "a", SELL, 101, big)
        assert MatchingEngine.restore(engine.snapshot()).depth() == ([], [(101, big)])


class TestMarket:
    def test_cancels_what_finds_no_liquidity_when_book_runs_dry(
        self, book: MatchingEngine
    ) -> None:
        book.market("x", "t", BUY, 12)
        assert take(book) == [
            ("accepted", "x"),
            ("trade", "s1", "x", 101, 5),
            ("trade", "s2", "x", 102, 5),
            ("cancelled", "x", 2, "market"),
        ]
        assert book.best_ask is None

    def test_stops_at_the_protection_price_when_one_is_given(self, book: MatchingEngine) -> None:
        book.market("x", "t", SELL, 8, protection=99)
        assert take(book) == [
            ("accepted", "x"),
            ("trade", "b1", "x", 99, 5),
            ("cancelled", "x", 3, "market"),
        ]
        assert book.best_bid == 98

    def test_on_an_empty_side_is_cancelled_whole_when_nothing_rests(self) -> None:
        engine = MatchingEngine()
        engine.market("x", None, SELL, 4)
        assert take(engine) == [("accepted", "x"), ("cancelled", "x", 4, "market")]


class TestSelfTradePrevention:
    def test_cancels_the_rest_at_the_own_order_when_fifo(self) -> None:
        engine = MatchingEngine()
        engine.limit("m1", "a", SELL, 100, 2)
        engine.limit("own", "t", SELL, 100, 2)
        engine.limit("m2", "a", SELL, 100, 2)
        engine.events.clear()
        engine.limit("x", "t", BUY, 101, 5)
        assert take(engine) == [
            ("accepted", "x"),
            ("trade", "m1", "x", 100, 2),
            ("cancelled", "x", 3, "self_trade"),
        ]
        assert engine.level_orders(SELL, 100) == [("own", "t", 2), ("m2", "a", 2)]
        assert engine.last_price == 100

    def test_skips_no_level_when_pro_rata_level_holds_an_own_order(self) -> None:
        engine = MatchingEngine(MatchingMode.PRO_RATA)
        engine.limit("m1", "a", SELL, 100, 2)
        engine.limit("own", "t", SELL, 100, 2)
        engine.events.clear()
        engine.market("x", "t", BUY, 1)
        assert take(engine) == [("accepted", "x"), ("cancelled", "x", 1, "self_trade")]

    def test_never_applies_when_account_is_none(self) -> None:
        engine = MatchingEngine()
        engine.limit("m", None, SELL, 100, 2)
        engine.limit("x", None, BUY, 100, 2)
        assert ("trade", "m", "x", 100, 2) in engine.events


class TestProRata:
    def test_shares_in_proportion_with_leftovers_oldest_first_when_level_is_split(self) -> None:
        engine = MatchingEngine(MatchingMode.PRO_RATA)
        engine.limit("a", "1", SELL, 100, 1)
        engine.limit("b", "2", SELL, 100, 3)
        engine.limit("c", "3", SELL, 100, 6)
        engine.events.clear()
        # 5 of 10: floors 0.5->0, 1.5->1, 3->3 = 4; one leftover lot to the oldest, "a".
        engine.limit("x", "4", BUY, 100, 5)
        assert take(engine) == [
            ("accepted", "x"),
            ("trade", "a", "x", 100, 1),
            ("trade", "b", "x", 100, 1),
            ("trade", "c", "x", 100, 3),
        ]
        assert engine.level_orders(SELL, 100) == [("b", "2", 2), ("c", "3", 3)]

    def test_fills_every_order_then_goes_on_when_level_is_smaller(self) -> None:
        engine = MatchingEngine(MatchingMode.PRO_RATA)
        engine.limit("a", "1", SELL, 100, 1)
        engine.limit("b", "2", SELL, 101, 4)
        engine.events.clear()
        engine.limit("x", "4", BUY, 101, 3)
        assert take(engine) == [
            ("accepted", "x"),
            ("trade", "a", "x", 100, 1),
            ("trade", "b", "x", 101, 2),
        ]


class TestStops:
    @pytest.fixture
    def traded(self, book: MatchingEngine) -> MatchingEngine:
        """The fixture's book after one trade at 101 (last price 101)."""
        book.limit("t0", "t", BUY, 101, 1)
        book.events.clear()
        return book

    def test_sell_stop_loss_fires_when_last_falls_to_trigger(
        self, traded: MatchingEngine
    ) -> None:
        traded.stop("st", "q", SELL, 99, 2)
        assert take(traded) == [("accepted", "st")]
        traded.limit("x", "t", SELL, 99, 1)
        assert take(traded) == [
            ("accepted", "x"),
            ("trade", "b1", "x", 99, 1),
            ("triggered", "st"),
            ("trade", "b1", "st", 99, 2),
        ]
        assert traded.stop_count == 0

    def test_buy_stop_limit_rests_at_its_price_when_fired(self, traded: MatchingEngine) -> None:
        traded.stop("st", "q", BUY, 102, 9, price=102)
        traded.limit("x", "t", BUY, 102, 5)
        assert take(traded) == [
            ("accepted", "st"),
            ("accepted", "x"),
            ("trade", "s1", "x", 101, 4),
            ("trade", "s2", "x", 102, 1),
            ("triggered", "st"),
            ("trade", "s2", "st", 102, 4),
        ]
        assert traded.order("st") == OrderView("st", BUY, 5, 102)

    def test_take_profit_fires_in_the_opposite_direction_when_kind_says_so(
        self, traded: MatchingEngine
    ) -> None:
        traded.stop("tp", "q", SELL, 100, 1, kind=StopKind.TAKE_PROFIT)  # last 101 >= 100
        assert take(traded) == [
            ("accepted", "tp"),
            ("triggered", "tp"),
            ("trade", "b1", "tp", 99, 1),
        ]

    def test_stop_whose_trigger_is_met_fires_at_once_when_placed(
        self, traded: MatchingEngine
    ) -> None:
        traded.stop("st", "q", BUY, 101, 1)  # buy stop-loss: last 101 >= 101
        assert take(traded) == [
            ("accepted", "st"),
            ("triggered", "st"),
            ("trade", "s1", "st", 101, 1),
        ]

    def test_no_stop_fires_when_nothing_has_traded(self, book: MatchingEngine) -> None:
        book.stop("st", "q", SELL, 1_000, 1)
        assert take(book) == [("accepted", "st")]
        assert book.stop_count == 1

    def test_stops_fire_in_placement_order_when_they_fire_together(
        self, traded: MatchingEngine
    ) -> None:
        traded.stop("late-trigger", "q", SELL, 98, 1)  # placed first, lower trigger
        traded.stop("early-trigger", "r", SELL, 99, 1)
        traded.events.clear()
        traded.market("x", "t", SELL, 10)  # 99 x5, 98 x5: last 98 fires both
        fired = [e for e in traded.events if e[0] == "triggered"]
        assert fired == [("triggered", "late-trigger"), ("triggered", "early-trigger")]

    def test_fired_stops_trades_fire_further_stops_when_cascading(
        self, traded: MatchingEngine
    ) -> None:
        traded.stop("st1", "q", SELL, 99, 6)
        traded.stop("st2", "r", SELL, 98, 1)
        traded.events.clear()
        traded.limit("x", "t", SELL, 99, 1)  # last 99 fires st1, whose trades print 98
        assert take(traded) == [
            ("accepted", "x"),
            ("trade", "b1", "x", 99, 1),
            ("triggered", "st1"),
            ("trade", "b1", "st1", 99, 4),
            ("trade", "b2", "st1", 98, 2),
            ("triggered", "st2"),
            ("trade", "b2", "st2", 98, 1),
        ]

    def test_pending_stop_is_cancelled_and_reduced_when_asked(
        self, book: MatchingEngine
    ) -> None:
        book.stop("st", "q", SELL, 90, 5, price=89)
        book.reduce("st", 3)
        book.cancel("st")
        assert take(book) == [
            ("accepted", "st"),
            ("reduced", "st", 3),
            ("cancelled", "st", 3, "cancelled"),
        ]
        assert book.stops() == []


class TestCancelAndReduce:
    def test_cancel_removes_the_rest_when_order_is_live(self, book: MatchingEngine) -> None:
        book.limit("x", "t", BUY, 101, 7)
        book.events.clear()
        book.cancel("x")
        assert take(book) == [("cancelled", "x", 2, "cancelled")]
        assert book.best_bid == 99

    def test_cancel_is_rejected_when_id_is_unknown_or_done(self, book: MatchingEngine) -> None:
        book.limit("x", "t", BUY, 101, 5)
        book.events.clear()
        book.cancel("x")
        book.cancel("s1")
        assert take(book) == [("rejected", "x", "unknown_order"),
                              ("rejected", "s1", "unknown_order")]

    def test_reduce_keeps_time_priority_when_quantity_drops(self) -> None:
        engine = MatchingEngine()
        engine.limit("first", "a", SELL, 100, 5)
        engine.limit("second", "b", SELL, 100, 5)
        engine.reduce("first", 1)
        engine.events.clear()
        engine.limit("x", "c", BUY, 100, 2)
        assert take(engine) == [
            ("accepted", "x"),
            ("trade", "first", "x", 100, 1),
            ("trade", "second", "x", 100, 1),
        ]
        assert engine.depth()[1] == [(100, 4)]

    @pytest.mark.parametrize("qty", [0, 5, 6, -1])
    def test_reduce_is_rejected_when_it_does_not_lower_the_quantity(
        self, book: MatchingEngine, qty: int
    ) -> None:
        book.reduce("s1", qty)
        assert take(book) == [("rejected", "s1", "invalid_quantity")]
        assert book.order("s1") == OrderView("s1", SELL, 5, 101)

    def test_level_keeps_queue_order_when_compacted_after_many_cancels(self) -> None:
        engine = MatchingEngine()
        for i in range(60):
            engine.limit(i, None, SELL, 100, 1)
        for i in range(0, 60, 3):
            engine.cancel(i)
        for i in range(1, 60, 3):
            engine.cancel(i)
        live = [i for i in range(60) if i % 3 == 2]
        assert [oid for oid, _, _ in engine.level_orders(SELL, 100)] == live
        engine.events.clear()
        engine.market("x", None, BUY, 5)
        assert [e[1] for e in engine.events if e[0] == "trade"] == live[:5]


    def test_best_prices_stay_right_when_many_levels_come_and_go_behind_them(self) -> None:
        engine = MatchingEngine()
        engine.limit("ask", None, SELL, 100, 1)
        engine.limit("bid", None, BUY, 50, 1)
        for round_ in range(4):  # enough emptied levels to force the heaps to be rebuilt
            for price in range(1, 50):
                engine.limit(f"a{round_}-{price}", None, SELL, 100 + price, 1)
                engine.limit(f"b{round_}-{price}", None, BUY, price, 1)
            for price in range(1, 50, 2):
                engine.cancel(f"a{round_}-{price}")
                engine.cancel(f"b{round_}-{price}")
        assert not [e for e in engine.events if e[0] == "rejected"]
        engine.cancel("ask")
        engine.cancel("bid")
        assert (engine.best_ask, engine.best_bid) == (102, 48)
        assert engine.depth(2) == ([(48, 4), (46, 4)], [(102, 4), (104, 4)])
        engine.market("sweep", None, BUY, 10**6)
        engine.market("sweep2", None, SELL, 10**6)
        assert (engine.best_ask, engine.best_bid) == (None, None)
        engine.limit("again", None, SELL, 150, 1)
        assert engine.best_ask == 150


class TestRejections:
    @pytest.mark.parametrize(
        ("call", "oid", "reason"),
        [
            (lambda e: e.limit("s1", "t", BUY, 100, 1), "s1", "duplicate_id"),
            (lambda e: e.limit("x", "t", 2, 100, 1), "x", "invalid_side"),
            (lambda e: e.limit("x", "t", BUY, 100, 0), "x", "invalid_quantity"),
            (lambda e: e.limit("x", "t", BUY, 0, 1), "x", "invalid_price"),
            (lambda e: e.limit("x", "t", BUY, MAX_PRICE + 1, 1), "x", "invalid_price"),
            (lambda e: e.limit("x", "t", BUY, 100, 1, "GTD"), "x", "invalid_tif"),
            (lambda e: e.market("s1", "t", BUY, 1), "s1", "duplicate_id"),
            (lambda e: e.market("x", "t", -1, 1), "x", "invalid_side"),
            (lambda e: e.market("x", "t", BUY, -3), "x", "invalid_quantity"),
            (lambda e: e.market("x", "t", BUY, 1, protection=0), "x", "invalid_price"),
            (lambda e: e.stop("b1", "t", BUY, 100, 1), "b1", "duplicate_id"),
            (lambda e: e.stop("x", "t", BUY, 0, 1), "x", "invalid_price"),
            (lambda e: e.stop("x", "t", BUY, 100, 1, price=-5), "x", "invalid_price"),
            (lambda e: e.stop("x", "t", BUY, 100, 1, kind="trailing"), "x", "invalid_kind"),
            (lambda e: e.stop("x", "t", BUY, 100, 0), "x", "invalid_quantity"),
        ],
    )
    def test_command_changes_nothing_when_rejected(
        self, book: MatchingEngine, call: Callable[[MatchingEngine], None], oid: str,
        reason: str,
    ) -> None:
        before = book.snapshot()
        call(book)
        assert take(book) == [("rejected", oid, reason)]
        assert book.snapshot() == before

    def test_new_id_is_refused_when_a_pending_stop_holds_it(self, book: MatchingEngine) -> None:
        book.stop("st", "q", SELL, 50, 1)
        book.events.clear()
        book.limit("st", "q", BUY, 90, 1)
        book.market("st", "q", BUY, 1)
        assert take(book) == [("rejected", "st", "duplicate_id")] * 2

    def test_new_orders_are_rejected_but_cancels_work_when_halted(
        self, book: MatchingEngine
    ) -> None:
        book.halt()
        book.limit("x", "t", BUY, 100, 1)
        book.market("y", "t", BUY, 1)
        book.stop("z", "t", BUY, 100, 1)
        book.cancel("b1")
        book.reduce("b2", 1)
        assert take(book) == [
            ("rejected", "x", "halted"),
            ("rejected", "y", "halted"),
            ("rejected", "z", "halted"),
            ("cancelled", "b1", 5, "cancelled"),
            ("reduced", "b2", 1),
        ]
        assert book.halted
        book.resume()
        book.limit("x", "t", BUY, 100, 1)
        assert take(book) == [("accepted", "x")]
