"""Conversion use cases: rates, quotes, executing a quote.

A quote is priced from :class:`MedianRates` (never a default rate), checked against the
user's limits, stored, and can be accepted until it expires. Executing an inventory quote
is one writer command that re-checks everything that could have changed -- the quote's
owner and lifetime, the limits and their usage, both balances -- posts the one journal
entry, stores the conversion, bumps the usage counters and emits ``conversion.executed``,
all in one transaction; a book quote is one market order bounded by the quote's worst
rate (:mod:`dpgnode.services.conversion.execution`). A quote executes at most once: the
conversion id and the entry key / client order id derive from the quote id, and a second
acceptance returns the first conversion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from dpgnode.domain.conversion.pricing import (
    FixedSide,
    Priced,
    Terms,
    base_rate,
    price_buy,
    price_sell,
)
from dpgnode.domain.conversion.quote import Conversion, Quote, QuoteStatus, Route, entry_key
from dpgnode.domain.conversion.rates import RateQuote
from dpgnode.domain.money import Amount, Asset, AssetRegistry
from dpgnode.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    NotFoundError,
    PolicyDeniedError,
    UnavailableError,
    ValidationError,
)
from dpgnode.ports.clock import Clock
from dpgnode.ports.conversion import BookExecutor, ConversionStore
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.uow import Hints, Writer
from dpgnode.services.conversion.execution import Executed, Execution
from dpgnode.services.conversion.limits import ConversionLimits, check_owner
from dpgnode.services.conversion.rates import BoardLine, MedianRates

BOOK_TERMS = Terms(spread_bps=0, fee_bps=0)
"""Book-route quotes estimate at the mid rate: the operator takes no spread or fee there;
the book's taker fee and price impact come out of the slippage bound."""


@dataclass(frozen=True, slots=True)
class ConversionPolicy:
    """The operator's conversion terms, from settings."""

    terms: Terms
    lifetime: timedelta
    max_slippage_bps: int
    operator_id: str
    reference_asset: str | None
    """Currency of value limits; ``None``: value limits cannot be set."""


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    """What a user asks for: exactly one of ``from_amount`` and ``to_amount``."""

    owner_id: str
    from_asset: str
    to_asset: str
    from_amount: str | None = None
    """Decimal string: what the user sells, fee included."""
    to_amount: str | None = None
    """Decimal string: what the user wants to receive."""
    route: Route = Route.INVENTORY


