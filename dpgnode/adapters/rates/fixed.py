"""Fixed rates set by the operator (``[[conversion.fixed_rates]]``): the ``RateSource`` port.

A configured rate is the operator's standing price, so it is always fresh: it is dated
``now`` when read. One configured direction answers both (``BTC/USD`` also answers
``USD/BTC``, exactly inverted). A pair configured twice, in either direction, is refused at
start-up rather than silently picking one.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from dpgnode.domain.conversion.rates import RateQuote, parse_rate
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import ConfigError, DpgError
from dpgnode.ports.clock import Clock


class FixedRateSource:
    """``RateSource`` over a table of operator-set rates."""

    name = "fixed"

    def __init__(self, rates: dict[tuple[str, str], Fraction], clock: Clock) -> None:
        self._rates = dict(rates)
        self._clock = clock

    @classmethod
    def from_config(
        cls, entries: Iterable[tuple[str, str, str]], assets: AssetRegistry, clock: Clock
    ) -> FixedRateSource:
        """Rates from ``(base, quote, rate)`` entries, validated against ``assets``.

        Raises:
            ConfigError: unknown asset, a pair against itself, a rate that is not a positive
                decimal string, or a pair given twice; the message names the entry.
        """
        rates: dict[tuple[str, str], Fraction] = {}
        for index, (base, quote, text) in enumerate(entries):
            where = f"conversion.fixed_rates[{index}]"
            try:
                assets.require(base, field="base")
                assets.require(quote, field="quote")
                rate = parse_rate(text)
            except DpgError as exc:
                raise ConfigError(f"{where}: {exc.message}", details={"field": where}) from exc
            if base == quote:
                raise ConfigError(f"{where}: {base}/{quote} prices an asset against itself")
            if (base, quote) in rates or (quote, base) in rates:
                raise ConfigError(f"{where}: {base}/{quote} is configured twice")
            rates[(base, quote)] = rate
        return cls(rates, clock)

    def quote(self, base: str, quote: str) -> RateQuote | None:
        direct = self._rates.get((base, quote))
        if direct is not None:
            return RateQuote(base, quote, direct, self.name, self._clock.now())
        reverse = self._rates.get((quote, base))
        if reverse is not None:
            return RateQuote(quote, base, reverse, self.name, self._clock.now()).inverted()
        return None

    def pairs(self) -> list[tuple[str, str]]:
        """The configured pairs, in configuration order."""
        return list(self._rates)
