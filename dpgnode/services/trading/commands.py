"""The trading service's writer commands: place and cancel orders, expire them, open pairs.

Each function returns a command for the ``Writer``: it runs inside one durable transaction
and everything it does (order rows, holds, trade entries, events) commits together. The
writer runs commands one at a time, so a command is the only code touching its pair's
engine while it runs (see :mod:`dpgnode.services.trading.book`).

Order of a placement, so that a refused order leaves no trace: the pair must be open in the
database; a client order id already used returns the first order (or refuses other
content); the book is brought up to date; the order's hold is reserved (an insufficient
balance is refused here, before the engine sees the order); only then does the engine
match it. Anything that fails after the engine was touched leaves the book marked dirty, so
the next command rebuilds it from the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dpgnode.domain.events import DomainEvent
from dpgnode.domain.exchange import MatchingEngine, StopKind, TimeInForce
from dpgnode.domain.exchange.pair import Pair
from dpgnode.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    IntegrityError,
    NotFoundError,
    ValidationError,
)
from dpgnode.ports.trading import (
    OrderRecord,
    OrderStatus,
    OrderType,
    PairState,
    PairStatus,
    Side,
    TradeRecord,
)
from dpgnode.ports.uow import Tx
from dpgnode.services.trading import fees
from dpgnode.services.trading.book import DIRTY, Book, engine_side
from dpgnode.services.trading.matching import Context, Matching


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A validated order request: prices in ticks, quantity in lots.

    ``ticks`` is the limit price, or a market order's protection price (the worst it may
    trade at), or ``None`` for a market order without one. Stops carry ``trigger_ticks``;
    a stop-limit has ``tif`` GTC and its limit in ``ticks``, a stop-market ``tif`` IOC and
    its optional protection in ``ticks``.
    """

    id: str
    user_id: str
    pair: Pair
    side: Side
    type: OrderType
    tif: TimeInForce
    post_only: bool
    ticks: int | None
    lots: int
    client_order_id: str | None
    expires_at: datetime | None
    trigger_ticks: int | None = None

    @property
    def trigger_price(self) -> str | None:
        """A stop's trigger as a price string."""
        return None if self.trigger_ticks is None else self.pair.format_price(self.trigger_ticks)

    def record(self, priority: int, now: datetime) -> OrderRecord:
        """The order's first stored form (no hold yet)."""
        pending = self.trigger_ticks is not None
        return OrderRecord(
            id=self.id, pair=self.pair.symbol, user_id=self.user_id,
            client_order_id=self.client_order_id, side=self.side, type=self.type,
            tif=str(self.tif), post_only=self.post_only,
            price=None if self.ticks is None else self.pair.format_price(self.ticks),
            quantity=self.pair.base_units(self.lots), filled=0, quote_filled=0, maker_quote=0,
            fee_paid=0, status=OrderStatus.PENDING_TRIGGER if pending else OrderStatus.OPEN,
            reason=None, hold_id=None, priority=priority, expires_at=self.expires_at,
            created_at=now, updated_at=now, trigger_price=self.trigger_price,
        )

    def same_as(self, stored: OrderRecord) -> bool:
        """Whether ``stored`` was placed with the same content (a client-id replay)."""
        return (
            stored.pair == self.pair.symbol and stored.side is self.side
            and stored.type is self.type and stored.tif == str(self.tif)
            and stored.post_only == self.post_only
            and stored.price == (None if self.ticks is None else self.pair.format_price(self.ticks))
            and stored.quantity == self.pair.base_units(self.lots)
            and stored.expires_at == self.expires_at
            and stored.trigger_price == self.trigger_price
        )


@dataclass(frozen=True, slots=True)
class Placed:
    """An order after placement, its trades, and whether this call placed it."""

    order: OrderRecord
    trades: tuple[TradeRecord, ...]
    created: bool


_REFUSALS: dict[str, tuple[str, str]] = {
    "would_cross": ("postOnly", "a post-only order would trade at once"),
    "invalid_quantity": ("quantity", "the quantity is out of range"),
    "invalid_price": ("price", "the price is out of range"),
}


