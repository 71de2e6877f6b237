"""Quote pricing: spread, fee, exact integer rounding in the operator's favour.

The worked examples are checked by hand; the properties pin the rounding contract for any
amount up to 10^30 base units, at any decimals, spread and fee.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.conversion.pricing import (
    BPS,
    Terms,
    base_rate,
    price_buy,
    price_sell,
)
from dpgnode.domain.money import Amount, Asset
from dpgnode.errors import ValidationError

BTC = Asset("BTC", 8)
ETH = Asset("ETH", 18)
USD = Asset("USD", 2)
USDT = Asset("USDT-ETH", 6)
JPY = Asset("JPY", 0)
TERMS = Terms(spread_bps=50, fee_bps=10)


class TestWorkedExamples:
    def test_selling_half_a_bitcoin_prices_fee_spread_and_amount_when_sell_is_fixed(self) -> None:
        priced = price_sell(Amount.parse("0.5", BTC), USD, Fraction(60000), TERMS)
        # fee: 0.1 % of 0.5 BTC = 0.0005 BTC; net 0.4995 BTC at 60000 * 0.995 = 59700
        assert priced.fee == Amount.parse("0.0005", BTC)
        assert priced.net == Amount.parse("0.4995", BTC)
        assert priced.rate == 59700
        assert priced.buy == Amount.parse("29820.15", USD)  # 0.4995 * 59700 = 29820.15
        assert priced.spread == Amount.parse("149.85", USD)  # 0.4995 * 300

    def test_user_receives_exactly_what_they_asked_when_buy_is_fixed(self) -> None:
        priced = price_buy(Amount.parse("1000", USD), BTC, Fraction(60000), TERMS)
        assert priced.buy == Amount.parse("1000.00", USD)
        # net = ceil(100000 cents / 0.0597 cents per sat) = 1675042 sat
        # sell = ceil(1675042 / 0.999) = 1676719 sat; fee = ceil(1676719 * 0.001) = 1677
        assert priced.net.units == 1_675_042
        assert priced.sell.units == 1_676_719
        assert priced.fee.units == 1_677

    def test_fee_is_rounded_up_when_it_is_a_fraction_of_a_base_unit(self) -> None:
        priced = price_sell(Amount(1001, BTC), USD, Fraction(60000), Terms(0, 10))
        assert priced.fee.units == 2  # 1001 * 0.001 = 1.001 -> 2

    def test_amount_received_is_rounded_down_when_it_is_a_fraction_of_a_base_unit(self) -> None:
        priced = price_sell(Amount(999, JPY), USD, Fraction(1, 150), Terms(0, 0))
        assert priced.buy.units == 666  # 999 / 150 = 6.66 USD -> 666 cents exactly
        priced = price_sell(Amount(1000, JPY), USD, Fraction(1, 150), Terms(0, 0))
        assert priced.buy.units == 666  # 6.666... -> 666, never 667

    def test_huge_wei_amount_is_priced_exactly_when_far_beyond_64_bits(self) -> None:
        sell = Amount(10**30, ETH)  # 10^12 ETH
        mid = Fraction("3123.456789")
        priced = price_sell(sell, USDT, mid, TERMS)
        fee = -(-(10**30) * 10 // BPS)
        exact = (10**30 - fee) * mid * Fraction(9950, BPS) * 10**6 / 10**18
        assert priced.fee.units == fee == 10**27
        assert priced.buy.units == math.floor(exact)
        # 3123.456789 * 0.995 * 999e9 ETH = 3104731665549945 USDT, exactly
        assert priced.buy.format() == "3104731665549945.000000"

    def test_huge_wei_amount_is_bought_exactly_when_buy_is_fixed(self) -> None:
        priced = price_buy(Amount(10**30, ETH), USDT, Fraction(1, 3123), TERMS)
        assert priced.buy.units == 10**30
        assert math.floor(priced.net.units * base_rate(priced.rate, USDT, ETH)) >= 10**30


class TestRefusals:
    def test_amount_is_refused_when_it_buys_less_than_one_base_unit(self) -> None:
        with pytest.raises(ValidationError) as info:
            price_sell(Amount(1, JPY), BTC, Fraction(1, 10**9), TERMS)
        assert info.value.field == "amount"

    def test_amount_is_refused_when_zero(self) -> None:
        with pytest.raises(ValidationError):
            price_sell(Amount(0, BTC), USD, Fraction(60000), TERMS)

    def test_conversion_is_refused_when_both_assets_are_the_same(self) -> None:
        with pytest.raises(ValidationError):
            price_sell(Amount(100, BTC), BTC, Fraction(1), TERMS)

    @pytest.mark.parametrize(("spread", "fee"), [(-1, 0), (0, -1), (5001, 0), (0, 5001)])
    def test_terms_are_refused_when_out_of_range(self, spread: int, fee: int) -> None:
        with pytest.raises(ValidationError):
            Terms(spread, fee)


ASSETS = st.sampled_from([BTC, ETH, USD, USDT, JPY, Asset("KWD", 3)])
MIDS = st.fractions(min_value=Fraction(1, 10**8), max_value=Fraction(10**7), max_denominator=10**12)
TERMS_ = st.builds(Terms, st.integers(0, 5000), st.integers(0, 5000))
UNITS = st.integers(min_value=1, max_value=10**30)


@given(sold=ASSETS, bought=ASSETS, mid=MIDS, terms=TERMS_, units=UNITS)
def test_sell_fixed_rounds_for_the_operator_by_under_one_unit_when_priced(
    sold: Asset, bought: Asset, mid: Fraction, terms: Terms, units: int
) -> None:
    if sold.code == bought.code:
        return
    try:
        priced = price_sell(Amount(units, sold), bought, mid, terms)
    except ValidationError:
        return  # too small to buy one base unit
    exact_fee = Fraction(units * terms.fee_bps, BPS)
    assert priced.sell.units == units
    assert exact_fee <= priced.fee.units < exact_fee + 1
    value = priced.net.units * base_rate(priced.rate, sold, bought)
    assert priced.buy.units <= value < priced.buy.units + 1  # never more than the exact value
    assert priced.spread.units >= 0


@given(sold=ASSETS, bought=ASSETS, mid=MIDS, terms=TERMS_, units=UNITS)
def test_buy_fixed_charges_the_least_that_buys_it_when_priced(
    sold: Asset, bought: Asset, mid: Fraction, terms: Terms, units: int
) -> None:
    if sold.code == bought.code:
        return
    try:
        priced = price_buy(Amount(units, bought), sold, mid, terms)
    except ValidationError:
        return  # beyond the uint256 range
    rate = base_rate(priced.rate, sold, bought)
    assert priced.buy.units == units  # exactly what was asked, never more
    assert priced.net.units * rate >= units  # the net pays for it in full
    assert (priced.net.units - 1) * rate < units  # one unit less would not
    assert priced.fee.units == terms.fee_on(priced.sell.units)
    smaller = priced.sell.units - 1
    assert smaller - terms.fee_on(smaller) < priced.net.units  # sell is the least that works


@given(sold=ASSETS, bought=ASSETS, mid=MIDS, terms=TERMS_, units=UNITS)
def test_selling_what_a_buy_quote_charges_buys_at_least_as_much_when_repriced(
    sold: Asset, bought: Asset, mid: Fraction, terms: Terms, units: int
) -> None:
    if sold.code == bought.code:
        return
    try:
        bought_quote = price_buy(Amount(units, bought), sold, mid, terms)
    except ValidationError:
        return
    resold = price_sell(bought_quote.sell, bought, mid, terms)
    assert resold.buy.units >= units
    assert resold.fee == bought_quote.fee
