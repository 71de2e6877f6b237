"""R2: decimal string <-> base units round trips across [0, 10**78) at every asset's decimals.

10,000 examples per push, split evenly over the assets of the built-in registry. Hypothesis
prints the failing example and the seed to reproduce it.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dpgnode.adapters.assets import builtin_assets
from dpgnode.domain.money import MAX_UNITS, Amount, Asset, format_units, parse_units
from dpgnode.errors import ValidationError

ASSETS = builtin_assets()
TOTAL_EXAMPLES = 10_000
PER_ASSET = TOTAL_EXAMPLES // len(ASSETS) // 2  # two round-trip directions per asset


def _of_digit_count(digits: int) -> st.SearchStrategy[int]:
    low = 0 if digits <= 1 else 10 ** (digits - 1)
    return st.integers(low, 10**digits - 1)


def _boundaries(decimals: int) -> list[int]:
    one = 10**decimals
    candidates = [0, 1, 2, one - 1, one, one + 1, 2**64 - 1, 2**64, 2**256 - 1, MAX_UNITS - 1]
    return sorted({c for c in candidates if 0 <= c <= MAX_UNITS} | {MAX_UNITS})


# Uniform over magnitudes (1 to 78 digits) rather than values, plus the boundaries.
units_in_range = st.one_of(
    st.integers(1, 78).flatmap(_of_digit_count),
    st.integers(0, MAX_UNITS),
)


@pytest.mark.parametrize("asset", ASSETS, ids=[a.code for a in ASSETS])
class TestAmountCodec:
    @settings(max_examples=PER_ASSET, deadline=None)
    @given(data=st.data())
    def test_units_survive_format_then_parse_when_within_uint256(
        self, asset: Asset, data: st.DataObject
    ) -> None:
        units = data.draw(st.one_of(units_in_range, st.sampled_from(_boundaries(asset.decimals))))
        text = format_units(units, asset.decimals)
        assert "e" not in text.lower()
        assert parse_units(text, asset.decimals) == units
        assert Amount.parse(text, asset) == Amount(units, asset)
        whole, _, frac = text.partition(".")
        assert len(frac) == asset.decimals
        assert int(whole + frac) == units

    @settings(max_examples=PER_ASSET, deadline=None)
    @given(data=st.data())
    def test_string_survives_parse_then_format_when_digits_fit_the_asset(
        self, asset: Asset, data: st.DataObject
    ) -> None:
        whole = data.draw(st.integers(0, MAX_UNITS // 10**asset.decimals), label="whole")
        frac_digits = data.draw(st.integers(0, asset.decimals), label="fraction digits")
        frac = data.draw(st.text("0123456789", min_size=frac_digits, max_size=frac_digits))
        text = f"{whole}.{frac}" if frac else str(whole)
        units = parse_units(text, asset.decimals)
        canonical = format_units(units, asset.decimals)
        assert parse_units(canonical, asset.decimals) == units
        # Same number, only the trailing zeros of the fraction may differ.
        if asset.decimals:
            expected_frac = frac.ljust(asset.decimals, "0")
            assert canonical == f"{whole}.{expected_frac}"
        else:
            assert canonical == str(whole)


@given(st.integers(1, 18), st.integers(0, 10**60))
@example(decimals=8, units=MAX_UNITS)
@settings(max_examples=200, deadline=None)
def test_parse_refuses_when_string_carries_one_digit_more_than_the_asset(
    decimals: int, units: int
) -> None:
    text = format_units(units, decimals) + "1"
    with pytest.raises(ValidationError, match="fractional digits"):
        parse_units(text, decimals)
