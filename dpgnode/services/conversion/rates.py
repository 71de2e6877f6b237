"""Aggregated rates: the median of every fresh source, crossed through a pivot if needed.

:class:`MedianRates` is itself a ``RateSource`` (so a later rate service can stand in for
it) with one rule above all: it never makes a rate up. A pair with fewer fresh observations
than required is refused with ``UnavailableError``, both directly and through every pivot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dpgnode.domain.conversion.rates import RateQuote, RateRules, aggregate, cross
from dpgnode.errors import UnavailableError, ValidationError
from dpgnode.ports.clock import Clock
from dpgnode.ports.rates import MidPriceSource, RateSource


class BookMidRateSource:
    """``RateSource`` over the order book's mid price (the trading service's markets).

    A book quotes ``base-quote`` one way; the reverse pair is answered by exact inversion.
    """

    name = "book"

    def __init__(self, books: MidPriceSource, clock: Clock) -> None:
        self._books = books
        self._clock = clock

    def quote(self, base: str, quote: str) -> RateQuote | None:
        """The book's mid price of ``base/quote`` (or of the reverse book, inverted)."""
        direct = self._books.mid_price(base, quote)
        if direct is not None and direct > 0:
            return RateQuote(base, quote, direct, self.name, self._clock.now())
        reverse = self._books.mid_price(quote, base)
        if reverse is not None and reverse > 0:
            return RateQuote(quote, base, reverse, self.name, self._clock.now()).inverted()
        return None


@dataclass(frozen=True, slots=True)
class BoardLine:
    """One asset on the rate board: its aggregated rate, or why there is none."""

    base: str
    quote: str
    rate: RateQuote | None
    problem: str = ""


class MedianRates:
    """The ``RateSource`` the conversion service prices from (see the module docstring)."""

    name = "median"

    def __init__(
        self,
        sources: Sequence[RateSource],
        clock: Clock,
        rules: RateRules,
        pivots: Sequence[str] = (),
    ) -> None:
        self._sources = tuple(sources)
        self._clock = clock
        self._rules = rules
        self._pivots = tuple(pivots)

    @property
    def source_names(self) -> tuple[str, ...]:
        """Names of the sources consulted, in order."""
        return tuple(source.name for source in self._sources)

    def quote(self, base: str, quote: str) -> RateQuote:
        """The median rate of ``base/quote``, direct or crossed through the first pivot that works.

        Raises:
            ValidationError: ``base`` and ``quote`` are the same asset.
            UnavailableError: no fresh enough rate, directly or through any pivot.
        """
        if base == quote:
            raise ValidationError("a rate needs two different assets", field="quote")
        observed = self._observe(base, quote)
        now = self._clock.now()
        try:
            return aggregate(base, quote, observed, now, self._rules)
        except UnavailableError as direct:
            for pivot in self._pivots:
                crossed = self._through(base, pivot, quote, now)
                if crossed is not None:
                    return crossed
            raise direct

    def board(self, bases: Sequence[str], quote: str) -> list[BoardLine]:
        """The rate of every asset of ``bases`` in ``quote``; a failure is a line, not an error."""
        lines: list[BoardLine] = []
        for base in bases:
            if base == quote:
                continue
            try:
                lines.append(BoardLine(base, quote, self.quote(base, quote)))
            except UnavailableError as exc:
                lines.append(BoardLine(base, quote, None, exc.message))
        return lines

    def _through(self, base: str, pivot: str, quote: str, now: datetime) -> RateQuote | None:
        if pivot in (base, quote):
            return None
        try:
            first = aggregate(base, pivot, self._observe(base, pivot), now, self._rules)
            second = aggregate(pivot, quote, self._observe(pivot, quote), now, self._rules)
        except UnavailableError:
            return None
        return cross(first, second)

    def _observe(self, base: str, quote: str) -> list[RateQuote]:
        observed: list[RateQuote] = []
        for source in self._sources:
            try:
                # A source may know a market one way only; aggregate() inverts the reverse.
                seen = source.quote(base, quote) or source.quote(quote, base)
            except UnavailableError:
                continue  # a failing source is simply absent: the others decide, or nobody
            if seen is not None:
                observed.append(seen)
        return observed
