"""MedianRates and the rate sources behind the ``RateSource`` port (no database needed)."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest

from dpgnode.adapters.assets import load_registry
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.rates.fixed import FixedRateSource
from dpgnode.domain.conversion.rates import RateQuote, RateRules
from dpgnode.errors import ConfigError, UnavailableError, ValidationError
from dpgnode.services.conversion import BookMidRateSource, MedianRates

ASSETS = load_registry([])
FRESH = RateRules(timedelta(seconds=60))


class Scripted:
    """A ``RateSource`` answering from a table; ``fail`` makes every call unavailable."""

    def __init__(self, name: str, clock: FixedClock, rates: dict[str, str], age: int = 0) -> None:
        self.name = name
        self._clock = clock
        self._rates = {tuple(k.split("/")): Fraction(v) for k, v in rates.items()}
        self._age = age
        self.fail = False
        self.calls = 0

    def quote(self, base: str, quote: str) -> RateQuote | None:
        self.calls += 1
        if self.fail:
            raise UnavailableError(f"{self.name} is down")
        rate = self._rates.get((base, quote))
        if rate is None:
            return None
        return RateQuote(
            base, quote, rate, self.name, self._clock.now() - timedelta(seconds=self._age)
        )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


class TestMedianRates:
    def test_failing_source_is_left_out_when_others_answer(self, clock: FixedClock) -> None:
        good = Scripted("a", clock, {"BTC/USD": "60000"})
        bad = Scripted("b", clock, {"BTC/USD": "1"})
        bad.fail = True
        assert MedianRates([good, bad], clock, FRESH).quote("BTC", "USD").rate == 60000

    def test_rate_is_refused_and_never_defaulted_when_every_source_fails(
        self, clock: FixedClock
    ) -> None:
        sources = [Scripted("a", clock, {"BTC/USD": "60000"}), Scripted("b", clock, {})]
        for source in sources:
            source.fail = True
        with pytest.raises(UnavailableError):
            MedianRates(sources, clock, FRESH, ["USD"]).quote("BTC", "USD")

    def test_rate_is_refused_when_every_source_is_stale(self, clock: FixedClock) -> None:
        stale = Scripted("a", clock, {"BTC/USD": "60000"}, age=61)
        with pytest.raises(UnavailableError):
            MedianRates([stale], clock, FRESH).quote("BTC", "USD")

    def test_first_working_pivot_crosses_the_rate_when_no_direct_rate_exists(
        self, clock: FixedClock
    ) -> None:
        source = Scripted("a", clock, {"BTC/USDT": "60000", "EUR/USDT": "1.2", "BTC/USD": "1"})
        rate = MedianRates([source], clock, FRESH, ["USD", "USDT"]).quote("BTC", "EUR")
        assert rate.rate == 50000
        assert rate.source == "cross(BTC/USDT,USDT/EUR)"

    def test_pivot_is_not_used_when_it_is_one_of_the_pair(self, clock: FixedClock) -> None:
        source = Scripted("a", clock, {})
        with pytest.raises(UnavailableError):
            MedianRates([source], clock, FRESH, ["USD"]).quote("USD", "EUR")

    def test_same_asset_is_refused_when_asked_for_a_rate(self, clock: FixedClock) -> None:
        with pytest.raises(ValidationError):
            MedianRates([], clock, FRESH).quote("BTC", "BTC")

    def test_board_reports_each_missing_rate_as_a_line_when_listed(self, clock: FixedClock) -> None:
        source = Scripted("a", clock, {"BTC/USD": "60000"})
        lines = MedianRates([source], clock, FRESH).board(["BTC", "ETH", "USD"], "USD")
        assert [(line.base, line.rate is not None) for line in lines] == [
            ("BTC", True),
            ("ETH", False),
        ]
        assert "no fresh rate" in lines[1].problem


class TestFixedRates:
    def test_configured_rate_answers_both_directions_when_asked(self, clock: FixedClock) -> None:
        source = FixedRateSource.from_config([("BTC", "USD", "60000")], ASSETS, clock)
        direct, reverse = source.quote("BTC", "USD"), source.quote("USD", "BTC")
        assert direct is not None
        assert direct.rate == 60000
        assert reverse is not None
        assert reverse.rate == Fraction(1, 60000)
        assert source.quote("ETH", "USD") is None

    @pytest.mark.parametrize(
        "entries",
        [
            [("DOGE", "USD", "1")],
            [("BTC", "USD", "0")],
            [("BTC", "USD", "6e4")],
            [("BTC", "BTC", "1")],
            [("BTC", "USD", "60000"), ("USD", "BTC", "0.0000166")],
        ],
    )
    def test_configuration_is_refused_naming_the_entry_when_invalid(
        self, clock: FixedClock, entries: list[tuple[str, str, str]]
    ) -> None:
        with pytest.raises(ConfigError) as info:
            FixedRateSource.from_config(entries, ASSETS, clock)
        assert "conversion.fixed_rates[" in info.value.message


class TestBookMid:
    def test_missing_or_one_sided_book_gives_no_rate_when_asked(self, clock: FixedClock) -> None:
        class NoBooks:
            def mid_price(self, base: str, quote: str) -> Fraction | None:
                return None

        assert BookMidRateSource(NoBooks(), clock).quote("BTC", "USD") is None
