"""Assets and exact amounts: decimal strings in, integer base units out, never a float."""

from __future__ import annotations

import pytest

from dpgnode.adapters.assets import builtin_assets
from dpgnode.domain.money import (
    MAX_UNITS,
    Amount,
    Asset,
    AssetRegistry,
    format_units,
    parse_units,
)
from dpgnode.errors import NotFoundError, ValidationError
from tests import factories

REGISTRY = AssetRegistry(builtin_assets())
BTC = REGISTRY["BTC"]
ETH = REGISTRY["ETH"]
JPY = REGISTRY["JPY"]
USDT_ETH = REGISTRY["USDT-ETH"]
USDT_BSC = REGISTRY["USDT-BSC"]


class TestRegistryDecimals:
    @pytest.mark.parametrize(
        ("code", "decimals"),
        [
            ("BTC", 8),
            ("ETH", 18),
            ("USDT-ETH", 6),
            ("USDT-BSC", 18),
            ("USD", 2),
            ("JPY", 0),
            ("KWD", 3),
        ],
    )
    def test_asset_has_its_chain_decimals_when_loaded_from_the_registry(
        self, code: str, decimals: int
    ) -> None:
        assert REGISTRY[code].decimals == decimals

    def test_require_raises_not_found_naming_the_field_when_asset_is_unknown(self) -> None:
        with pytest.raises(NotFoundError) as info:
            REGISTRY.require("DOGE", field="currency")
        assert info.value.details["field"] == "currency"

    def test_registry_refuses_an_asset_defined_twice_when_built(self) -> None:
        with pytest.raises(ValidationError):
            AssetRegistry([factories.asset("BTC"), factories.asset("BTC", decimals=2)])

    def test_registry_behaves_as_a_mapping_when_iterated(self) -> None:
        registry = AssetRegistry([factories.asset("BTC"), factories.asset("USD", 2)])
        assert list(registry) == ["BTC", "USD"]
        assert len(registry) == 2
        assert "USD" in registry
        assert registry.require("USD").decimals == 2


class TestAsset:
    @pytest.mark.parametrize(
        "code", ["btc", "B", "BTC_ETH", "TOOLONGASSETCODE", "USDT-", "", "BTC\n"]
    )
    def test_asset_is_refused_when_code_is_malformed(self, code: str) -> None:
        with pytest.raises(ValidationError) as info:
            factories.asset(code)
        assert info.value.field == "code"

    @pytest.mark.parametrize("decimals", [-1, 37])
    def test_asset_is_refused_when_decimals_are_out_of_range(self, decimals: int) -> None:
        with pytest.raises(ValidationError) as info:
            factories.asset(decimals=decimals)
        assert info.value.field == "decimals"


