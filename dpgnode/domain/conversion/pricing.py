"""Pricing a conversion: spread and fee on an exact rate, rounded for the operator.

The user gives ``sell`` units of the *from* asset and receives ``buy`` units of the *to*
asset. With ``mid`` the market rate (whole *to* units per whole *from* unit):

- the client rate is ``mid * (1 - spread)``: the spread is kept in the rate;
- the fee is ``fee_bps`` of ``sell``, in the *from* asset, rounded **up**;
- the *net* amount ``sell - fee`` is what is exchanged at the client rate.

Two ways to ask, both in exact integer/fraction arithmetic (no float anywhere):

- **sell fixed** (``price_sell``): ``fee = ceil(sell * f)``, ``buy = floor(net * p)``;
- **buy fixed** (``price_buy``): the smallest ``sell`` whose net buys at least ``buy``:
  ``net = ceil(buy / p)``, ``sell = ceil(net / (1 - f))``; the user receives exactly ``buy``.

Invariants (tested as properties): every rounding goes the operator's way by less than one
base unit of the asset it happens in -- the fee is at most one unit above ``sell * f``; the
user receives at most ``net * p`` and never more than the quote says; for a fixed ``buy``
one unit less of ``sell`` would not have bought it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from dpgnode.domain.money import Amount, Asset
from dpgnode.errors import ValidationError

BPS = 10_000
MAX_BPS = 5_000
"""Largest spread or fee accepted (50 %): anything above is a configuration mistake."""


class FixedSide(StrEnum):
    """Which amount the user fixed: what they sell, or what they want to receive."""

    SELL = "sell"
    BUY = "buy"


@dataclass(frozen=True, slots=True)
class Terms:
    """The operator's price terms, in basis points (1 bp = 0.01 %)."""

    spread_bps: int
    fee_bps: int

    def __post_init__(self) -> None:
        for name in ("spread_bps", "fee_bps"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_BPS:
                raise ValidationError(f"{name} must be an integer in [0, {MAX_BPS}]", field=name)

    def client_rate(self, mid: Fraction) -> Fraction:
        """``mid`` less the spread: what the user gets per unit sold."""
        return mid * (BPS - self.spread_bps) / BPS

    def fee_on(self, units: int) -> int:
        """Fee on ``units`` sold, rounded up (integer arithmetic)."""
        return -(-units * self.fee_bps // BPS)


@dataclass(frozen=True, slots=True)
class Priced:
    """A priced conversion: every amount the ledger entry will move."""

    sell: Amount
    """Debited from the user, fee included (*from* asset)."""
    fee: Amount
    """The part of ``sell`` that goes to the operator's fees account (*from* asset)."""
    buy: Amount
    """Credited to the user (*to* asset)."""
    mid_rate: Fraction
    """Market rate used, whole *to* units per whole *from* unit."""
    rate: Fraction
    """Client rate after the spread, whole units."""
    spread: Amount
    """What the spread (and rounding) keeps, valued in the *to* asset at ``mid_rate``."""

    @property
    def net(self) -> Amount:
        """What is exchanged at ``rate``: ``sell`` less ``fee``."""
        return self.sell - self.fee


def base_rate(rate: Fraction, from_asset: Asset, to_asset: Asset) -> Fraction:
    """A whole-unit rate as *to* base units per *from* base unit (``BTC/USD`` -> cents/sat)."""
    scale = Fraction(10**to_asset.decimals, 10**from_asset.decimals)
    return rate * scale


def price_sell(sell: Amount, to_asset: Asset, mid: Fraction, terms: Terms) -> Priced:
    """Price a conversion where the user fixes what they sell (fee included).

    Raises:
        ValidationError: ``sell`` is not positive, or too small to buy one base unit.
    """
    _check(sell, to_asset, mid)
    fee = terms.fee_on(sell.units)
    net = sell.units - fee
    buy = math.floor(net * base_rate(terms.client_rate(mid), sell.asset, to_asset))
    return _priced(sell.asset, to_asset, (sell.units, fee, buy), mid, terms)


def price_buy(buy: Amount, from_asset: Asset, mid: Fraction, terms: Terms) -> Priced:
    """Price a conversion where the user fixes what they receive; they receive exactly it.

    Raises:
        ValidationError: ``buy`` is not positive, or the client rate is zero.
    """
    _check(buy, from_asset, mid)
    rate = base_rate(terms.client_rate(mid), from_asset, buy.asset)
    if rate <= 0:
        raise ValidationError("the spread leaves no rate to convert at", field="spread_bps")
    net = math.ceil(buy.units / rate)
    # Smallest sell with sell - ceil(sell * f) >= net (see the module docstring).
    sell = math.ceil(Fraction(net * BPS, BPS - terms.fee_bps))
    fee = terms.fee_on(sell)
    return _priced(from_asset, buy.asset, (sell, fee, buy.units), mid, terms)


def _check(amount: Amount, other: Asset, mid: Fraction) -> None:
    if amount.units <= 0:
        raise ValidationError("the amount must be greater than zero", field="amount")
    if amount.asset.code == other.code:
        raise ValidationError("cannot convert an asset into itself", field="to")
    if not isinstance(mid, Fraction) or mid <= 0:
        raise ValidationError("the rate must be a positive fraction", field="rate")


def _priced(
    from_asset: Asset, to_asset: Asset, units: tuple[int, int, int], mid: Fraction, terms: Terms
) -> Priced:
    sell, fee, buy = units
    net = sell - fee
    if net <= 0 or buy <= 0:
        raise ValidationError(
            "the amount is too small to convert: it buys less than one base unit",
            field="amount",
        )
    kept = math.floor(net * base_rate(mid, from_asset, to_asset)) - buy
    return Priced(
        sell=Amount(sell, from_asset),
        fee=Amount(fee, from_asset),
        buy=Amount(buy, to_asset),
        mid_rate=mid,
        rate=terms.client_rate(mid),
        spread=Amount(max(kept, 0), to_asset),
    )
