"""What the trading service needs from storage: pairs' state, orders, trades, candles, positions.

Records here are the service's rows as plain values. Prices are exact decimal strings (quote
per whole base unit, as the pair formats them); quantities are base units and values, fees
and costs quote units, all ``int``.

Write methods take the writer's :class:`~dpgnode.ports.uow.Tx` as their first argument and
run inside that command's transaction: they commit or roll back together with the ledger
entries of the same command (contract of ``Tx``). Reads inside a command also take the
``Tx`` and see the command's own writes and those of earlier commands of its batch. Read
methods without a ``Tx`` see committed data only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from dpgnode.domain.events import OutboxEvent
from dpgnode.ports.uow import Tx


class Side(StrEnum):
    """Which way an order trades the base asset."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """Limit orders carry a price; market orders take what the book offers.

    Stop orders (``stop_loss``, ``take_profit``) wait for the last trade price to reach
    their ``trigger_price``, then become a limit order at ``price`` (stop-limit: ``tif``
    ``GTC``) or a market order (stop-market: ``tif`` ``IOC``, ``price`` the optional
    protection bound, the worst price it may trade at).
    """

    LIMIT = "limit"
    MARKET = "market"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"

    @property
    def is_stop(self) -> bool:
        """Whether orders of this type wait for a trigger."""
        return self is OrderType.STOP_LOSS or self is OrderType.TAKE_PROFIT


class OrderStatus(StrEnum):
    """Where an order is in its life.

    ``open`` orders rest in the book (possibly partly filled), ``pending_trigger`` stops
    wait for their trigger (their hold is taken); the others are final.
    """

    PENDING_TRIGGER = "pending_trigger"
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class PairStatus(StrEnum):
    """Whether an operator-opened pair accepts new orders."""

    OPEN = "open"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class PairState:
    """What the database knows of a pair the operator opened.

    ``seq`` counts changes of the book (the WebSocket delta sequence); ``version`` names the
    command that made the last change, so a matcher whose in-memory book carries another
    version knows it must rebuild it.
    """

    symbol: str
    status: PairStatus
    seq: int
    version: str
    last_price: str | None
    created_at: datetime
    updated_at: datetime
    priority: int = 0
    """The last time priority given to an order of the pair: each new order, placed stop
    and triggered stop takes the next one, in the order the writer ran them (rebuilding the
    book from stored rows restores resting orders and pending stops in this order)."""

    def next_priority(self) -> PairState:
        """This state with the next order priority taken (``priority`` is the one taken)."""
        return replace(self, priority=self.priority + 1)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as stored; ``remaining = quantity - filled`` rests while ``status`` is open."""

    id: str
    pair: str
    user_id: str
    client_order_id: str | None
    side: Side
    type: OrderType
    tif: str
    post_only: bool
    price: str | None
    quantity: int
    filled: int
    quote_filled: int
    """Quote units of all fills (their notional, before fees)."""
    maker_quote: int
    """The part of ``quote_filled`` filled as the resting (maker) order."""
    fee_paid: int
    status: OrderStatus
    reason: str | None
    hold_id: str | None
    priority: int
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    trigger_price: str | None = None
    """A stop's trigger (last trade price), else ``None``."""

    @property
    def is_live(self) -> bool:
        """Whether the order still holds funds: resting (``open``) or a pending stop."""
        return self.status is OrderStatus.OPEN or self.status is OrderStatus.PENDING_TRIGGER

    @property
    def remaining(self) -> int:
        """Base units not yet filled (what rests while the order is open)."""
        return self.quantity - self.filled


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One trade; ``seq`` is assigned when stored (0 before) and orders trades for paging."""

    id: str
    pair: str
    price: str
    quantity: int
    value: int
    buy_order_id: str
    sell_order_id: str
    buyer_id: str
    seller_id: str
    taker_side: Side
    buyer_fee: int
    seller_fee: int
    entry_id: str
    created_at: datetime
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV of one pair over ``[start, start + interval)``.

    ``volume`` is in base units, ``quote_volume`` in quote units.
    """

    pair: str
    interval: str
    start: datetime
    open: str
    high: str
    low: str
    close: str
    volume: int
    quote_volume: int
    trades: int


@dataclass(frozen=True, slots=True)
class Position:
    """A user's net position in one pair, by the average-cost method.

    ``quantity`` is signed base units (negative: net sold); ``cost`` the signed quote units
    paid for it (negative for a short: what its sale brought); ``realized_pnl`` and ``fees``
    are quote units.
    """

    user_id: str
    pair: str
    quantity: int
    cost: int
    realized_pnl: int
    fees: int
    updated_at: datetime