class TestParseUnits:
    @pytest.mark.parametrize(
        ("text", "asset", "units"),
        [
            ("0", BTC, 0),
            ("1", BTC, 100_000_000),
            ("0.00000001", BTC, 1),
            ("21000000", BTC, 21_000_000 * 10**8),
            ("1.5", BTC, 150_000_000),
            ("1.50000000", BTC, 150_000_000),
            ("1", ETH, 10**18),
            ("0.1", ETH, 10**17),
            ("123456789.123456789123456789", ETH, 123456789123456789123456789),
            ("0.000000000000000001", USDT_BSC, 1),
            ("1", USDT_BSC, 10**18),
            ("1.000001", USDT_ETH, 1_000_001),
            ("100", JPY, 100),
            ("100.0", JPY, 100),
            ("007", JPY, 7),
        ],
    )
    def test_parse_gives_exact_base_units_when_string_is_a_plain_decimal(
        self, text: str, asset: Asset, units: int
    ) -> None:
        assert Amount.parse(text, asset) == Amount(units, asset)

    @pytest.mark.parametrize(
        ("text", "asset"),
        [
            ("0.000000001", BTC),
            ("1.123456789", BTC),
            ("0.0000000000000000001", ETH),
            ("1.0000001", USDT_ETH),
            ("1.5", JPY),
            ("0.1", JPY),
        ],
    )
    def test_parse_refuses_rather_than_rounds_when_string_is_over_precise(
        self, text: str, asset: Asset
    ) -> None:
        with pytest.raises(ValidationError, match="fractional digits") as info:
            Amount.parse(text, asset)
        assert info.value.field == "amount"

    @pytest.mark.parametrize("text", ["-1", "-0.00000001", "-0"])
    def test_parse_refuses_when_amount_is_negative(self, text: str) -> None:
        with pytest.raises(ValidationError, match="negative"):
            Amount.parse(text, BTC)

    def test_parse_accepts_a_sign_when_signed_units_are_asked_for(self) -> None:
        assert parse_units("-1.5", 8, signed=True) == -150_000_000

    @pytest.mark.parametrize(
        "text",
        [
            "",
            " ",
            ".",
            "1.",
            ".5",
            "+1",
            "1,5",
            "1e8",
            "1E-8",
            "0x10",
            "NaN",
            "Infinity",
            "1 000",
            "1.2.3",
            "--1",
            "\u0661\u0662",  # Arabic-Indic digits: int() would accept them, an amount must not
            "\uff11\uff12",  # fullwidth digits
            "1" * 121,
        ],
    )
    def test_parse_refuses_when_string_is_not_a_plain_ascii_decimal(self, text: str) -> None:
        with pytest.raises(ValidationError) as info:
            parse_units(text, 8, field="price")
        assert info.value.field == "price"

    @pytest.mark.parametrize("value", [1.5, 1, b"1", None])
    def test_parse_refuses_when_value_is_not_a_string(self, value: object) -> None:
        with pytest.raises(ValidationError, match="decimal string"):
            parse_units(value, 8)  # type: ignore[arg-type]

    @pytest.mark.parametrize("decimals", [0, 8, 18, 36])
    def test_parse_accepts_the_largest_amount_when_it_is_exactly_the_uint256_bound(
        self, decimals: int
    ) -> None:
        text = format_units(MAX_UNITS, decimals)
        assert parse_units(text, decimals) == MAX_UNITS

    @pytest.mark.parametrize("decimals", [0, 8, 18, 36])
    def test_parse_refuses_when_amount_exceeds_the_uint256_bound(self, decimals: int) -> None:
        text = format_units(MAX_UNITS + 1, decimals)
        with pytest.raises(ValidationError, match="uint256"):
            parse_units(text, decimals)


class TestFormatUnits:
    @pytest.mark.parametrize(
        ("units", "decimals", "text"),
        [
            (0, 8, "0.00000000"),
            (1, 8, "0.00000001"),
            (150_000_000, 8, "1.50000000"),
            (-1, 8, "-0.00000001"),
            (10**18, 18, "1.000000000000000000"),
            (100, 0, "100"),
            (-100, 0, "-100"),
            (1_234, 2, "12.34"),
            (MAX_UNITS, 0, "9" * 78),
        ],
    )
    def test_format_gives_exactly_the_asset_decimals_when_formatting(
        self, units: int, decimals: int, text: str
    ) -> None:
        assert format_units(units, decimals) == text


class TestAmount:
    @pytest.mark.parametrize("units", [1.0, True, "1"])
    def test_amount_is_refused_when_units_are_not_an_int(self, units: object) -> None:
        with pytest.raises(ValidationError):
            Amount(units, BTC)  # type: ignore[arg-type]

    @pytest.mark.parametrize("units", [MAX_UNITS + 1, -(MAX_UNITS + 1), 2**260])
    def test_amount_is_refused_when_beyond_uint256(self, units: int) -> None:
        with pytest.raises(ValidationError, match="uint256"):
            Amount(units, ETH)

    def test_amount_arithmetic_stays_exact_when_assets_match(self) -> None:
        one_wei = Amount(1, ETH)
        big = Amount(10**30, ETH)
        assert (big + one_wei).units == 10**30 + 1
        assert (big - one_wei).units == 10**30 - 1
        assert one_wei.negated() == Amount(-1, ETH)

    def test_amount_arithmetic_is_refused_when_assets_differ(self) -> None:
        with pytest.raises(ValidationError) as info:
            _ = Amount(1, BTC) + Amount(1, ETH)
        assert info.value.field == "asset"

    def test_amount_prints_decimal_and_code_when_converted_to_text(self) -> None:
        assert str(Amount(150_000_000, BTC)) == "1.50000000 BTC"
        assert Amount(150_000_000, BTC).format() == "1.50000000"
        assert str(Amount(5, JPY)) == "5 JPY"
