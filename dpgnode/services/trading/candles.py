"""OHLCV candles: which interval a trade falls in and how it changes a candle. Pure.

Intervals are aligned to UTC: a 5-minute candle starts at a minute divisible by 5, an hourly
one on the hour, a daily one at midnight UTC. Prices are compared exactly (as fractions of
their decimal strings), never as floats.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from dpgnode.errors import ValidationError
from dpgnode.ports.trading import Candle

INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
"""Candle intervals the node keeps, by name."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def interval_of(name: str, *, field: str = "interval") -> timedelta:
    """The interval called ``name``.

    Raises:
        ValidationError: not one of :data:`INTERVALS`.
    """
    interval = INTERVALS.get(name)
    if interval is None:
        raise ValidationError(f"interval must be one of {', '.join(INTERVALS)}", field=field)
    return interval


def bucket_start(at: datetime, interval: timedelta) -> datetime:
    """Start of the candle of ``interval`` that contains ``at``."""
    elapsed = at.astimezone(UTC) - _EPOCH
    return _EPOCH + (elapsed // interval) * interval


def add_trade(
    candle: Candle | None,
    key: tuple[str, str, datetime],
    price: str,
    volume: int,
    quote_volume: int,
) -> Candle:
    """``candle`` (``None``: a new one for ``key = (pair, interval, start)``) after a trade."""
    if candle is None:
        pair, interval, start = key
        return Candle(pair, interval, start, price, price, price, price, volume, quote_volume, 1)
    value = Fraction(price)
    return replace(
        candle,
        high=price if value > Fraction(candle.high) else candle.high,
        low=price if value < Fraction(candle.low) else candle.low,
        close=price,
        volume=candle.volume + volume,
        quote_volume=candle.quote_volume + quote_volume,
        trades=candle.trades + 1,
    )
