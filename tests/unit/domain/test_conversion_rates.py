"""Rate math: exact parsing and display, inversion, cross rates, the median of fresh sources."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.conversion.rates import (
    RateQuote,
    RateRules,
    aggregate,
    cross,
    format_rate,
    median,
    parse_rate,
)
from dpgnode.errors import UnavailableError, ValidationError
from tests.factories import T0

FRESH = RateRules(max_age=timedelta(seconds=60))


def seen(rate: str | Fraction, source: str = "s", age: int = 0, pair: str = "BTC/USD") -> RateQuote:
    base, quote = pair.split("/")
    value = parse_rate(rate) if isinstance(rate, str) else rate
    return RateQuote(base, quote, value, source, T0 - timedelta(seconds=age))


class TestParseAndFormat:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("60000", Fraction(60000)),
            ("0.0000165", Fraction(165, 10_000_000)),
            ("1.08", Fraction(27, 25)),
        ],
    )
    def test_decimal_string_is_parsed_exactly_when_valid(
        self, text: str, expected: Fraction
    ) -> None:
        assert parse_rate(text) == expected

    @pytest.mark.parametrize(
        "text", ["0", "0.000", "-1", "1e5", "abc", "", "1.", ".5", "NaN", "inf"]
    )
    def test_rate_is_refused_when_not_a_positive_decimal(self, text: str) -> None:
        with pytest.raises(ValidationError):
            parse_rate(text)

    def test_float_is_refused_when_given_instead_of_a_string(self) -> None:
        with pytest.raises(ValidationError):
            parse_rate(60000.5)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("rate", "digits", "text"),
        [
            (Fraction(60000), 18, "60000"),
            (Fraction(1, 2), 18, "0.5"),
            (Fraction(1, 3), 6, "0.333333"),
            (Fraction(2, 3), 6, "0.666666"),  # truncated, never rounded up
            (Fraction(1, 10**20), 18, "0"),
        ],
    )
    def test_rate_is_shown_truncated_when_formatted(
        self, rate: Fraction, digits: int, text: str
    ) -> None:
        assert format_rate(rate, digits) == text


class TestRateQuote:
    def test_inverted_rate_is_the_exact_reciprocal_when_inverted(self) -> None:
        rate = seen("60000").inverted()
        assert (rate.base, rate.quote, rate.rate) == ("USD", "BTC", Fraction(1, 60000))

    def test_rate_is_refused_when_it_is_not_positive(self) -> None:
        with pytest.raises(ValidationError):
            RateQuote("BTC", "USD", Fraction(0), "s", T0)

    def test_cross_rate_is_the_product_and_as_old_as_the_older_leg_when_chained(self) -> None:
        btc_usd = seen("60000", age=5)
        usd_eur = seen("0.9", age=20, pair="USD/EUR")
        crossed = cross(btc_usd, usd_eur)
        assert (crossed.base, crossed.quote) == ("BTC", "EUR")
        assert crossed.rate == Fraction(54000)
        assert crossed.observed_at == T0 - timedelta(seconds=20)

    def test_cross_is_refused_when_legs_do_not_meet(self) -> None:
        with pytest.raises(ValidationError):
            cross(seen("60000"), seen("3000", pair="ETH/USD"))


class TestMedian:
    def test_median_is_the_middle_value_when_count_is_odd(self) -> None:
        assert median([Fraction(3), Fraction(1), Fraction(2)]) == 2

    def test_median_is_the_mean_of_the_middle_pair_when_count_is_even(self) -> None:
        assert median([Fraction(1), Fraction(4), Fraction(2), Fraction(100)]) == 3

    def test_median_is_refused_when_there_is_nothing(self) -> None:
        with pytest.raises(ValidationError):
            median([])


class TestAggregate:
    def test_median_of_fresh_sources_is_returned_when_enough_are_fresh(self) -> None:
        rate = aggregate(
            "BTC", "USD", [seen("60000", "a"), seen("60100", "b"), seen("70000", "c")], T0, FRESH
        )
        assert rate.rate == 60100
        assert rate.source == "median(a,b,c)"

    def test_stale_source_is_excluded_when_older_than_max_age(self) -> None:
        rate = aggregate("BTC", "USD", [seen("60000", "a"), seen("1", "old", age=61)], T0, FRESH)
        assert rate.rate == 60000
        assert rate.source == "a"

    def test_future_dated_source_is_excluded_when_aggregating(self) -> None:
        rate = aggregate("BTC", "USD", [seen("60000", "a"), seen("1", "b", age=-1)], T0, FRESH)
        assert rate.rate == 60000

    def test_reverse_pair_is_inverted_and_other_pairs_ignored_when_aggregating(self) -> None:
        observations = [
            seen(Fraction(1, 60000), "a", pair="USD/BTC"),
            seen("3000", "b", pair="ETH/USD"),
        ]
        assert aggregate("BTC", "USD", observations, T0, FRESH).rate == 60000

    def test_rate_is_refused_when_no_source_is_fresh(self) -> None:
        with pytest.raises(UnavailableError) as info:
            aggregate("BTC", "USD", [seen("60000", age=3600)], T0, FRESH)
        assert info.value.details["pair"] == "BTC/USD"

    def test_rate_is_refused_when_fewer_fresh_sources_than_required(self) -> None:
        two = RateRules(timedelta(seconds=60), min_sources=2)
        with pytest.raises(UnavailableError):
            aggregate("BTC", "USD", [seen("60000", "a"), seen("60001", "b", age=90)], T0, two)

    def test_rate_is_dated_by_its_oldest_input_when_aggregated(self) -> None:
        rate = aggregate("BTC", "USD", [seen("1", "a", age=10), seen("2", "b", age=30)], T0, FRESH)
        assert rate.observed_at == T0 - timedelta(seconds=30)

    @pytest.mark.parametrize(("max_age", "min_sources"), [(0, 1), (-5, 1), (60, 0)])
    def test_rules_are_refused_when_their_bounds_make_no_sense(
        self, max_age: int, min_sources: int
    ) -> None:
        with pytest.raises(ValidationError):
            RateRules(timedelta(seconds=max_age), min_sources)


rates = st.fractions(min_value=Fraction(1, 10**6), max_value=Fraction(10**9))


@given(
    honest=st.lists(rates, min_size=1, max_size=9),
    liars=st.data(),
)
def test_r26_minority_of_adversarial_sources_cannot_move_the_median_outside_honest_range(
    honest: list[Fraction], liars: st.DataObject
) -> None:
    """R26: with k < n/2 adversarial sources the median stays within the honest range."""
    # k adversarial among n = len(honest) + k sources: k < n / 2 means k < len(honest).
    k = liars.draw(st.integers(min_value=0, max_value=len(honest) - 1), label="k")
    lies = liars.draw(
        st.lists(
            st.one_of(st.just(Fraction(1, 10**12)), st.just(Fraction(10**15)), rates),
            min_size=k,
            max_size=k,
        ),
        label="lies",
    )
    observations = [seen(r, f"h{i}") for i, r in enumerate(honest)]
    observations += [seen(r, f"x{i}") for i, r in enumerate(lies)]
    rate = aggregate("BTC", "USD", observations, T0, FRESH).rate
    assert min(honest) <= rate <= max(honest)


@given(stale=st.lists(rates, min_size=1, max_size=5), fresh=st.lists(rates, max_size=5))
def test_r26_stale_sources_never_count_when_aggregating(
    stale: list[Fraction], fresh: list[Fraction]
) -> None:
    observations = [seen(r, f"old{i}", age=61 + i) for i, r in enumerate(stale)]
    observations += [seen(r, f"new{i}") for i, r in enumerate(fresh)]
    if not fresh:
        with pytest.raises(UnavailableError):
            aggregate("BTC", "USD", observations, T0, FRESH)
    else:
        assert aggregate("BTC", "USD", observations, T0, FRESH).rate == median(fresh)


class TestOutliers:
    RULES = RateRules(timedelta(seconds=60), max_deviation_bps=500)

    def test_outlier_is_left_out_when_further_than_the_bound_from_the_median(self) -> None:
        observations = [seen("60000", "a"), seen("60100", "b"), seen("90000", "c")]
        rate = aggregate("BTC", "USD", observations, T0, self.RULES)
        assert rate.rate == 60050
        assert rate.source == "median(a,b)"

    def test_two_sources_too_far_apart_refuse_the_rate_when_neither_is_an_outlier_alone(
        self,
    ) -> None:
        with pytest.raises(UnavailableError) as info:
            aggregate("BTC", "USD", [seen("60000", "a"), seen("70000", "b")], T0, self.RULES)
        assert "disagree" in info.value.message
        assert info.value.details["agreeing"] == 0

    def test_two_close_sources_meet_halfway_when_within_the_bound(self) -> None:
        rate = aggregate("BTC", "USD", [seen("60000", "a"), seen("62000", "b")], T0, self.RULES)
        assert rate.rate == 61000

    def test_outliers_count_against_min_sources_when_filtered(self) -> None:
        rules = RateRules(timedelta(seconds=60), min_sources=3, max_deviation_bps=500)
        observations = [seen("60000", "a"), seen("60100", "b"), seen("90000", "c")]
        with pytest.raises(UnavailableError):
            aggregate("BTC", "USD", observations, T0, rules)


@given(
    honest=st.lists(rates, min_size=1, max_size=9),
    liars=st.data(),
    bound=st.integers(min_value=1, max_value=2000),
)
def test_r26_outlier_filter_keeps_the_rate_near_the_honest_range_when_liars_are_a_minority(
    honest: list[Fraction], liars: st.DataObject, bound: int
) -> None:
    k = liars.draw(st.integers(min_value=0, max_value=len(honest) - 1), label="k")
    lies = liars.draw(st.lists(rates, min_size=k, max_size=k), label="lies")
    observations = [seen(r, f"h{i}") for i, r in enumerate(honest)]
    observations += [seen(r, f"x{i}") for i, r in enumerate(lies)]
    rules = RateRules(timedelta(seconds=60), max_deviation_bps=bound)
    try:
        rate = aggregate("BTC", "USD", observations, T0, rules).rate
    except UnavailableError:
        assert len(observations) % 2 == 0  # only an even count has no observation at its median
        return
    slack = Fraction(bound, 10_000)
    assert min(honest) * (1 - slack) <= rate <= max(honest) * (1 + slack)
