"""Trading pairs: exact decimal <-> tick / lot conversions, base and quote units, fees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.exchange import Increment, MatchingMode, Pair, Rate, Rounding, TradingStatus
from dpgnode.domain.money import Asset
from dpgnode.errors import ValidationError

BTC = Asset("BTC", 8)
USD = Asset("USD", 2)
JPY = Asset("JPY", 0)


def btc_usd(**overrides: str) -> Pair:
    fields = {"tick": "0.01", "lot": "0.001", **overrides}
    return Pair.build(BTC, USD, **fields)


class TestIncrement:
    @pytest.mark.parametrize(
        ("text", "units", "scale", "shown"),
        [("0.01", 1, 2, "0.01"), ("0.010", 1, 2, "0.01"), ("5", 5, 0, "5"),
         ("0.25", 25, 2, "0.25"), ("10", 10, 0, "10"), ("2.50", 25, 1, "2.5")],
    )
    def test_parse_normalises_when_text_has_trailing_zeros(
        self, text: str, units: int, scale: int, shown: str
    ) -> None:
        step = Increment.parse(text)
        assert (step.units, step.scale, str(step)) == (units, scale, shown)

    @pytest.mark.parametrize("text", ["0", "0.000", "-1", "1e-2", ".5", "1.", " 1", "\uff11", ""])
    def test_parse_refuses_when_text_is_not_a_positive_plain_decimal(self, text: str) -> None:
        with pytest.raises(ValidationError):
            Increment.parse(text)

    @pytest.mark.parametrize(
        ("tick", "text", "steps"),
        [("0.01", "100.50", 10050), ("0.01", "100.5", 10050), ("0.05", "100.55", 2011),
         ("5", "105", 21), ("0.5", "3", 6), ("0.01", "0", 0), ("0.001", "1.000000", 1000)],
    )
    def test_to_steps_is_exact_when_value_is_on_the_grid(
        self, tick: str, text: str, steps: int
    ) -> None:
        assert Increment.parse(tick).to_steps(text) == steps

    @pytest.mark.parametrize(
        ("tick", "text"), [("0.01", "100.505"), ("0.05", "100.52"), ("5", "104"), ("0.5", "0.3")]
    )
    def test_to_steps_refuses_off_grid_when_value_is_between_steps(
        self, tick: str, text: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            Increment.parse(tick).to_steps(text, field="price")
        assert caught.value.details == {"field": "price", "reason": "off_grid"}

    @pytest.mark.parametrize("text", ["abc", "-1", "1.2.3", "1,5", "NaN"])
    def test_to_steps_says_malformed_when_value_is_not_a_decimal(self, text: str) -> None:
        with pytest.raises(ValidationError) as caught:
            Increment.parse("0.01").to_steps(text, field="qty")
        assert caught.value.details["reason"] == "malformed"

    @pytest.mark.parametrize(
        ("tick", "steps", "shown"),
        [("0.01", 10050, "100.5"), ("0.01", 10000, "100"), ("0.01", 3, "0.03"),
         ("0.05", 2011, "100.55"), ("5", 21, "105"), ("0.5", 6, "3"), ("0.001", 0, "0")],
    )
    def test_format_drops_trailing_zeros_when_printing(
        self, tick: str, steps: int, shown: str
    ) -> None:
        assert Increment.parse(tick).format(steps) == shown

    @given(units=st.integers(1, 999), scale=st.integers(0, 12), steps=st.integers(0, 10**20))
    def test_format_then_to_steps_round_trips_when_any_grid(
        self, units: int, scale: int, steps: int
    ) -> None:
        while units % 10 == 0 and scale > 0:
            units //= 10
            scale -= 1
        step = Increment(units, scale)
        assert step.to_steps(step.format(steps)) == steps


class TestPair:
    def test_build_reads_every_field_when_given_strings(self) -> None:
        pair = Pair.build(BTC, USD, tick="0.01", lot="0.001", min_size="0.002", max_size="10",
                          maker_fee="0.001", taker_fee="0.0025", mode="pro-rata",
                          status="halted")
        assert pair.symbol == "BTC-USD"
        assert (pair.min_qty, pair.max_qty) == (2, 10_000)
        assert (pair.maker_fee, pair.taker_fee) == (Rate(1, 3), Rate(25, 4))
        assert (pair.mode, pair.status) == (MatchingMode.PRO_RATA, TradingStatus.HALTED)

    def test_build_refuses_a_lot_finer_than_the_base_unit_when_checked(self) -> None:
        with pytest.raises(ValidationError, match="finer than one base unit"):
            Pair.build(BTC, USD, tick="0.01", lot="0.000000001")

    @pytest.mark.parametrize(
        "fields",
        [{"min_size": "2", "max_size": "1"}, {"min_size": "0"}, {"maker_fee": "1"},
         {"taker_fee": "-0.1"}, {"mode": "auction"}, {"min_size": "0.0005"}],
    )
    def test_build_refuses_inconsistent_fields_when_checked(self, fields: dict[str, str]) -> None:
        with pytest.raises(ValidationError):
            btc_usd(**fields)

    def test_same_asset_twice_is_refused_when_building(self) -> None:
        with pytest.raises(ValidationError):
            Pair.build(BTC, BTC, tick="1", lot="1")

    def test_prices_and_quantities_convert_exactly_when_on_grid(self) -> None:
        pair = btc_usd(max_size="5")
        assert pair.to_ticks("65000.5") == 6_500_050
        assert pair.format_price(6_500_050) == "65000.5"
        assert pair.to_lots("1.5") == 1_500
        assert pair.format_qty(1_500) == "1.5"
        with pytest.raises(ValidationError):
            pair.to_lots("5.001")  # above max_size
        with pytest.raises(ValidationError):
            pair.to_ticks("0")

    def test_base_units_are_exact_when_lots_convert(self) -> None:
        pair = btc_usd()
        assert pair.base_units(1_500) == 150_000_000  # 1.5 BTC in satoshi
        assert pair.lots_from_units(150_099_999) == 1_500  # whole lots only

    def test_quote_units_round_only_as_asked_when_not_exact(self) -> None:
        pair = Pair.build(BTC, USD, tick="0.01", lot="0.00001")
        assert not pair.exact_notional
        # 0.00001 BTC at 100.01 USD = 0.0010001 USD: not a whole cent
        with pytest.raises(ValidationError):
            pair.quote_units(10_001, 1)
        assert pair.quote_units(10_001, 1, rounding=Rounding.DOWN) == 0
        assert pair.quote_units(10_001, 1, rounding=Rounding.UP) == 1
        assert pair.quote_units(10_001, 100_000) == 10_001  # 1 BTC: exact

    def test_quote_units_are_exact_when_grid_allows(self) -> None:
        pair = Pair.build(BTC, JPY, tick="1", lot="0.01")
        assert pair.exact_notional is False  # 1 yen x 0.01 BTC = 0.01 yen
        pair = Pair.build(BTC, JPY, tick="100", lot="0.01")
        assert pair.exact_notional
        assert pair.quote_units(98, 150) == 14_700  # 1.5 BTC at 9,800 JPY

    def test_fees_round_up_when_not_whole_units(self) -> None:
        rate = Rate.parse("0.001")
        assert rate.of(1_000) == 1
        assert rate.of(1_001) == 2
        assert rate.of(0) == 0
        assert str(Rate.parse("0.0250")) == "0.025"
