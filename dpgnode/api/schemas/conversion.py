"""Conversion bodies. Amounts and rates are decimal strings; times are unix seconds.

Rates are shown truncated to 18 fractional digits; the amounts are exact and are what the
ledger moves.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Literal

import msgspec

from dpgnode.api.schemas.base import Input, Output
from dpgnode.domain.conversion.limits import LimitStatus
from dpgnode.domain.conversion.quote import Conversion, Quote, QuoteStatus
from dpgnode.domain.conversion.rates import RateQuote, format_rate
from dpgnode.domain.money import Amount, AssetRegistry
from dpgnode.services.conversion import BoardLine


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


class QuoteRequestBody(Input):
    from_asset: str = msgspec.field(name="from")
    """Asset code the user sells (``BTC``)."""
    to_asset: str = msgspec.field(name="to")
    """Asset code the user receives (``USD``)."""
    from_amount: str | None = None
    """What the user sells, fee included; give this or ``toAmount``."""
    to_amount: str | None = None
    """What the user receives exactly; give this or ``fromAmount``."""
    route: Literal["inventory", "book"] | None = None
    """``inventory`` (default): against the operator's inventory at exactly the quoted
    amounts. ``book``: one market order on the order book, no worse than ``minToAmount``
    (``fromAmount`` only)."""


class ConvertRequestBody(Input):
    quote_id: str
    """The quote to accept, before it expires."""


class SetLimitBody(Input):
    asset: str
    period: Literal["day", "month"]
    """Calendar day or month, in UTC."""
    limit: str | None
    """Most per period, a decimal string in ``asset``; null removes the limit."""
    user_id: str | None = None
    """The user; null: the default limit of every user without their own."""
    kind: Literal["asset", "value"] = "asset"
    """``asset``: volume of ``asset`` converted (either side); ``value``: value of every
    conversion in the reference currency (then ``asset`` is that currency)."""


class AmountData(Output):
    asset: str
    amount: str

    @classmethod
    def of(cls, amount: Amount) -> AmountData:
        return cls(asset=amount.asset.code, amount=amount.format())


class RateData(Output):
    base: str
    quote: str
    rate: str
    """Units of ``quote`` per one ``base`` (median of the fresh sources)."""
    source: str
    observed_time: int

    @classmethod
    def of(cls, rate: RateQuote) -> RateData:
        return cls(
            base=rate.base, quote=rate.quote, rate=format_rate(rate.rate), source=rate.source,
            observed_time=_unix(rate.observed_at),
        )


class UnavailableRateData(Output):
    base: str
    quote: str
    reason: str


class RatesData(Output):
    rates: list[RateData]
    unavailable: list[UnavailableRateData]
    """Assets without a fresh rate: they cannot be quoted now."""

    @classmethod
    def of(cls, lines: list[BoardLine]) -> RatesData:
        return cls(
            rates=[RateData.of(line.rate) for line in lines if line.rate is not None],
            unavailable=[
                UnavailableRateData(base=line.base, quote=line.quote, reason=line.problem)
                for line in lines
                if line.rate is None
            ],
        )


class QuoteData(Output):
    id: str
    user_id: str
    status: str
    """``open`` (acceptable until ``expiresTime``), ``expired``, ``executing`` (book route,
    accepted in time), ``executed``, or ``failed`` (book route: nothing filled in the bound)."""
    route: str
    fixed: str
    """Which amount the user fixed: ``sell`` (fromAmount) or ``buy`` (toAmount)."""
    from_: str = msgspec.field(name="from")
    to: str
    from_amount: str
    """Debited from the user, fee included."""
    to_amount: str
    """Credited to the user, exactly."""
    fee: str
    """Part of ``fromAmount`` kept as fee (in ``from``)."""
    fee_bps: int
    spread_bps: int
    spread: str
    """What the spread keeps, in ``to``, valued at ``midRate``."""
    mid_rate: str
    rate: str
    """Client rate after the spread, before the fee."""
    effective_rate: str
    """``toAmount / fromAmount``: what the user really gets per unit sold."""
    min_to_amount: str
    """The least the user receives: ``toAmount`` (inventory); at the slippage bound (book)."""
    worst_rate: str
    """``minToAmount``'s rate per unit sold, fees included."""
    rate_source: str
    rate_observed_time: int
    reference_value: AmountData | None
    """The conversion's value in the reference currency (what value limits count)."""
    max_slippage_bps: int
    created_time: int
    expires_time: int

    @classmethod
    def of(cls, quote: Quote, now: datetime) -> QuoteData:
        priced = quote.priced
        status = str(quote.status)
        if quote.status is QuoteStatus.OPEN and quote.is_expired(now):
            status = "expired"
        sell, buy = priced.sell, priced.buy
        effective = Fraction(
            buy.units * 10**sell.asset.decimals, sell.units * 10**buy.asset.decimals
        )
        return cls(
            id=quote.id, user_id=quote.owner_id, status=status,
            route=str(quote.route), fixed=str(quote.side), from_=sell.asset.code,
            to=buy.asset.code, from_amount=sell.format(), to_amount=buy.format(),
            fee=priced.fee.format(), fee_bps=quote.terms.fee_bps,
            spread_bps=quote.terms.spread_bps, spread=priced.spread.format(),
            mid_rate=format_rate(priced.mid_rate), rate=format_rate(priced.rate),
            effective_rate=format_rate(effective),
            min_to_amount=quote.min_buy.format(), worst_rate=format_rate(quote.worst_rate),
            rate_source=quote.rate_source, rate_observed_time=_unix(quote.rate_observed_at),
            reference_value=AmountData.of(quote.reference) if quote.reference else None,
            max_slippage_bps=quote.max_slippage_bps, created_time=_unix(quote.created_at),
            expires_time=_unix(quote.expires_at),
        )


