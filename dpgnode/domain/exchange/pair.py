"""Trading pairs: the grid prices and quantities live on, fees, matching mode and status.

Invariants this module keeps:
- a price is an integer number of ticks and a quantity an integer number of lots; the
  conversions from and to decimal strings are exact: a value off the grid is refused, never
  rounded (``Increment.to_steps``), and formatting is normalised (no trailing zeros:
  ``100.50`` at tick ``0.01`` prints ``100.5``);
- one lot is a whole number of the base asset's base units (checked when the pair is built),
  so ``Pair.base_units`` is exact; a trade's quote amount (ticks x lots) is exact or rounded
  only in the direction the caller names (``Pair.quote_units``);
- fee rates are exact decimal fractions in [0, 1); fees round up to the quote's base unit.

A price is quoted in the quote asset per one whole unit of the base asset (BTC-USD at
``"65000.5"`` means 65,000.50 USD for 1 BTC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from dpgnode.domain.exchange.types import MAX_PRICE, MAX_QTY, MatchingMode
from dpgnode.domain.money import Asset
from dpgnode.errors import ValidationError

_DECIMAL = re.compile(r"^(?P<int>[0-9]{1,40})(?:\.(?P<frac>[0-9]{1,40}))?$")  # ASCII digits only


class TradingStatus(StrEnum):
    """Whether a pair accepts new orders."""

    OPEN = "open"
    HALTED = "halted"


class Rounding(StrEnum):
    """How to turn a quote amount that is not a whole base unit into one."""

    EXACT = "exact"
    """Refuse (``ValidationError``) unless the amount is exact."""
    DOWN = "down"
    UP = "up"


def _pow10(exponent: int) -> int:
    """``10**exponent`` for ``exponent >= 0``, typed as the int it is."""
    return int(10**exponent)


def _split(text: object, what: str) -> tuple[int, int]:
    """``text`` as ``(digits, scale)`` with no trailing fractional zeros; refuses non-decimals."""
    if not isinstance(text, str):
        raise ValidationError(f"{what} must be a decimal string", field=what,
                              details={"reason": "malformed"})
    match = _DECIMAL.match(text)
    if match is None:
        raise ValidationError(f"{text[:40]!r} is not a plain decimal number", field=what,
                              details={"reason": "malformed"})
    frac = (match["frac"] or "").rstrip("0")
    return int(match["int"] + frac), len(frac)


def _normalised(units: int, scale: int) -> str:
    """``units * 10**-scale`` as a decimal string without trailing fractional zeros."""
    if scale == 0:
        return str(units)
    whole, frac = divmod(units, _pow10(scale))
    digits = f"{frac:0{scale}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


@dataclass(frozen=True, slots=True)
class Increment:
    """A positive decimal step (a tick or lot size), held exactly as ``units * 10**-scale``."""

    units: int
    scale: int

    def __post_init__(self) -> None:
        if self.units <= 0 or self.scale < 0 or (self.units % 10 == 0 and self.scale > 0):
            raise ValidationError("an increment is positive and normalised", field="increment")

    @classmethod
    def parse(cls, text: str, *, field: str = "increment") -> Increment:
        """Parse ``"0.01"``, ``"0.5"``, ``"5"`` (trailing zeros are ignored)."""
        units, scale = _split(text, field)
        if units == 0:
            raise ValidationError(f"{field} must be greater than zero", field=field)
        return cls(units, scale)

    def to_steps(self, text: str, *, field: str = "value") -> int:
        """The whole number of increments ``text`` is.

        Raises:
            ValidationError: ``details['reason']`` is ``malformed`` (not a plain non-negative
                decimal) or ``off_grid`` (not a whole multiple of the increment).
        """
        digits, scale = _split(text, field)
        if scale > self.scale:
            raise self._off_grid(text, field)
        steps, rest = divmod(digits * _pow10(self.scale - scale), self.units)
        if rest:
            raise self._off_grid(text, field)
        return steps

    def format(self, steps: int) -> str:
        """``steps`` increments as a normalised decimal string."""
        return _normalised(steps * self.units, self.scale)

    def _off_grid(self, text: str, field: str) -> ValidationError:
        return ValidationError(f"{text[:40]} is not a multiple of {self}", field=field,
                               details={"reason": "off_grid"})

    def __str__(self) -> str:
        return _normalised(self.units, self.scale)


@dataclass(frozen=True, slots=True)
class Rate:
    """An exact fee rate ``numerator * 10**-scale`` in [0, 1) (``"0.001"`` is 0.1 %)."""

    numerator: int
    scale: int

    def __post_init__(self) -> None:
        if not 0 <= self.numerator < _pow10(self.scale):
            raise ValidationError("a fee rate is at least 0 and below 1", field="fee")

    @classmethod
    def parse(cls, text: str, *, field: str = "fee") -> Rate:
        """Parse ``"0"``, ``"0.0015"``."""
        numerator, scale = _split(text, field)
        if not numerator < _pow10(scale):
            raise ValidationError(f"{field} must be below 1", field=field)
        return cls(numerator, scale)

    def of(self, units: int) -> int:
        """The fee on ``units`` base units, rounded up (a fee is never rounded away)."""
        return -(-units * self.numerator // _pow10(self.scale))

    def __str__(self) -> str:
        return _normalised(self.numerator, self.scale)


ZERO_RATE = Rate(0, 0)


@dataclass(frozen=True, slots=True)
class Pair:
    """A spot market: base asset quoted in the quote asset, on a tick and lot grid.

    ``min_qty`` and ``max_qty`` are in lots. Build one from decimal strings with
    :meth:`build`.
    """

    base: Asset
    quote: Asset
    tick: Increment
    lot: Increment
    min_qty: int = 1
    max_qty: int = MAX_QTY
    maker_fee: Rate = field(default=ZERO_RATE)
    taker_fee: Rate = field(default=ZERO_RATE)
    mode: MatchingMode = MatchingMode.FIFO
    status: TradingStatus = TradingStatus.OPEN

    def __post_init__(self) -> None:
        if self.base.code == self.quote.code:
            raise ValidationError("a pair needs two different assets", field="quote")
        if (self.lot.units * _pow10(self.base.decimals)) % _pow10(self.lot.scale):
            raise ValidationError(
                f"lot {self.lot} is finer than one base unit of {self.base.code}", field="lot"
            )
        if not 1 <= self.min_qty <= self.max_qty <= MAX_QTY:
            raise ValidationError("order size bounds need 1 <= min <= max", field="min_qty")

    @classmethod
    def build(
        cls,
        base: Asset,
        quote: Asset,
        *,
        tick: str,
        lot: str,
        min_size: str | None = None,
        max_size: str | None = None,
        maker_fee: str = "0",
        taker_fee: str = "0",
        mode: str = MatchingMode.FIFO,
        status: str = TradingStatus.OPEN,
    ) -> Pair:
        """A pair from the decimal strings of a configuration file.

        ``min_size`` and ``max_size`` are base-asset quantities on the lot grid.
        """
        lot_step = Increment.parse(lot, field="lot")
        try:
            matching = MatchingMode(mode)
            trading = TradingStatus(status)
        except ValueError as exc:
            raise ValidationError(str(exc), field="mode") from None
        return cls(
            base=base,
            quote=quote,
            tick=Increment.parse(tick, field="tick"),
            lot=lot_step,
            min_qty=1 if min_size is None else lot_step.to_steps(min_size, field="min_size"),
            max_qty=MAX_QTY if max_size is None else lot_step.to_steps(max_size, field="max_size"),
            maker_fee=Rate.parse(maker_fee, field="maker_fee"),
            taker_fee=Rate.parse(taker_fee, field="taker_fee"),
            mode=matching,
            status=trading,
        )

    @property
    def symbol(self) -> str:
        """``BASE-QUOTE``, e.g. ``BTC-USD``."""
        return f"{self.base.code}-{self.quote.code}"

    def to_ticks(self, text: str, *, field: str = "price") -> int:
        """A decimal price as ticks (exact; off the grid or beyond range is refused)."""
        ticks = self.tick.to_steps(text, field=field)
        if not 0 < ticks <= MAX_PRICE:
            raise ValidationError(f"{field} must be positive and in range", field=field)
        return ticks

    def to_lots(self, text: str, *, field: str = "qty") -> int:
        """A decimal base quantity as lots, within the pair's min and max order size."""
        lots = self.lot.to_steps(text, field=field)
        if not self.min_qty <= lots <= self.max_qty:
            raise ValidationError(
                f"{field} must be between {self.lot.format(self.min_qty)} and "
                f"{self.lot.format(self.max_qty)}",
                field=field,
            )
        return lots

    def format_price(self, ticks: int) -> str:
        """Ticks as a normalised decimal price."""
        return self.tick.format(ticks)

    def format_qty(self, lots: int) -> str:
        """Lots as a normalised decimal base quantity."""
        return self.lot.format(lots)

    def base_units(self, lots: int) -> int:
        """Base-asset base units in ``lots`` (exact by construction)."""
        return lots * self.lot.units * _pow10(self.base.decimals) // _pow10(self.lot.scale)

    def lots_from_units(self, units: int) -> int:
        """Whole lots in ``units`` base units (rounded down: what a balance can cover)."""
        return units * _pow10(self.lot.scale) // (self.lot.units * _pow10(self.base.decimals))

    def quote_units(self, ticks: int, lots: int, *, rounding: Rounding = Rounding.EXACT) -> int:
        """Quote-asset base units for ``lots`` at ``ticks`` (the notional of a trade).

        Raises:
            ValidationError: ``rounding`` is EXACT and the amount is not a whole base unit.
        """
        numerator = ticks * self.tick.units * lots * self.lot.units * _pow10(self.quote.decimals)
        denominator = _pow10(self.tick.scale + self.lot.scale)
        units, rest = divmod(numerator, denominator)
        if rest and rounding is Rounding.EXACT:
            raise ValidationError(
                f"{self.format_qty(lots)} at {self.format_price(ticks)} is not a whole "
                f"{self.quote.code} base unit", field="price",
            )
        return units + 1 if rest and rounding is Rounding.UP else units

    @property
    def exact_notional(self) -> bool:
        """Whether every trade's quote amount is a whole number of the quote's base units."""
        step = self.tick.units * self.lot.units * _pow10(self.quote.decimals)
        return step % _pow10(self.tick.scale + self.lot.scale) == 0