def open_state(ctx: Context, tx: Tx, symbol: str, *, for_orders: bool) -> PairState:
    """The pair's stored state; refuses a pair never opened, and a halted one for orders."""
    state = ctx.store.pair_state(tx, symbol)
    if state is None:
        raise NotFoundError(
            f"pair {symbol} is not open: an operator opens it with `dpg book pairs add`",
            details={"field": "pair"},
        )
    if for_orders and state.status is not PairStatus.OPEN:
        raise ConflictError(
            f"pair {symbol} is {state.status}: it accepts no new orders",
            details={"pair": symbol, "status": str(state.status)},
        )
    return state


def synced(ctx: Context, tx: Tx, book: Book, state: PairState) -> MatchingEngine:
    """The pair's engine, rebuilt from the stored open orders unless it reflects ``state``."""
    if not book.current(state):
        book.rebuild(state, ctx.store.open_orders(tx, book.pair.symbol))
    return book.live


def _hold_units(book: Book, order: NewOrder) -> int:
    pair = book.pair
    if order.side is Side.SELL:
        return pair.base_units(order.lots)
    if order.type is OrderType.LIMIT or order.type.is_stop:
        # A buy stop trades at its limit or protection price at worst, as maker or taker
        # (a stop-market whose protection stops it rests for the rest of its command).
        if order.ticks is None:
            raise IntegrityError(f"buy order {order.id} has no price bound to hold for")
        return fees.limit_buy_hold(pair, order.ticks, order.lots)
    engine, window = book.live, 32
    while True:  # walk only as deep as the order could reach
        asks = engine.depth(window)[1]
        if len(asks) < window or sum(lots for _, lots in asks) >= order.lots:
            return fees.market_buy_hold(pair, asks, order.lots, order.ticks)
        window *= 8


def place_command(ctx: Context, book: Book, order: NewOrder) -> Callable[[Tx], Placed]:
    """The command placing ``order`` (see the module docstring for its steps)."""

    def command(tx: Tx) -> Placed:
        now = ctx.clock.now()
        state = open_state(ctx, tx, order.pair.symbol, for_orders=True)
        if order.client_order_id is not None:
            existing = ctx.store.order_by_client_id(tx, order.user_id, order.client_order_id)
            if existing is not None:
                if not order.same_as(existing):
                    raise IdempotencyKeyReusedError(
                        "clientOrderId was already used for a different order",
                        details={"field": "clientOrderId", "orderId": existing.id},
                    )
                return Placed(existing, (), created=False)
        with book.lock:
            engine = synced(ctx, tx, book, state)
            matching = Matching(ctx, tx, book, state, now)
            matching.add_new(order.record(matching.take_priority(), now),
                             _hold_units(book, order))
            book.version = DIRTY
            engine.events.clear()
            with ctx.metrics.time_matching(order.pair.symbol):  # the engine alone, no I/O
                _submit(engine, order)
            events = list(engine.events)
            engine.events.clear()
            if events and events[0][0] == "rejected":
                book.version = state.version  # a refused command leaves the engine as it was
                field, message = _REFUSALS.get(str(events[0][2]), ("", ""))
                if not field:
                    raise IntegrityError(f"the engine refused a validated order: {events[0]}")
                raise ValidationError(message, field=field)
            matching.apply(events)
            matching.close_fired_markets()
            new_state = matching.finish()
            book.version, book.seq = new_state.version, new_state.seq
        return Placed(matching.orders[order.id], tuple(matching.trades), created=True)

    return command


def _submit(engine: MatchingEngine, order: NewOrder) -> None:
    side = engine_side(order.side)
    if order.trigger_ticks is not None:
        # A protected stop-market goes in as a stop-limit at its protection price: the
        # engine's stop-market has no bound; Matching cancels what rests once it fires.
        engine.stop(
            order.id, order.user_id, side, order.trigger_ticks, order.lots, order.ticks,
            StopKind(str(order.type)),
        )
    elif order.type is OrderType.MARKET:
        engine.market(order.id, order.user_id, side, order.lots, order.ticks)
    else:
        engine.limit(
            order.id, order.user_id, side, order.ticks or 0, order.lots, order.tif,
            order.post_only,
        )