class ConversionData(Output):
    id: str
    quote_id: str
    user_id: str
    route: str
    from_: str = msgspec.field(name="from")
    to: str
    from_amount: str
    to_amount: str
    fee: str
    entry_id: str | None
    """Inventory route: the one journal entry that moved the value."""
    order_id: str | None
    """Book route: the market order whose trades moved it."""
    created_time: int

    @classmethod
    def of(cls, conversion: Conversion) -> ConversionData:
        return cls(
            id=conversion.id, quote_id=conversion.quote_id, user_id=conversion.owner_id,
            route=str(conversion.route), from_=conversion.sell.asset.code,
            to=conversion.buy.asset.code, from_amount=conversion.sell.format(),
            to_amount=conversion.buy.format(), fee=conversion.fee.format(),
            entry_id=conversion.entry_id, order_id=conversion.order_id,
            created_time=_unix(conversion.created_at),
        )


class LimitData(Output):
    user_id: str
    """The user, or ``*`` for the default of every user without their own."""
    kind: str
    asset: str
    period: str
    limit: str | None
    """Null when the limit was removed."""


class LimitStatusData(Output):
    kind: str
    asset: str
    period: str
    limit: str
    used: str
    remaining: str
    is_default: bool
    """Whether this is the default limit (no limit of the user's own)."""
    period_start_time: int
    resets_time: int

    @classmethod
    def of(cls, status: LimitStatus, assets: AssetRegistry) -> LimitStatusData:
        limit = status.limit

        def text(units: int) -> str:
            return assets.format(units, limit.asset)

        return cls(
            kind=str(limit.kind), asset=limit.asset, period=str(limit.period),
            limit=text(limit.units), used=text(status.used), remaining=text(status.remaining),
            is_default=limit.is_default, period_start_time=_unix(status.period_start),
            resets_time=_unix(status.resets_at),
        )


class LimitsData(Output):
    user_id: str
    limits: list[LimitStatusData]
