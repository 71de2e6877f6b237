"""Pure arithmetic of trading: hold bounds, cumulative fees, positions, candles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.adapters.assets import load_registry
from dpgnode.domain.exchange.pair import Pair
from dpgnode.errors import ValidationError
from dpgnode.ports.trading import Position, Side
from dpgnode.services.trading.candles import add_trade, bucket_start, interval_of
from dpgnode.services.trading.fees import fill_fee, limit_buy_hold, market_buy_hold
from dpgnode.services.trading.positions import apply_fill, empty_position, unrealized

ASSETS = load_registry()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _pair(maker: str = "0.001", taker: str = "0.002") -> Pair:
    return Pair.build(ASSETS["BTC"], ASSETS["USD"], tick="1", lot="0.01",
                      maker_fee=maker, taker_fee=taker)


class TestFees:
    @settings(deadline=None)  # no wall-time limit: the machine is shared
    @given(values=st.lists(st.integers(1, 10**9), min_size=1, max_size=30))
    def test_split_fills_pay_exactly_the_fee_of_one_fill_when_fees_are_cumulative(
        self, values: list[int]
    ) -> None:
        pair = _pair()
        paid, before = 0, 0
        for value in values:
            paid += fill_fee(pair, before, value, maker=False)
            before += value
        assert paid == pair.taker_fee.of(sum(values))

    @settings(deadline=None)
    @given(
        fees=st.tuples(st.sampled_from(["0", "0.0001", "0.001", "0.0025"]),
                       st.sampled_from(["0", "0.0003", "0.002", "0.0025"])),
        ticks=st.integers(1, 200_000),
        lots=st.integers(1, 500),
        data=st.data(),
    )
    def test_limit_buy_hold_covers_any_mix_of_taker_and_maker_fills(
        self, fees: tuple[str, str], ticks: int, lots: int, data: st.DataObject
    ) -> None:
        pair = _pair(*fees)
        hold = limit_buy_hold(pair, ticks, lots)
        taker_lots = data.draw(st.integers(0, lots))
        improvement = data.draw(st.integers(0, ticks - 1))
        taker = [data.draw(st.integers(1, taker_lots)) for _ in range(2)] if taker_lots else []
        spent, taker_value, maker_value, left = 0, 0, 0, lots
        for chunk in taker:  # taker fills at or below the limit price
            chunk = min(chunk, left)
            if not chunk:
                continue
            value = pair.quote_units(ticks - improvement, chunk)
            spent += value + fill_fee(pair, taker_value, value, maker=False)
            taker_value += value
            left -= chunk
        while left:  # the rest fills as maker at the limit price, a lot at a time
            value = pair.quote_units(ticks, 1)
            spent += value + fill_fee(pair, maker_value, value, maker=True)
            maker_value += value
            left -= 1
        assert spent <= hold

    def test_market_buy_hold_is_the_walked_cost_plus_taker_fee(self) -> None:
        pair = _pair()
        asks = [(60_000, 10), (61_000, 10), (70_000, 10)]

        assert market_buy_hold(pair, asks, 15, None) == 600_000 + 305_000 + 1_810
        assert market_buy_hold(pair, asks, 25, 61_000) == 600_000 + 610_000 + 2_420
        assert market_buy_hold(pair, [], 5, None) == 0


class TestPositions:
    def test_average_cost_realizes_on_close_and_flips_when_selling_more(self) -> None:
        p = empty_position("u", "BTC-USD", T0)
        p = apply_fill(p, Side.BUY, 10, 1_000, 2, T0)
        p = apply_fill(p, Side.BUY, 10, 1_400, 3, T0)
        assert (p.quantity, p.cost) == (20, 2_400)
        p = apply_fill(p, Side.SELL, 5, 700, 1, T0)
        assert (p.quantity, p.cost, p.realized_pnl) == (15, 1_800, 100)
        p = apply_fill(p, Side.SELL, 25, 3_000, 4, T0)  # closes 15, opens a short of 10
        # the 15 closed sold for 1,800 and cost 1,800: nothing more realized
        assert (p.quantity, p.cost, p.realized_pnl, p.fees) == (-10, -1_200, 100, 10)
        assert unrealized(p, 1_000) == 200  # short of 10 sold for 1,200, worth 1,000 now

    @settings(deadline=None)
    @given(
        fills=st.lists(
            st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 50),
                      st.integers(1, 200)),
            min_size=1, max_size=40,
        )
    )
    def test_realized_plus_unrealized_equals_cash_when_marked_at_cost_free_prices(
        self, fills: list[tuple[Side, int, int]]
    ) -> None:
        p: Position = empty_position("u", "BTC-USD", T0)
        cash = 0
        for side, units, price in fills:
            value = units * price
            p = apply_fill(p, side, units, value, 0, T0)
            cash += -value if side is Side.BUY else value
        mark = abs(p.quantity) * 100
        assert p.realized_pnl + unrealized(p, mark) == cash + (p.quantity * 100)


class TestCandles:
    def test_buckets_align_to_utc_boundaries(self) -> None:
        at = datetime(2026, 3, 4, 13, 47, 31, tzinfo=UTC)

        assert bucket_start(at, interval_of("1m")) == datetime(2026, 3, 4, 13, 47, tzinfo=UTC)
        assert bucket_start(at, interval_of("5m")) == datetime(2026, 3, 4, 13, 45, tzinfo=UTC)
        assert bucket_start(at, interval_of("1h")) == datetime(2026, 3, 4, 13, tzinfo=UTC)
        assert bucket_start(at, interval_of("1d")) == datetime(2026, 3, 4, tzinfo=UTC)
        with pytest.raises(ValidationError):
            interval_of("2m")

    def test_prices_compare_exactly_when_candles_grow(self) -> None:
        key = ("ETH-BTC", "1m", T0)
        candle = add_trade(None, key, "0.05", 3, 15)
        candle = add_trade(candle, key, "0.0500001", 1, 5)
        candle = add_trade(candle, key, "0.049", 1, 5)

        assert (candle.open, candle.high, candle.low, candle.close) == (
            "0.05", "0.0500001", "0.049", "0.049"
        )
        assert (candle.volume, candle.quote_volume, candle.trades) == (5, 25, 3)
