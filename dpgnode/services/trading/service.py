"""The trading service: pairs, orders, books, trades, tickers, candles and positions.

Writes are writer commands (:mod:`dpgnode.services.trading.commands`): holds, trade
settlement, order and trade rows commit in one transaction. Reads of books prefer the
in-memory engine when it reflects the committed state and otherwise aggregate the stored
open orders, so every process (an API worker, the CLI) answers with committed data.

A trading user is the ledger owner ``user:<id>``: their balances are ``user:<id>:ASSET:
available`` (funded like any account, e.g. with ``dpg ledger post``) and ``...:held``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TypeVar

from dpgnode.domain.exchange.pair import Pair, Rounding
from dpgnode.domain.ledger import AccountKind
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.ports.clock import Clock
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.metrics import NULL_METRICS, Metrics
from dpgnode.ports.trading import (
    Candle,
    OrderRecord,
    OrderStatus,
    PairState,
    PairStatus,
    Position,
    Side,
    TradeRecord,
    TradingStore,
)
from dpgnode.ports.uow import Hints, Tx, Writer
from dpgnode.services.trading import commands
from dpgnode.services.trading.book import Book, aggregate, lots_of
from dpgnode.services.trading.candles import bucket_start, interval_of
from dpgnode.services.trading.commands import NewOrder, Placed
from dpgnode.services.trading.ledger import user_account
from dpgnode.services.trading.matching import Context
from dpgnode.services.trading.positions import unrealized
from dpgnode.services.trading.requests import OrderRequest, prepare_order

T = TypeVar("T")
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Depth:
    """A book's aggregated levels ``(ticks, lots)``, best first, at sequence ``seq``."""

    pair: Pair
    status: PairStatus
    seq: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Ticker:
    """Last price, best bid and ask, and the last 24 hours (from 1-minute candles)."""

    pair: Pair
    status: PairStatus
    last_price: str | None
    best_bid: int | None
    best_ask: int | None
    open_24h: str | None
    high_24h: str | None
    low_24h: str | None
    volume_24h: int
    quote_volume_24h: int
    trades_24h: int


@dataclass(frozen=True, slots=True)
class PositionValue:
    """A position with its pair, average entry price and unrealized P&L at the last price."""

    position: Position
    pair: Pair
    average_price: Fraction | None
    last_price: str | None
    unrealized_pnl: int | None


