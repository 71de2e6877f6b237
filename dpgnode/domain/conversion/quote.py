"""Quotes and conversions, and the one journal entry that executes a quote.

A quote is a priced offer locked for its lifetime; accepting it in time executes it as
exactly one balanced journal entry against the operator's inventory:

==================================  =============  ============================
account                             asset          posting
==================================  =============  ============================
``user:U:FROM:available``           from           ``-sell``
``operator:OP:FROM:inventory``      from           ``+(sell - fee)``
``operator:OP:FROM:fees``           from           ``+fee`` (left out when 0)
``operator:OP:TO:inventory``        to             ``-buy``
``user:U:TO:available``             to             ``+buy``
==================================  =============  ============================

Σ per asset is zero by construction (``ensure_balanced`` checks it again). Neither the
user's available account nor the inventory may go negative, so a short balance on either
side refuses the whole entry. The entry's idempotency key is derived from the quote id:
a quote can be executed at most once, whoever retries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fractions import Fraction

from dpgnode.domain.conversion.pricing import BPS, FixedSide, Priced, Terms, base_rate
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.domain.money import Amount
from dpgnode.errors import ConflictError, ValidationError


class Route(StrEnum):
    """Where a conversion's counterparty is: the operator's inventory, or the order book."""

    INVENTORY = "inventory"
    BOOK = "book"


class QuoteStatus(StrEnum):
    """``open`` until executed; an open quote past ``expires_at`` can no longer be accepted.

    A book-route quote is ``executing`` between its acceptance (in time) and the record of
    its market order's result; ``failed`` when its order filled nothing within the bound.
    """

    OPEN = "open"
    EXECUTING = "executing"
    EXECUTED = "executed"
    FAILED = "failed"


class QuoteExpiredError(ConflictError):
    """The quote's lifetime ended before it was accepted: ask for a new quote."""

    code = "quote_expired"


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced, time-limited offer to one user."""

    id: str
    owner_id: str
    """The user (ledger owner ``user:<owner_id>``) the quote was made for."""
    side: FixedSide
    route: Route
    priced: Priced
    terms: Terms
    rate_source: str
    rate_observed_at: datetime
    reference: Amount | None
    """The conversion's value in the reference currency (for value limits), if known."""
    max_slippage_bps: int
    created_at: datetime
    expires_at: datetime
    status: QuoteStatus = QuoteStatus.OPEN
    accepted_at: datetime | None = None
    """When a book-route quote was accepted (its limit usage counts in that period)."""

    def __post_init__(self) -> None:
        if self.expires_at <= self.created_at:
            raise ValidationError("a quote must expire after it is made", field="expires_at")

    @property
    def worst_rate(self) -> Fraction:
        """The least the user accepts per unit sold, whole units, fees included.

        Inventory route: the quoted amounts themselves. Book route: the mid rate less the
        slippage bound; the market order's protection price enforces it.
        """
        priced = self.priced
        if self.route is Route.INVENTORY:
            return Fraction(
                priced.buy.units * 10**priced.sell.asset.decimals,
                priced.sell.units * 10**priced.buy.asset.decimals,
            )
        return priced.mid_rate * (BPS - self.max_slippage_bps) / BPS

    @property
    def min_buy(self) -> Amount:
        """The least the user receives: ``buy`` (inventory), or at the worst rate (book)."""
        priced = self.priced
        if self.route is Route.INVENTORY:
            return priced.buy
        rate = base_rate(self.worst_rate, priced.sell.asset, priced.buy.asset)
        return Amount(math.floor(priced.sell.units * rate), priced.buy.asset)

    def is_expired(self, now: datetime) -> bool:
        """Whether ``now`` is at or past the end of the quote's lifetime."""
        return now >= self.expires_at

    def ensure_acceptable(self, now: datetime) -> None:
        """Refuse an expired quote.

        Raises:
            QuoteExpiredError: ``now`` is at or past ``expires_at``.
        """
        if self.is_expired(now):
            raise QuoteExpiredError(
                f"quote {self.id} expired at {self.expires_at.isoformat()}: request a new quote",
                details={"quoteId": self.id, "expiredAt": self.expires_at.isoformat()},
            )


@dataclass(frozen=True, slots=True)
class Conversion:
    """An executed quote: what moved, and what moved it.

    Inventory route: the one journal entry ``entry_id``. Book route: the market order
    ``order_id``, whose trades settled in the ledger (``fee`` is then zero: the book's
    taker fee is inside ``sell`` and ``buy``).
    """

    id: str
    quote_id: str
    owner_id: str
    route: Route
    sell: Amount
    fee: Amount
    buy: Amount
    entry_id: str | None
    created_at: datetime
    order_id: str | None = None


def conversion_id_for(quote_id: str) -> str:
    """The id the conversion of ``quote_id`` gets: derived, so every retry names the same one."""
    _, _, suffix = quote_id.partition("_")
    return f"cv_{suffix or quote_id}"


def entry_key(quote_id: str) -> str:
    """Idempotency key of the entry executing ``quote_id`` (one entry per quote, ever)."""
    return f"conversion:{quote_id}"


def user_account(owner_id: str, asset: str) -> AccountRef:
    """The user's available account in ``asset``."""
    return AccountRef(OwnerType.USER, owner_id, asset, AccountKind.AVAILABLE)


def operator_account(operator_id: str, asset: str, kind: AccountKind) -> AccountRef:
    """One of the operator's accounts in ``asset`` (``inventory`` or ``fees``)."""
    return AccountRef(OwnerType.OPERATOR, operator_id, asset, kind)


def conversion_draft(quote: Quote, conversion_id: str, operator_id: str) -> EntryDraft:
    """The journal entry executing ``quote`` against the operator's inventory."""
    priced = quote.priced
    sold, bought = priced.sell.asset.code, priced.buy.asset.code
    postings = [
        Posting(user_account(quote.owner_id, sold), -priced.sell.units),
        Posting(operator_account(operator_id, sold, AccountKind.INVENTORY), priced.net.units),
    ]
    if priced.fee.units:
        postings.append(
            Posting(operator_account(operator_id, sold, AccountKind.FEES), priced.fee.units)
        )
    postings += [
        Posting(operator_account(operator_id, bought, AccountKind.INVENTORY), -priced.buy.units),
        Posting(user_account(quote.owner_id, bought), priced.buy.units),
    ]
    return EntryDraft(
        idempotency_key=entry_key(quote.id),
        postings=tuple(postings),
        memo=f"conversion {priced.sell} -> {priced.buy}",
        metadata={
            "kind": "conversion",
            "conversionId": conversion_id,
            "quoteId": quote.id,
            "route": str(quote.route),
        },
    )
