from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Protocol

from dpgnode.domain.conversion.limits import Limit, LimitKey
from dpgnode.domain.conversion.quote import Conversion, Quote, QuoteStatus
from dpgnode.domain.money import Amount, Asset
from dpgnode.ports.uow import Tx


class ConversionStore(Protocol):
    """Quotes, conversions, limits and limit usage.

    Contract:
    - methods taking a ``Tx`` run inside that writer command: their writes commit or roll
      back with the command's ledger entries and events, and their reads see the command's
      own writes and those of earlier commands (writer transactions are serialized, so a
      read-check-write of usage inside one command cannot interleave with another's);
    - the other methods read committed data only;
    - a quote is saved once; it becomes ``executed`` only in the command that saves its
      conversion (from ``open``, or ``executing`` for the book route); a quote has at most
      one conversion (a second ``save_conversion`` for it raises ``ConflictError``).
    """

    def save_quote(self, tx: Tx, quote: Quote) -> None:
        """Insert a new quote."""
        ...

    def quote_in(self, tx: Tx, quote_id: str) -> Quote | None:
        """The quote as this transaction sees it."""
        ...

    def conversion_of_quote(self, tx: Tx, quote_id: str) -> Conversion | None:
        """The conversion that executed ``quote_id``, if any."""
        ...

    def save_conversion(self, tx: Tx, conversion: Conversion) -> None:
        """Insert ``conversion`` and mark its quote executed.

        Raises:
            ConflictError: the quote already has a conversion.
        """
        ...

    def set_quote_status(
        self, tx: Tx, quote_id: str, status: QuoteStatus, accepted_at: datetime | None
    ) -> None:
        """Set a book-route quote's status: ``executing``, back to ``open``, or ``failed``.

        ``accepted_at`` is when it was accepted (``None`` when it goes back to ``open``).
        """
        ...

    def limits_in(self, tx: Tx, owner_id: str) -> Sequence[Limit]:
        """``owner_id``'s own limits and the defaults (owner ``*``)."""
        ...

    def usage_in(self, tx: Tx, owner_id: str, now: datetime) -> dict[LimitKey, int]:
        """``owner_id``'s usage in the periods that contain ``now`` (absent: zero)."""
        ...

    def save_usage(
        self, tx: Tx, owner_id: str, now: datetime, totals: Mapping[LimitKey, int]
    ) -> None:
        """Set ``owner_id``'s usage in the periods containing ``now`` to ``totals``."""
        ...

    def save_limit(self, tx: Tx, limit: Limit, now: datetime) -> None:
        """Insert or replace the limit of ``limit.owner_id`` for ``limit.key``."""
        ...

    def delete_limit(self, tx: Tx, owner_id: str, key: LimitKey) -> bool:
        """Remove a limit; whether there was one."""
        ...

    def quote(self, quote_id: str) -> Quote | None:
        """A committed quote."""
        ...

    def conversion(self, conversion_id: str) -> Conversion | None:
        """A committed conversion."""
        ...

    def limits(self, owner_id: str | None) -> Sequence[Limit]:
        """``owner_id``'s own limits and the defaults; every limit when ``None``."""
        ...

    def usage(self, owner_id: str, now: datetime) -> dict[LimitKey, int]:
        """Committed usage of ``owner_id`` in the periods that contain ``now``."""
        ...


@dataclass(frozen=True, slots=True)
class BookFill:
    """What a market order placed for a conversion did."""

    order_id: str
    sold: Amount
    """What left the user's available balance, fees included."""
    bought: Amount
    """What the user received."""
    entry_ids: tuple[str, ...]
    """The journal entries that settled it (hold, trades, release)."""


class BookExecutor(Protocol):
    """Converts through the order book: a market order bounded by a worst acceptable rate.

    Contract (the trading service satisfies it through ``TradingBookExecutor``):
    - ``joins(sell, buy)`` tells whether an open book trades one asset against the other;
    - ``market_convert`` sells at most ``sell`` (fees included) of the user's available
      balance for ``buy_asset`` as one market order whose protection price keeps every fill
      at or better than ``worst_rate`` (whole units of ``buy_asset`` per whole unit sold,
      fees included; the fee's rounding may cost less than one base unit); what cannot fill
      within that bound, or does not make a whole lot, stays with the user;
    - it is idempotent by ``idempotency_key``: a retry returns the first order's result
      (with ``entry_ids`` empty when it was placed before);
    - it raises ``InsufficientFundsError`` when the user lacks the order's hold,
      ``NotFoundError`` when no open book joins the two assets, ``ConflictError`` when the
      book is halted and ``ValidationError`` when the amount makes no valid order; in each
      case nothing was placed.
    """

    def joins(self, sell_asset: str, buy_asset: str) -> bool:
        """Whether an open book trades ``sell_asset`` against ``buy_asset``."""
        ...

    def market_convert(
        self,
        owner_id: str,
        sell: Amount,
        buy_asset: Asset,
        worst_rate: Fraction,
        idempotency_key: str,
    ) -> BookFill:
        """Sell up to ``sell`` for ``buy_asset`` at no worse than ``worst_rate``."""
        ...
