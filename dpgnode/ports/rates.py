from __future__ import annotations

from fractions import Fraction
from typing import Protocol

from dpgnode.domain.conversion.rates import RateQuote


class RateSource(Protocol):
    """Where exchange rates come from: configured fixed rates, the order book, a rate feed.

    Contract:
    - ``quote(base, quote)`` returns the source's current rate, whole units of ``quote``
      per one whole unit of ``base``, as an exact fraction (never a float), dated by when it
      was observed; ``None`` when the source has no rate for that pair;
    - it never invents a rate: a source that cannot answer right now raises
      ``UnavailableError`` (the aggregator then uses the other sources, or refuses);
    - it is cheap and does no blocking I/O of more than a few milliseconds: a source that
      talks to the network keeps its own cache, refreshed in the background.
    """

    name: str
    """Short stable name shown with every rate (``fixed``, ``book``)."""

    def quote(self, base: str, quote: str) -> RateQuote | None:
        """The current ``base/quote`` rate, or ``None`` if this source has none.

        Raises:
            UnavailableError: the source failed (transient).
        """
        ...


class MidPriceSource(Protocol):
    """The order book's view of a market: what the trading service can offer conversion.

    Contract: ``mid_price(base, quote)`` is the mean of the best bid and the best ask of the
    open ``base-quote`` book, in whole units of ``quote`` per whole unit of ``base``, exact;
    ``None`` when there is no such book, it is halted, or either side is empty.
    """

    def mid_price(self, base: str, quote: str) -> Fraction | None:
        """The book's mid price, or ``None`` when there is no two-sided open book."""
        ...