def cancel_in(
    ctx: Context,
    tx: Tx,
    book: Book,
    orders: Sequence[OrderRecord],
    closing: tuple[OrderStatus, str],
) -> list[OrderRecord]:
    """Take open ``orders`` of ``book``'s pair out of the book in the command ``tx``."""
    if not orders:
        return []
    state = open_state(ctx, tx, book.pair.symbol, for_orders=False)
    with book.lock:
        engine = synced(ctx, tx, book, state)
        matching = Matching(ctx, tx, book, state, ctx.clock.now(), closing=closing)
        for order in orders:
            matching.adopt(order)
        book.version = DIRTY
        engine.events.clear()
        for order in orders:
            engine.cancel(order.id)
        events = list(engine.events)
        engine.events.clear()
        matching.apply(events)
        new_state = matching.finish()
        book.version, book.seq = new_state.version, new_state.seq
    return [matching.orders[order.id] for order in orders]


def cancel_command(
    ctx: Context, book: Book, order_id: str, user_id: str | None
) -> Callable[[Tx], OrderRecord]:
    """Cancel one order (of ``user_id`` when given: another user's order is not found)."""

    def command(tx: Tx) -> OrderRecord:
        order = ctx.store.order_for_update(tx, order_id)
        if order is None or order.pair != book.pair.symbol or (
            user_id is not None and order.user_id != user_id
        ):
            raise NotFoundError(f"no order {order_id[:64]}", details={"field": "orderId"})
        if not order.is_live:
            raise ConflictError(
                f"order {order.id} is {order.status}: only open orders and pending stops "
                "can be cancelled",
                details={"orderId": order.id, "status": str(order.status)},
            )
        return cancel_in(ctx, tx, book, [order], (OrderStatus.CANCELLED, "cancelled"))[0]

    return command


def cancel_all_command(
    ctx: Context, book: Book, user_id: str | None, reason: str
) -> Callable[[Tx], list[OrderRecord]]:
    """Cancel every open order of the pair (of one user when given)."""

    def command(tx: Tx) -> list[OrderRecord]:
        open_state(ctx, tx, book.pair.symbol, for_orders=False)
        orders = [
            o for o in ctx.store.open_orders(tx, book.pair.symbol)
            if user_id is None or o.user_id == user_id
        ]
        return cancel_in(ctx, tx, book, orders, (OrderStatus.CANCELLED, reason))

    return command


def expire_command(
    ctx: Context, books: dict[str, Book], limit: int
) -> Callable[[Tx], list[OrderRecord]]:
    """Expire up to ``limit`` open orders whose ``expires_at`` has passed."""

    def command(tx: Tx) -> list[OrderRecord]:
        due = ctx.store.due_orders(tx, ctx.clock.now(), limit)
        by_pair: dict[str, list[OrderRecord]] = {}
        for order in due:
            by_pair.setdefault(order.pair, []).append(order)
        expired: list[OrderRecord] = []
        for symbol, orders in sorted(by_pair.items()):
            book = books.get(symbol)
            if book is None:
                # The pair left the configuration while orders were open: they stay open
                # (and held) until it is configured again, and cannot block other pairs.
                continue
            expired.extend(cancel_in(ctx, tx, book, orders, (OrderStatus.EXPIRED, "expired")))
        return expired

    return command


def status_command(
    ctx: Context, symbol: str, status: PairStatus, *, create: bool
) -> Callable[[Tx], tuple[PairState, bool]]:
    """Open (``create``), halt or resume a pair; the state and whether it changed."""

    def command(tx: Tx) -> tuple[PairState, bool]:
        now = ctx.clock.now()
        state = ctx.store.pair_state(tx, symbol)
        if state is None:
            if not create:
                raise NotFoundError(
                    f"pair {symbol} was never opened: open it with `dpg book pairs add`",
                    details={"field": "pair"},
                )
            state = PairState(symbol, status, 0, ctx.ids.new("bkv"), None, now, now)
        elif state.status is status or create:
            return state, False
        else:
            state = replace(state, status=status, updated_at=now)
        ctx.store.save_pair_state(tx, state)
        tx.emit(DomainEvent(
            "trading.pair", f"trading:{symbol}", {"pair": symbol, "status": str(status)}
        ))
        return state, True

    return command