class TradingStore(Protocol):
    """Storage of the trading service.

    Contract: every method with a ``tx`` argument runs in that command's transaction and
    its writes are kept only if the command and its batch commit. ``insert_order`` of an id
    or a ``(user_id, client_order_id)`` that exists raises ``ConflictError``.
    """

    # -- inside a writer command ----------------------------------------------------------

    def pair_state(self, tx: Tx, symbol: str) -> PairState | None:
        """The pair's stored state as this transaction sees it, or ``None`` if never opened."""
        ...

    def save_pair_state(self, tx: Tx, state: PairState) -> None:
        """Insert or update the pair's state."""
        ...

    def open_orders(self, tx: Tx, symbol: str) -> Sequence[OrderRecord]:
        """The pair's live orders (open, and pending stops) in ``priority`` order."""
        ...

    def order_for_update(self, tx: Tx, order_id: str) -> OrderRecord | None:
        """The order as this transaction sees it."""
        ...

    def order_by_client_id(self, tx: Tx, user_id: str, client_order_id: str) -> OrderRecord | None:
        """The user's order with this client order id, as this transaction sees it."""
        ...

    def insert_order(self, tx: Tx, order: OrderRecord) -> None:
        """Store a new order."""
        ...

    def update_orders(self, tx: Tx, orders: Sequence[OrderRecord]) -> None:
        """Store the new fill, fee, status, reason and priority of existing orders."""
        ...

    def insert_trades(self, tx: Tx, trades: Sequence[TradeRecord]) -> Sequence[TradeRecord]:
        """Store new trades; returns them with the ``seq`` the database assigned."""
        ...

    def candles_for_update(
        self, tx: Tx, pair: str, keys: Sequence[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], Candle]:
        """The stored candles of ``pair`` among ``(interval, start)`` keys."""
        ...

    def save_candles(self, tx: Tx, candles: Sequence[Candle], *, new: bool) -> None:
        """Insert (``new``) or update candles."""
        ...

    def positions_for_update(
        self, tx: Tx, pair: str, user_ids: Sequence[str]
    ) -> dict[str, Position]:
        """The stored positions in ``pair`` of the given users."""
        ...

    def save_positions(self, tx: Tx, positions: Sequence[Position], *, new: bool) -> None:
        """Insert (``new``) or update positions."""
        ...

    def due_orders(self, tx: Tx, now: datetime, limit: int) -> Sequence[OrderRecord]:
        """Open orders whose ``expires_at`` is at or before ``now``, oldest expiry first."""
        ...

    # -- committed reads ------------------------------------------------------------------

    def earliest_expiry(self) -> datetime | None:
        """The soonest ``expires_at`` of an open order (committed state), if any."""
        ...

    def pair_states(self) -> dict[str, PairState]:
        """Every opened pair's state."""
        ...

    def order(self, order_id: str) -> OrderRecord | None:
        """One order."""
        ...

    def orders(
        self,
        *,
        user_id: str | None = None,
        pair: str | None = None,
        status: OrderStatus | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> Sequence[OrderRecord]:
        """Orders, newest first, optionally filtered; ``before`` pages by order id."""
        ...

    def book_orders(self, pair: str) -> Sequence[OrderRecord]:
        """The pair's open orders in time priority (committed state)."""
        ...

    def book_snapshot(self, pair: str) -> tuple[PairState | None, Sequence[OrderRecord]]:
        """The pair's state and open orders (time priority) as of one committed state."""
        ...

    def trades(
        self,
        *,
        user_id: str | None = None,
        pair: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[TradeRecord]:
        """Trades newest first; with ``user_id`` those where the user bought or sold.

        ``before`` pages by trade ``seq``.
        """
        ...

    def candles(
        self, pair: str, interval: str, since: datetime | None, limit: int
    ) -> Sequence[Candle]:
        """Candles from ``since`` on (oldest first); without ``since`` the latest ``limit``."""
        ...

    def positions(self, user_id: str) -> Sequence[Position]:
        """The user's positions in every pair they traded."""
        ...

    def events_after(self, seq: int, prefix: str, limit: int) -> Sequence[OutboxEvent]:
        """Outbox events after ``seq`` whose type starts with ``prefix``, in commit order."""
        ...

    def last_event_seq(self) -> int:
        """The newest outbox sequence number (0 when empty)."""
        ...
