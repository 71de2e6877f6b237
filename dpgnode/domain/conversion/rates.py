"""Exchange rates as exact fractions: parsing, inversion, cross rates, the median of sources.

Invariants this module keeps:
- a rate is a positive :class:`~fractions.Fraction`, never a float: whole units of the
  ``quote`` asset per one whole unit of the ``base`` asset (``BTC/USD = 60000``);
- an aggregated rate is the median of *fresh* observations only (older than ``max_age`` or
  dated in the future: excluded) that are not outliers (further than ``max_deviation_bps``
  from the median of the fresh ones); with fewer such observations than ``min_sources`` it
  is refused with :class:`~dpgnode.errors.UnavailableError` -- there is no default rate;
- because it is a median, fewer than half of the sources cannot move the result outside
  the range of the honest ones (RELIABILITY.md R26).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from dpgnode.errors import UnavailableError, ValidationError

RATE_DISPLAY_DIGITS = 18
"""Fractional digits a rate is shown with; amounts, not the shown rate, are authoritative."""

_RATE = re.compile(r"^[0-9]{1,40}(?:\.[0-9]{1,40})?$")


def parse_rate(text: str, *, field: str = "rate") -> Fraction:
    """A positive decimal string (``"60000"``, ``"0.0000165"``) as an exact fraction.

    Raises:
        ValidationError: not a plain decimal, or not greater than zero.
    """
    if not isinstance(text, str) or not _RATE.fullmatch(text.strip()):
        raise ValidationError(f"{str(text)[:40]!r} is not a decimal rate", field=field)
    rate = Fraction(text.strip())
    if rate <= 0:
        raise ValidationError("a rate must be greater than zero", field=field)
    return rate


def format_rate(rate: Fraction, digits: int = RATE_DISPLAY_DIGITS) -> str:
    """``rate`` as a decimal string, truncated to ``digits`` fractional digits.

    Trailing zeros are dropped (``60000``, ``0.5``). A rate too small for ``digits`` shows as
    ``0``; callers show the exact amounts next to it.
    """
    scaled = rate.numerator * 10**digits // rate.denominator
    whole, frac = divmod(scaled, 10**digits)
    text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


@dataclass(frozen=True, slots=True)
class RateQuote:
    """One observation of a rate: ``rate`` units of ``quote`` for one unit of ``base``.

    ``source`` names where it came from (``fixed``, ``book``, ``median(fixed,book)``,
    ``cross(BTC/USD,USD/EUR)``); ``observed_at`` is when it was true.
    """

    base: str
    quote: str
    rate: Fraction
    source: str
    observed_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.rate, Fraction) or self.rate <= 0:
            raise ValidationError("a rate must be a positive fraction", field="rate")
        if self.base == self.quote:
            raise ValidationError("a rate needs two different assets", field="quote")

    def inverted(self) -> RateQuote:
        """The same observation seen from the other side (``USD/BTC = 1 / (BTC/USD)``)."""
        return RateQuote(self.quote, self.base, 1 / self.rate, self.source, self.observed_at)


def cross(first: RateQuote, second: RateQuote) -> RateQuote:
    """``A/C`` from ``A/P`` and ``P/C``: exact product, as old as the older leg."""
    if first.quote != second.base:
        raise ValidationError(
            f"cannot chain {first.base}/{first.quote} with {second.base}/{second.quote}",
            field="quote",
        )
    return RateQuote(
        first.base,
        second.quote,
        first.rate * second.rate,
        f"cross({first.base}/{first.quote},{second.base}/{second.quote})",
        min(first.observed_at, second.observed_at),
    )


def median(values: Sequence[Fraction]) -> Fraction:
    """The exact median; for an even count, the mean of the two middle values."""
    if not values:
        raise ValidationError("the median of nothing is undefined", field="rates")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True, slots=True)
class RateRules:
    """Which observations may enter a median, and when there is no rate at all."""

    max_age: timedelta
    """Observations older than this are excluded."""
    min_sources: int = 1
    """Fewer usable observations than this: no rate at all."""
    max_deviation_bps: int = 0
    """Observations further than this from the median of the fresh ones are outliers and
    excluded (0: no outlier filter). Two sources that disagree by more than twice this are
    both outliers, so a stale fixed rate and a live book refuse quotes rather than meet
    halfway."""

    def __post_init__(self) -> None:
        if self.max_age <= timedelta(0):
            raise ValidationError("max_age must be positive", field="max_age")
        if self.min_sources < 1:
            raise ValidationError("min_sources must be at least 1", field="min_sources")
        if self.max_deviation_bps < 0:
            raise ValidationError("max_deviation_bps must not be negative", field="max_deviation")

    def is_fresh(self, observation: RateQuote, now: datetime) -> bool:
        """Observed within ``max_age`` before ``now``, and not in the future."""
        return now - self.max_age <= observation.observed_at <= now

    def is_outlier(self, rate: Fraction, center: Fraction) -> bool:
        """Whether ``rate`` is further than ``max_deviation_bps`` from ``center``."""
        return bool(self.max_deviation_bps) and (
            abs(rate - center) * 10_000 > center * self.max_deviation_bps
        )


def aggregate(
    base: str,
    quote: str,
    observations: Sequence[RateQuote],
    now: datetime,
    rules: RateRules,
) -> RateQuote:
    """The median of the fresh, non-outlier observations of ``base/quote``.

    Observations of the reversed pair are inverted first; those of other pairs are ignored.
    The result is dated by its oldest input (the rate is no newer than that).

    Raises:
        UnavailableError: fewer fresh observations than ``rules.min_sources``, or fewer
            left once the outliers are excluded.
    """
    fresh: list[RateQuote] = []
    for seen in observations:
        if (seen.base, seen.quote) == (quote, base):
            seen = seen.inverted()
        if (seen.base, seen.quote) == (base, quote) and rules.is_fresh(seen, now):
            fresh.append(seen)
    pair = f"{base}/{quote}"
    if len(fresh) < rules.min_sources:
        raise UnavailableError(
            f"no fresh rate for {pair}: {len(fresh)} fresh source(s), "
            f"{rules.min_sources} needed",
            retry_after=5,
            details={"pair": pair, "fresh": len(fresh)},
        )
    center = median([seen.rate for seen in fresh])
    kept = [seen for seen in fresh if not rules.is_outlier(seen.rate, center)]
    if len(kept) < rules.min_sources:
        raise UnavailableError(
            f"the rate sources for {pair} disagree by more than "
            f"{rules.max_deviation_bps} bp: no rate until they agree",
            retry_after=5,
            details={"pair": pair, "fresh": len(fresh), "agreeing": len(kept)},
        )
    names = ",".join(sorted({seen.source for seen in kept}))
    return RateQuote(
        base,
        quote,
        median([seen.rate for seen in kept]),
        f"median({names})" if len(kept) > 1 else kept[0].source,
        min(seen.observed_at for seen in kept),
    )