class ConversionService:
    """Quotes and conversions within per-user limits, via inventory or the order book.

    ``book`` is the order book route (``None``: the node has no books; book quotes are
    refused as unavailable).
    """

    def __init__(
        self,
        writer: Writer,
        store: ConversionStore,
        rates: MedianRates,
        assets: AssetRegistry,
        clock: Clock,
        ids: IdGenerator,
        policy: ConversionPolicy,
        book: BookExecutor | None = None,
    ) -> None:
        self._limits = ConversionLimits(writer, store, assets, clock, policy.reference_asset)
        self._execution = Execution(store, assets, clock, policy.operator_id)
        self._book = book
        self._writer = writer
        self._store = store
        self._rates = rates
        self._assets = assets
        self._clock = clock
        self._ids = ids
        self._policy = policy

    @property
    def limits(self) -> ConversionLimits:
        """Limits: set by operators, shown to users, checked at quote and execution."""
        return self._limits

    @property
    def policy(self) -> ConversionPolicy:
        """The terms quotes are made with."""
        return self._policy

    # -- rates -------------------------------------------------------------------------

    def rate(self, base: str, quote: str) -> RateQuote:
        """The aggregated ``base/quote`` rate.

        Raises:
            ValidationError: unknown asset, or the same asset twice.
            UnavailableError: no fresh rate (directly or through a pivot).
        """
        self._asset(base, "from")
        self._asset(quote, "to")
        return self._rates.quote(base, quote)

    def board(self, quote: str, bases: Sequence[str] | None = None) -> list[BoardLine]:
        """Rates of ``bases`` (default: every known asset) in ``quote``."""
        self._asset(quote, "to")
        for code in bases or ():
            self._asset(code, "from")
        return self._rates.board(list(bases or self._assets), quote)

    # -- quotes ------------------------------------------------------------------------

    def quote(self, request: QuoteRequest) -> Quote:
        """Price, check against the user's limits, and store a quote.

        Raises:
            ValidationError: bad owner, asset or amount; an amount too small to convert.
            UnavailableError: no fresh rate for the pair; the book route is not available.
            PolicyDeniedError: the conversion would not fit the user's limits.
        """
        owner = check_owner(request.owner_id)
        sold = self._asset(request.from_asset, "from")
        bought = self._asset(request.to_asset, "to")
        if sold.code == bought.code:
            raise ValidationError("cannot convert an asset into itself", field="to")
        side, amount = _requested(request, sold, bought)
        terms = self._policy.terms
        if request.route is Route.BOOK:
            self._check_book(side, sold, bought)
            terms = BOOK_TERMS
        rate = self._rates.quote(sold.code, bought.code)
        priced = (
            price_sell(amount, bought, rate.rate, terms)
            if side is FixedSide.SELL
            else price_buy(amount, sold, rate.rate, terms)
        )
        now = self._clock.now()
        reference = self._reference(priced)
        self._limits.precheck(owner, priced.sell, priced.buy, reference, now)
        quote = Quote(
            id=self._ids.new("cq"), owner_id=owner, side=side, route=request.route,
            priced=priced, terms=terms, rate_source=rate.source,
            rate_observed_at=rate.observed_at, reference=reference,
            max_slippage_bps=self._policy.max_slippage_bps, created_at=now,
            expires_at=now + self._policy.lifetime,
        )
        self._writer.run(lambda tx: self._store.save_quote(tx, quote))
        return quote

    def quote_of(self, owner_id: str | None, quote_id: str) -> Quote:
        """A stored quote; ``owner_id`` given: only if it is that user's (else not found)."""
        found = self._store.quote(quote_id)
        if found is None or (owner_id is not None and found.owner_id != owner_id):
            raise NotFoundError(f"no quote {quote_id[:64]}", details={"field": "quoteId"})
        return found

    def conversion_of(self, owner_id: str | None, conversion_id: str) -> Conversion:
        """A conversion; ``owner_id`` given: only if it is that user's (else not found)."""
        found = self._store.conversion(conversion_id)
        if found is None or (owner_id is not None and found.owner_id != owner_id):
            raise NotFoundError(
                f"no conversion {conversion_id[:64]}", details={"field": "conversionId"}
            )
        return found

    # -- execution ---------------------------------------------------------------------

    def execute(self, owner_id: str | None, quote_id: str) -> Executed:
        """Accept a quote; it executes at most once, whoever retries.

        ``owner_id`` is the user accepting (``None``: the operator, for any user's quote).
        Inventory route: one journal entry at the quoted amounts. Book route: one market
        order bounded by the quote's worst rate (see :mod:`.execution`).

        Raises:
            NotFoundError: no such quote, or not the user's.
            QuoteExpiredError: the quote's lifetime is over (and it was never accepted).
            PolicyDeniedError: the conversion does not fit the user's limits; (book) nothing
                filled within the slippage bound.
            InsufficientFundsError: the user's balance or the operator's inventory is short.
        """
        hints = Hints(idempotency_keys=(entry_key(quote_id),))
        accepted = self._writer.run(
            lambda tx: self._execution.accept(tx, owner_id, quote_id), hints
        )
        if isinstance(accepted, Executed):
            return accepted
        return self._through_book(accepted)

    def _through_book(self, quote: Quote) -> Executed:
        book = self._book
        if book is None:
            raise UnavailableError(
                "the order book route is not available on this node", retry_after=60,
                details={"field": "route"},
            )
        priced = quote.priced
        try:
            fill = book.market_convert(
                quote.owner_id, priced.sell, priced.buy.asset, quote.worst_rate,
                entry_key(quote.id),
            )
        except IdempotencyKeyReusedError:
            raise  # an order under this key exists with other content: keep the reservation
        except (InsufficientFundsError, NotFoundError, ConflictError, ValidationError):
            # Nothing was placed: the reservation goes back and the quote may be retried.
            self._writer.run(lambda tx: self._execution.release(tx, quote, QuoteStatus.OPEN))
            raise
        if fill.sold.units == 0:
            self._writer.run(lambda tx: self._execution.release(tx, quote, QuoteStatus.FAILED))
            raise PolicyDeniedError(
                f"nothing filled within the slippage bound of {quote.max_slippage_bps} bp: "
                "request a new quote",
                details={"rule": "slippage", "quoteId": quote.id, "orderId": fill.order_id},
            )
        return self._writer.run(lambda tx: self._execution.finish(tx, quote, fill))

    # -- helpers -----------------------------------------------------------------------

    def _check_book(self, side: FixedSide, sold: Asset, bought: Asset) -> None:
        if self._book is None:
            raise UnavailableError(
                "the order book route is not available on this node: use the inventory route",
                retry_after=60, details={"field": "route"},
            )
        if side is not FixedSide.SELL:
            raise ValidationError(
                "the book route converts a fixed fromAmount (a market order cannot promise "
                "what it receives)", field="toAmount",
            )
        if not self._book.joins(sold.code, bought.code):
            raise ValidationError(
                f"no open order book trades {sold.code} against {bought.code}", field="route"
            )

    def _asset(self, code: str, field: str) -> Asset:
        asset = self._assets.get(code) if isinstance(code, str) else None
        if asset is None:
            raise ValidationError(f"unknown asset {str(code)[:20]!r}", field=field)
        return asset

    def _reference(self, priced: Priced) -> Amount | None:
        """The conversion's value in the reference currency: what value limits count."""
        code = self._policy.reference_asset
        reference = self._assets.get(code) if code else None
        if reference is None:
            return None
        sell = priced.sell
        if sell.asset.code == reference.code:
            return sell
        if priced.buy.asset.code == reference.code:
            rate = priced.mid_rate
        else:
            try:
                rate = self._rates.quote(sell.asset.code, reference.code).rate
            except UnavailableError:
                return None  # value limits, if any, then refuse the quote (limits.precheck)
        # Rounded up: a limit counts at least the full value.
        return Amount(math.ceil(sell.units * base_rate(rate, sell.asset, reference)), reference)


def _requested(request: QuoteRequest, sold: Asset, bought: Asset) -> tuple[FixedSide, Amount]:
    given = [a for a in (request.from_amount, request.to_amount) if a is not None]
    if len(given) != 1:
        raise ValidationError(
            "give exactly one of fromAmount (what you sell) and toAmount (what you receive)",
            field="fromAmount",
        )
    if request.from_amount is not None:
        return FixedSide.SELL, Amount.parse(request.from_amount, sold, field="fromAmount")
    return FixedSide.BUY, Amount.parse(str(request.to_amount), bought, field="toAmount")
