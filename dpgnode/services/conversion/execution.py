"""What accepting a quote does inside writer commands, for both routes.

Inventory route: one command checks the quote (owner, lifetime, not yet executed), the
limits against this period's usage, posts the one journal entry, stores the conversion,
bumps the usage and emits ``conversion.executed`` -- all or nothing.

Book route: the market order runs in the trading service's own command, so acceptance is
a short saga, each step idempotent:

1. ``accept``: check the quote and the limits, *reserve* the quoted amounts in the usage
   and mark the quote ``executing`` (accepted in time: a retry after this point resumes
   even once the quote's lifetime is over);
2. the market order, whose client order id is the quote's entry key (a retry finds it);
3. ``finish``: store the conversion with the amounts that really moved and replace the
   reservation by them; or ``release`` when nothing was placed (the quote is open again)
   or nothing filled (the quote failed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dpgnode.domain.conversion.limits import (
    check_limits,
    effective_limits,
    prorated_value,
    recount,
    volumes,
)
from dpgnode.domain.conversion.quote import (
    Conversion,
    Quote,
    QuoteStatus,
    Route,
    conversion_draft,
    conversion_id_for,
    user_account,
)
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.money import Amount, AssetRegistry
from dpgnode.errors import ConflictError, InsufficientFundsError, NotFoundError
from dpgnode.ports.clock import Clock
from dpgnode.ports.conversion import BookFill, ConversionStore
from dpgnode.ports.uow import Tx
from dpgnode.services.ledger import post_command


@dataclass(frozen=True, slots=True)
class Executed:
    """A conversion and whether this call made it (False: the quote was already executed)."""

    conversion: Conversion
    created: bool


class Execution:
    """The writer-command steps of accepting a quote (see the module docstring)."""

    def __init__(
        self, store: ConversionStore, assets: AssetRegistry, clock: Clock, operator_id: str
    ) -> None:
        self._store = store
        self._assets = assets
        self._clock = clock
        self._operator_id = operator_id

    def accept(self, tx: Tx, owner_id: str | None, quote_id: str) -> Executed | Quote:
        """Execute an inventory quote, or reserve a book quote and return it ``executing``.

        Raises:
            NotFoundError: no such quote, or not ``owner_id``'s.
            QuoteExpiredError: an open quote past its lifetime.
            ConflictError: a book quote whose order already failed.
            PolicyDeniedError: the conversion does not fit the user's limits.
            InsufficientFundsError: (inventory) the user's balance or the inventory is short.
        """
        quote = self._store.quote_in(tx, quote_id)
        if quote is None or (owner_id is not None and quote.owner_id != owner_id):
            raise NotFoundError(f"no quote {quote_id[:64]}", details={"field": "quoteId"})
        done = self._store.conversion_of_quote(tx, quote_id)
        if done is not None:
            return Executed(done, created=False)
        if quote.status is QuoteStatus.FAILED:
            raise ConflictError(
                f"quote {quote.id} failed: its market order filled nothing within the "
                "slippage bound; request a new quote",
                details={"quoteId": quote.id},
            )
        if quote.status is QuoteStatus.EXECUTING:
            return quote  # accepted before: resume the book route
        now = self._clock.now()
        quote.ensure_acceptable(now)
        priced = quote.priced
        limits = effective_limits(self._store.limits_in(tx, quote.owner_id), quote.owner_id)
        totals = check_limits(
            limits, self._store.usage_in(tx, quote.owner_id, now),
            volumes(priced.sell, priced.buy, quote.reference), self._assets,
        )
        self._store.save_usage(tx, quote.owner_id, now, totals)
        if quote.route is Route.BOOK:
            self._store.set_quote_status(tx, quote.id, QuoteStatus.EXECUTING, now)
            return replace(quote, status=QuoteStatus.EXECUTING, accepted_at=now)
        return self._post(tx, quote)

    def _post(self, tx: Tx, quote: Quote) -> Executed:
        priced = quote.priced
        conversion_id = conversion_id_for(quote.id)
        draft = conversion_draft(quote, conversion_id, self._operator_id)
        try:
            posted = post_command(draft)(tx)
        except InsufficientFundsError as exc:
            raise self._short(quote, exc) from exc
        conversion = Conversion(
            id=conversion_id, quote_id=quote.id, owner_id=quote.owner_id, route=quote.route,
            sell=priced.sell, fee=priced.fee, buy=priced.buy, entry_id=posted.entry.id,
            created_at=self._clock.now(),
        )
        self._store.save_conversion(tx, conversion)
        tx.emit(executed_event(conversion))
        return Executed(conversion, created=True)

    def release(self, tx: Tx, quote: Quote, status: QuoteStatus) -> None:
        """Give a book quote's reservation back; the quote becomes ``status``.

        Does nothing unless the quote is still ``executing`` (a concurrent retry may have
        released or finished it already).
        """
        current = self._store.quote_in(tx, quote.id)
        if current is None or current.status is not QuoteStatus.EXECUTING:
            return
        when = current.accepted_at or self._clock.now()
        reserved = volumes(quote.priced.sell, quote.priced.buy, quote.reference)
        used = self._store.usage_in(tx, quote.owner_id, when)
        self._store.save_usage(tx, quote.owner_id, when, recount(used, reserved, {}))
        self._store.set_quote_status(
            tx, quote.id, status, None if status is QuoteStatus.OPEN else when
        )

    def finish(self, tx: Tx, quote: Quote, fill: BookFill) -> Executed:
        """Record a book quote's conversion with what really moved."""
        done = self._store.conversion_of_quote(tx, quote.id)
        if done is not None:
            return Executed(done, created=False)
        current = self._store.quote_in(tx, quote.id)
        if current is None:
            raise NotFoundError(f"no quote {quote.id}", details={"field": "quoteId"})
        now = self._clock.now()
        when = current.accepted_at or now
        priced = quote.priced
        reserved = (
            volumes(priced.sell, priced.buy, quote.reference)
            if current.status is QuoteStatus.EXECUTING
            else {}
        )
        reference = quote.reference
        if reference is not None:  # the value of what was really sold, rounded up
            reference = prorated_value(reference, fill.sold.units, priced.sell.units)
        actual = volumes(fill.sold, fill.bought, reference)
        used = self._store.usage_in(tx, quote.owner_id, when)
        self._store.save_usage(tx, quote.owner_id, when, recount(used, reserved, actual))
        conversion = Conversion(
            id=conversion_id_for(quote.id), quote_id=quote.id, owner_id=quote.owner_id,
            route=Route.BOOK, sell=fill.sold, fee=Amount(0, fill.sold.asset), buy=fill.bought,
            entry_id=None, created_at=now, order_id=fill.order_id,
        )
        self._store.save_conversion(tx, conversion)
        tx.emit(executed_event(conversion))
        return Executed(conversion, created=True)

    def _short(self, quote: Quote, exc: InsufficientFundsError) -> InsufficientFundsError:
        account = str(exc.details.get("account", ""))
        sold = quote.priced.sell
        if account == user_account(quote.owner_id, sold.asset.code).code:
            return InsufficientFundsError(
                f"the available {sold.asset.code} balance does not cover {sold}",
                details={"account": account, "asset": sold.asset.code},
            )
        bought = quote.priced.buy
        return InsufficientFundsError(
            f"the operator's {bought.asset.code} inventory cannot cover {bought} right now",
            details={"account": account, "asset": bought.asset.code},
        )


def executed_event(conversion: Conversion) -> DomainEvent:
    """``conversion.executed``, in the transaction that records the conversion."""
    return DomainEvent(
        type="conversion.executed",
        aggregate=f"user:{conversion.owner_id}",
        payload={
            "conversionId": conversion.id, "quoteId": conversion.quote_id,
            "userId": conversion.owner_id, "route": str(conversion.route),
            "from": conversion.sell.asset.code, "to": conversion.buy.asset.code,
            "fromAmount": conversion.sell.format(), "fee": conversion.fee.format(),
            "toAmount": conversion.buy.format(), "entryId": conversion.entry_id,
            "orderId": conversion.order_id,
        },
    )
