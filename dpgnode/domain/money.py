"""Assets and exact amounts.

Invariants this module keeps:
- an :class:`Amount` is an integer number of the asset's base units (satoshi, wei, cent);
  there is no float anywhere on the path from a decimal string to the database;
- a decimal string with more fractional digits than the asset has is rejected, never rounded;
- amounts fit a uint256 (``< 10**78``), the widest quantity any supported chain can carry;
  negative amounts exist only as signed ledger postings (``Amount.negated``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from dpgnode.errors import NotFoundError, ValidationError

MAX_UNITS = 10**78 - 1
"""Largest magnitude an amount may have: a uint256 holds up to 2**256 - 1 (about 1.16e77)."""

_DECIMAL = re.compile(r"^(?P<sign>-?)(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?$")  # ASCII only
_ASSET_CODE = re.compile(r"^[A-Z0-9]{2,12}(?:-[A-Z0-9]{2,12})?$")


class AssetKind(StrEnum):
    """Native coin, token on a chain, or fiat currency."""

    CRYPTO = "crypto"
    TOKEN = "token"  # noqa: S105 - an asset kind, not a credential
    FIAT = "fiat"


@dataclass(frozen=True, slots=True)
class Asset:
    """A unit of value the ledger can hold.

    ``code`` names the asset on one network (``USDT-ETH`` and ``USDT-BSC`` are different
    assets: different contracts, different decimals).
    """

    code: str
    decimals: int
    name: str = ""
    kind: AssetKind = AssetKind.CRYPTO
    network: str = ""

    def __post_init__(self) -> None:
        if not _ASSET_CODE.fullmatch(self.code):
            raise ValidationError(f"invalid asset code {self.code!r}", field="code")
        if not 0 <= self.decimals <= 36:
            raise ValidationError(
                f"asset {self.code}: decimals must be between 0 and 36", field="decimals"
            )


@dataclass(frozen=True, slots=True)
class Amount:
    """An exact quantity of one asset, in base units."""

    units: int
    asset: Asset

    def __post_init__(self) -> None:
        if type(self.units) is not int:
            raise ValidationError("amount units must be an integer", field="amount")
        if abs(self.units) > MAX_UNITS:
            raise ValidationError("amount exceeds the uint256 range", field="amount")

    @classmethod
    def parse(cls, text: str, asset: Asset, *, field: str = "amount") -> Amount:
        """Parse a non-negative decimal string (``"0.5"``, ``"10"``, ``"10.00"``) exactly."""
        return cls(parse_units(text, asset.decimals, field=field), asset)

    def format(self) -> str:
        """Decimal string with exactly the asset's number of fractional digits."""
        return format_units(self.units, self.asset.decimals)

    def negated(self) -> Amount:
        """The same quantity with the opposite sign (for postings)."""
        return Amount(-self.units, self.asset)

    def __add__(self, other: Amount) -> Amount:
        self._same_asset(other)
        return Amount(self.units + other.units, self.asset)

    def __sub__(self, other: Amount) -> Amount:
        self._same_asset(other)
        return Amount(self.units - other.units, self.asset)

    def _same_asset(self, other: Amount) -> None:
        if other.asset.code != self.asset.code:
            raise ValidationError(
                f"cannot combine {self.asset.code} with {other.asset.code}", field="asset"
            )

    def __str__(self) -> str:
        return f"{self.format()} {self.asset.code}"


def parse_units(text: str, decimals: int, *, field: str = "amount", signed: bool = False) -> int:
    """Turn a decimal string into base units without ever passing through a float.

    Raises:
        ValidationError: not a plain decimal, negative (unless ``signed``), more fractional
            digits than ``decimals``, or beyond the uint256 range.
    """
    if not isinstance(text, str):
        raise ValidationError("amount must be a decimal string", field=field)
    match = _DECIMAL.match(text.strip())
    if match is None or len(text) > 120:
        raise ValidationError(f"{text[:40]!r} is not a decimal number", field=field)
    negative = match["sign"] == "-"
    if negative and not signed:
        raise ValidationError("amount must not be negative", field=field)
    frac = (match["frac"] or "").rstrip("0") if match["frac"] else ""
    if len(frac) > decimals:
        raise ValidationError(f"amount has more than {decimals} fractional digits", field=field)
    units = int(match["int"]) * 10**decimals + (int(frac.ljust(decimals, "0")) if frac else 0)
    if units > MAX_UNITS:
        raise ValidationError("amount exceeds the uint256 range", field=field)
    signed_units: int = -units if negative else units
    return signed_units


def format_units(units: int, decimals: int) -> str:
    """Decimal string of ``units`` with exactly ``decimals`` fractional digits."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    if decimals == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{decimals}d}"


class AssetRegistry(Mapping[str, Asset]):
    """The assets a node knows, by code. Built from ``config/assets.toml`` by the adapters."""

    def __init__(self, assets: Iterable[Asset]) -> None:
        self._by_code: dict[str, Asset] = {}
        for asset in assets:
            if asset.code in self._by_code:
                raise ValidationError(f"asset {asset.code} is defined twice", field="code")
            self._by_code[asset.code] = asset

    def __getitem__(self, code: str) -> Asset:
        return self._by_code[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_code)

    def __len__(self) -> int:
        return len(self._by_code)

    def format(self, units: int, code: str) -> str:
        """``units`` of asset ``code`` as a decimal string; bare base units if unknown.

        Stored accounts may name an asset an operator later removed from the registry:
        showing base units keeps such balances readable instead of failing.
        """
        known = self._by_code.get(code)
        return format_units(units, known.decimals) if known is not None else str(units)

    def require(self, code: str, *, field: str = "asset") -> Asset:
        """The asset for ``code``, or a :class:`NotFoundError` naming the field."""
        asset = self._by_code.get(code)
        if asset is None:
            raise NotFoundError(f"unknown asset {code[:20]!r}", details={"field": field})
        return asset
