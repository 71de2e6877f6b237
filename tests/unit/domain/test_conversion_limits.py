"""Limits: calendar periods in UTC, own limits over defaults, the check and its usage tally."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.conversion.limits import (
    DEFAULT_OWNER,
    Limit,
    LimitKind,
    LimitStatus,
    Period,
    check_limits,
    effective_limits,
    prorated_value,
    tally,
    volumes,
)
from dpgnode.domain.money import Amount, Asset, AssetRegistry
from dpgnode.errors import PolicyDeniedError, ValidationError

BTC = Asset("BTC", 8)
USD = Asset("USD", 2)
ASSETS = AssetRegistry([BTC, USD])
ONE_BTC = 10**8


def limit(
    units: int,
    owner: str = "alice",
    kind: LimitKind = LimitKind.ASSET,
    asset: str = "BTC",
    period: Period = Period.DAY,
) -> Limit:
    return Limit(owner, kind, asset, period, units)


class TestPeriods:
    def test_day_starts_at_utc_midnight_when_the_clock_is_in_another_zone(self) -> None:
        moment = datetime(2026, 3, 10, 1, 30, tzinfo=timezone(timedelta(hours=3)))
        assert Period.DAY.start(moment) == datetime(2026, 3, 9, tzinfo=UTC)
        assert Period.DAY.end(moment) == datetime(2026, 3, 10, tzinfo=UTC)

    def test_month_rolls_into_the_next_year_when_it_is_december(self) -> None:
        moment = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
        assert Period.MONTH.start(moment) == datetime(2026, 12, 1, tzinfo=UTC)
        assert Period.MONTH.end(moment) == datetime(2027, 1, 1, tzinfo=UTC)

    def test_day_ends_on_the_first_of_next_month_when_it_is_the_last_day(self) -> None:
        assert Period.DAY.end(datetime(2028, 2, 29, 12, tzinfo=UTC)) == datetime(
            2028, 3, 1, tzinfo=UTC
        )


class TestEffectiveLimits:
    def test_own_limit_wins_over_the_default_when_both_exist(self) -> None:
        default = limit(5 * ONE_BTC, owner=DEFAULT_OWNER)
        own = limit(ONE_BTC)
        for order in ([default, own], [own, default]):
            chosen = effective_limits(order, "alice")
            assert chosen == {own.key: own}

    def test_default_applies_when_the_user_has_none_of_their_own(self) -> None:
        default = limit(5 * ONE_BTC, owner=DEFAULT_OWNER, period=Period.MONTH)
        own = limit(ONE_BTC)
        assert effective_limits([default, own], "alice") == {own.key: own, default.key: default}

    def test_other_users_limits_are_ignored_when_choosing(self) -> None:
        assert effective_limits([limit(1, owner="bob")], "alice") == {}

    def test_limit_is_refused_when_negative(self) -> None:
        with pytest.raises(ValidationError):
            limit(-1)


class TestCheck:
    def test_usage_is_counted_for_both_assets_and_every_period_when_tallied(self) -> None:
        counted = volumes(Amount(ONE_BTC, BTC), Amount(6_000_000, USD), None)
        after = tally({(LimitKind.ASSET, "BTC", Period.DAY): 5}, counted)
        assert after == {
            (LimitKind.ASSET, "BTC", Period.DAY): ONE_BTC + 5,
            (LimitKind.ASSET, "BTC", Period.MONTH): ONE_BTC,
            (LimitKind.ASSET, "USD", Period.DAY): 6_000_000,
            (LimitKind.ASSET, "USD", Period.MONTH): 6_000_000,
        }

    def test_conversion_passes_when_it_fits_exactly(self) -> None:
        rule = limit(ONE_BTC)
        counted = volumes(Amount(ONE_BTC // 2, BTC), Amount(1, USD), None)
        after = check_limits({rule.key: rule}, {rule.key: ONE_BTC // 2}, counted, ASSETS)
        assert after[rule.key] == ONE_BTC

    def test_conversion_is_refused_with_what_remains_when_it_exceeds_the_limit(self) -> None:
        rule = limit(ONE_BTC)
        counted = volumes(Amount(ONE_BTC // 2 + 1, BTC), Amount(1, USD), None)
        with pytest.raises(PolicyDeniedError) as info:
            check_limits({rule.key: rule}, {rule.key: ONE_BTC // 2}, counted, ASSETS)
        assert info.value.details == {
            "rule": "conversion_limit",
            "kind": "asset",
            "asset": "BTC",
            "period": "day",
            "limit": "1.00000000",
            "used": "0.50000000",
            "remaining": "0.50000000",
        }
        assert "daily" in info.value.message

    def test_limit_on_an_untouched_asset_is_ignored_when_checking(self) -> None:
        rule = limit(0, asset="EUR")
        counted = volumes(Amount(ONE_BTC, BTC), Amount(1, USD), None)
        assert (LimitKind.ASSET, "EUR", Period.DAY) not in check_limits(
            {rule.key: rule}, {}, counted, ASSETS
        )

    def test_value_limit_counts_the_reference_value_when_the_quote_has_one(self) -> None:
        rule = limit(100_000, kind=LimitKind.VALUE, asset="USD")
        counted = volumes(Amount(ONE_BTC, BTC), Amount(1, USD), Amount(100_001, USD))
        with pytest.raises(PolicyDeniedError):
            check_limits({rule.key: rule}, {}, counted, ASSETS)

    def test_value_limit_refuses_when_the_quote_has_no_reference_value(self) -> None:
        rule = limit(10**12, kind=LimitKind.VALUE, asset="USD")
        counted = volumes(Amount(1, BTC), Amount(1, USD), None)
        with pytest.raises(PolicyDeniedError) as info:
            check_limits({rule.key: rule}, {}, counted, ASSETS)
        assert "request a new quote" in info.value.message

    def test_remaining_is_never_negative_when_usage_passed_a_lowered_limit(self) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        status = LimitStatus(limit(10), used=50, period_start=start, resets_at=start)
        assert status.remaining == 0


class TestProratedValue:
    USDT_BSC = Asset("USDT-BSC", 18)

    def test_value_is_exact_when_it_is_beyond_float_precision(self) -> None:
        # 100.000000000000000007 USDT-BSC of value, 3/7 of it sold: a float would drop units.
        value = Amount(10**20 + 7, self.USDT_BSC)
        assert prorated_value(value, 3, 7).units == 42_857_142_857_142_857_146

    @given(
        st.integers(0, 10**30),
        st.integers(1, 10**24).flatmap(lambda whole: st.tuples(st.integers(0, whole),
                                                               st.just(whole))),
    )
    def test_value_is_the_exact_ceiling_when_drawn_at_random(
        self, units: int, part_whole: tuple[int, int]
    ) -> None:
        part, whole = part_whole
        prorated = prorated_value(Amount(units, self.USDT_BSC), part, whole).units
        assert (prorated - 1) * whole < units * part <= prorated * whole

    def test_whole_must_be_positive_when_prorating(self) -> None:
        with pytest.raises(ValidationError):
            prorated_value(Amount(1, USD), 0, 0)