class TradingService:
    """Orders and market data over the writer and the trading store.

    Args:
        writer: runs the commands.
        store: trading rows.
        ids: id generator (orders ``ord_``, trades ``trd_``, holds ``hold_``).
        clock: time of orders, trades and expiries.
        assets: the asset registry (formatting).
        pairs: the configured pairs by symbol (``dpgnode.adapters.exchange_pairs``).
        fee_owner: operator id whose ``fees`` accounts collect trading fees.
        expiry_batch: most orders one expiry pass handles.
        metrics: where matching latency is observed.
    """

    def __init__(
        self,
        writer: Writer,
        store: TradingStore,
        ids: IdGenerator,
        clock: Clock,
        assets: AssetRegistry,
        pairs: Mapping[str, Pair],
        *,
        fee_owner: str = "op",
        expiry_batch: int = 500,
        metrics: Metrics = NULL_METRICS,
    ) -> None:
        self._writer = writer
        self._store = store
        self._ids = ids
        self._clock = clock
        self._ctx = Context(store, ids, clock, assets, fee_owner, metrics)
        self._books = {symbol: Book(pair) for symbol, pair in pairs.items()}
        self._expiry_batch = expiry_batch
        self._listeners: list[Callable[[], None]] = []

    @property
    def assets(self) -> AssetRegistry:
        """The asset registry the service formats amounts with."""
        return self._ctx.assets

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each committed command (e.g. to wake the live feed)."""
        self._listeners.append(listener)

    def _run(self, command: Callable[[Tx], T], hints: Hints | None = None) -> T:
        result = self._writer.run(command, hints)
        self._notify()
        return result

    async def _run_async(self, command: Callable[[Tx], T], hints: Hints | None = None) -> T:
        result = await self._writer.run_async(command, hints)
        self._notify()
        return result

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    # -- pairs -------------------------------------------------------------------------

    def pair(self, symbol: str, *, field: str = "pair") -> Pair:
        """A configured pair.

        Raises:
            NotFoundError: no pair ``symbol`` is configured (the error names ``field``).
        """
        book = self._books.get(symbol)
        if book is None:
            raise NotFoundError(f"unknown pair {symbol[:40]!r}", details={"field": field})
        return book.pair

    def pairs(self) -> list[tuple[Pair, PairState | None]]:
        """Every configured pair with its stored state (``None``: never opened)."""
        states = self._store.pair_states()
        return [(book.pair, states.get(symbol)) for symbol, book in self._books.items()]

    def open_pair(self, symbol: str) -> tuple[PairState, bool]:
        """Open a configured pair for trading; the state and whether it was opened now."""
        self.pair(symbol)
        return self._run(commands.status_command(self._ctx, symbol, PairStatus.OPEN, create=True))

    def halt_pair(self, symbol: str) -> tuple[PairState, bool]:
        """Refuse new orders on an open pair (cancels still work)."""
        self.pair(symbol)
        command = commands.status_command(self._ctx, symbol, PairStatus.HALTED, create=False)
        return self._run(command)

    def resume_pair(self, symbol: str) -> tuple[PairState, bool]:
        """Accept new orders again on a halted pair."""
        self.pair(symbol)
        return self._run(commands.status_command(self._ctx, symbol, PairStatus.OPEN, create=False))

    # -- orders ------------------------------------------------------------------------

    def prepare(self, request: OrderRequest) -> NewOrder:
        """Validate a request into ticks and lots, or raise ``ValidationError`` naming the field."""
        book = self._books.get(request.pair)
        if book is None:
            raise ValidationError(f"unknown pair {request.pair[:40]!r}", field="pair")
        return prepare_order(request, book.pair, self._ids.new("ord"), self._clock.now())

    def place(self, request: OrderRequest) -> Placed:
        """Place an order: hold, match, settle, rest; a client order id replays the first.

        Raises:
            ValidationError: invalid request (the error names the field).
            NotFoundError: the pair was never opened.
            ConflictError: the pair is halted.
            InsufficientFundsError: the user's balance does not cover the hold.
            IdempotencyKeyReusedError: the client order id names another order.
        """
        order = self.prepare(request)
        command = commands.place_command(self._ctx, self._books[request.pair], order)
        return self._run(command, _hints(order))

    async def place_async(self, request: OrderRequest) -> Placed:
        """:meth:`place` for event-loop callers."""
        order = self.prepare(request)
        book = self._books[request.pair]
        return await self._run_async(commands.place_command(self._ctx, book, order), _hints(order))

    def _order_book(self, order_id: str, user_id: str | None) -> Book:
        order = self._store.order(order_id)
        if order is None or (user_id is not None and order.user_id != user_id):
            raise NotFoundError(f"no order {order_id[:64]}", details={"field": "orderId"})
        return self._books[order.pair]

    def cancel(self, order_id: str, user_id: str | None = None) -> OrderRecord:
        """Cancel an open order (only ``user_id``'s, when given) and release its hold."""
        book = self._order_book(order_id, user_id)
        return self._run(commands.cancel_command(self._ctx, book, order_id, user_id))

    async def cancel_async(self, order_id: str, user_id: str | None = None) -> OrderRecord:
        """:meth:`cancel` for event-loop callers."""
        book = self._order_book(order_id, user_id)
        return await self._run_async(commands.cancel_command(self._ctx, book, order_id, user_id))

    def cancel_all(self, symbol: str, user_id: str | None = None) -> list[OrderRecord]:
        """Cancel every open order of a pair (of one user when given), as the operator."""
        book = self._books.get(symbol)
        if book is None:
            raise NotFoundError(f"unknown pair {symbol[:40]!r}", details={"field": "pair"})
        reason = "cancelled" if user_id is not None else "operator"
        return self._run(commands.cancel_all_command(self._ctx, book, user_id, reason))

    def expire_due(self) -> int:
        """Expire orders past their ``expires_at``; how many (a periodic worker calls this)."""
        earliest = self._store.earliest_expiry()
        if earliest is None or earliest > self._clock.now():
            return 0  # nothing due: no write transaction at all (a worker calls this often)
        expired = self._run(commands.expire_command(self._ctx, self._books, self._expiry_batch))
        return len(expired)

    # -- reads ---------------------------------------------------------------------------

    def order(self, order_id: str, user_id: str | None = None) -> OrderRecord:
        """One order (only ``user_id``'s when given: another user's is not found)."""
        order = self._store.order(order_id)
        if order is None or (user_id is not None and order.user_id != user_id):
            raise NotFoundError(f"no order {order_id[:64]}", details={"field": "orderId"})
        return order

    def orders(
        self,
        *,
        user_id: str | None = None,
        pair: str | None = None,
        status: OrderStatus | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> Sequence[OrderRecord]:
        """Orders, newest first; ``before`` (an order id) pages."""
        return self._store.orders(
            user_id=user_id, pair=pair, status=status, limit=_page(limit), before=before
        )

    def trades(
        self,
        *,
        user_id: str | None = None,
        pair: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> Sequence[TradeRecord]:
        """Trades, newest first (a user's own with ``user_id``); ``before`` (a seq) pages."""
        return self._store.trades(user_id=user_id, pair=pair, limit=_page(limit), before=before)

    def depth(self, symbol: str, levels: int | None = 50) -> Depth:
        """The committed book of an opened pair, aggregated per price level.

        Raises:
            NotFoundError: the pair is not configured or was never opened.
        """
        pair = self.pair(symbol)
        book = self._books[symbol]
        state = self._store.pair_states().get(symbol)
        if state is not None:
            with book.lock:
                if book.current(state):
                    bids, asks = book.live.depth(levels)
                    return Depth(pair, state.status, state.seq, bids, asks)
        state, orders = self._store.book_snapshot(symbol)
        if state is None:
            raise NotFoundError(f"pair {symbol} is not open", details={"field": "pair"})
        bids, asks = aggregate(pair, orders, levels)
        return Depth(pair, state.status, state.seq, bids, asks)

    def ticker(self, symbol: str) -> Ticker:
        """Last price, best bid and ask, and 24-hour statistics of an opened pair."""
        depth = self.depth(symbol, 1)
        state = self._store.pair_states().get(symbol)
        since = bucket_start(self._clock.now() - timedelta(hours=24), interval_of("1m"))
        candles = self._store.candles(symbol, "1m", since, 24 * 60 + 1)
        return Ticker(
            pair=depth.pair, status=depth.status,
            last_price=state.last_price if state is not None else None,
            best_bid=depth.bids[0][0] if depth.bids else None,
            best_ask=depth.asks[0][0] if depth.asks else None,
            open_24h=candles[0].open if candles else None,
            high_24h=max((c.high for c in candles), key=Fraction, default=None),
            low_24h=min((c.low for c in candles), key=Fraction, default=None),
            volume_24h=sum(c.volume for c in candles),
            quote_volume_24h=sum(c.quote_volume for c in candles),
            trades_24h=sum(c.trades for c in candles),
        )

    def candles(
        self, symbol: str, interval: str, since: datetime | None = None, limit: int = 100
    ) -> Sequence[Candle]:
        """OHLCV candles of a pair, oldest first (the latest ``limit`` without ``since``)."""
        self.pair(symbol)
        interval_of(interval)
        if not 1 <= limit <= 1000:
            raise ValidationError("limit must be between 1 and 1000", field="limit")
        return self._store.candles(symbol, interval, since, limit)

    def positions(self, user_id: str) -> list[PositionValue]:
        """The user's positions, valued at each pair's last trade price."""
        states = self._store.pair_states()
        values = []
        for position in self._store.positions(user_id):
            book = self._books.get(position.pair)
            if book is None:
                continue  # a pair no longer configured: nothing to value it with
            pair = book.pair
            state = states.get(position.pair)
            last = state.last_price if state is not None else None
            quantity = abs(position.quantity)
            mark = None
            if last is not None:
                lots = lots_of(pair, quantity, f"position of {user_id} in {pair.symbol}")
                value = pair.quote_units(pair.tick.to_steps(last), lots, rounding=Rounding.DOWN)
                mark = unrealized(position, value)
            average = (
                Fraction(abs(position.cost) * 10**pair.base.decimals,
                         quantity * 10**pair.quote.decimals)
                if quantity else None
            )
            values.append(PositionValue(position, pair, average, last, mark))
        return values

    def mid_price(self, base: str, quote: str) -> Fraction | None:
        """Mean of the best bid and ask of the open ``base-quote`` book (conversion's rate)."""
        symbol = f"{base}-{quote}"
        if symbol not in self._books:
            return None
        try:
            depth = self.depth(symbol, 1)
        except NotFoundError:
            return None
        if depth.status is not PairStatus.OPEN or not depth.bids or not depth.asks:
            return None
        pair = depth.pair
        bid = Fraction(pair.format_price(depth.bids[0][0]))
        ask = Fraction(pair.format_price(depth.asks[0][0]))
        return (bid + ask) / 2


def _hints(order: NewOrder) -> Hints:
    """The placing user's accounts, so the writer loads a batch's accounts in one query."""
    pair, user = order.pair, order.user_id
    held = pair.quote.code if order.side is Side.BUY else pair.base.code
    other = pair.base.code if order.side is Side.BUY else pair.quote.code
    return Hints(accounts=(
        user_account(user, held), user_account(user, held, AccountKind.HELD),
        user_account(user, other),
    ))


def _page(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    return limit
