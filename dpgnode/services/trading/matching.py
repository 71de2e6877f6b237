"""What one writer command does to one pair: engine events turned into ledger entries and rows.

A :class:`Matching` collects the effects of the engine events of one command and writes
them through the ``Tx`` when the command finishes, so they commit with the command or not
at all. Invariants it keeps (and checks with ``ensure``, raising ``IntegrityError``):

- each trade is one journal entry that moves the base asset from the seller's held account
  to the buyer's available one, and the quote asset from the buyer's held account to the
  seller's available one and to the operator's ``fees`` account; it sums to zero per asset;
- the buyer's hold is captured for the trade's value plus the buyer's fee, the seller's hold
  for the quantity: a capture never exceeds what remains on the hold;
- an order that leaves the book (filled, cancelled, expired) releases what remains of its
  hold in the same command, so a user's held balance is always what their open orders need;
- a trade only fills open stored orders, never beyond their quantity;
- a pending stop holds what its order will need from placement on; when it fires it
  becomes ``open`` (taking the next time priority), and its hold carries over;
- every new order, placed stop and fired stop takes the pair's next priority, in the order
  the engine saw them, so a book rebuilt from the rows holds them in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dpgnode.domain import hold as holds
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.exchange import BUY, SELL, Event
from dpgnode.domain.exchange.pair import Pair
from dpgnode.domain.hold import Hold, HoldStatus
from dpgnode.domain.ledger import (
    AccountKind,
    AccountRef,
    EntryDraft,
    EntryKind,
    JournalEntry,
    OwnerType,
    Posting,
)
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import IntegrityError, ensure
from dpgnode.ports.clock import Clock
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.metrics import NULL_METRICS, Metrics
from dpgnode.ports.trading import (
    OrderRecord,
    OrderStatus,
    PairState,
    Side,
    TradeRecord,
    TradingStore,
)
from dpgnode.ports.uow import Tx
from dpgnode.services.ledger import post_entry
from dpgnode.services.trading import fees
from dpgnode.services.trading.book import Book, engine_side, lots_of, order_ticks
from dpgnode.services.trading.ledger import user_account
from dpgnode.services.trading.records import Fill, save_candles, save_positions
from dpgnode.services.trading.views import levels_view, order_view, trade_view


@dataclass(frozen=True, slots=True)
class Context:
    """What trading commands share: storage, ids, clock, assets, fee collector, metrics."""

    store: TradingStore
    ids: IdGenerator
    clock: Clock
    assets: AssetRegistry
    fee_owner: str
    metrics: Metrics = NULL_METRICS
    """Where the engine's matching time is observed (``dpg_matching_duration_seconds``)."""


class Matching:
    """The effects of one command on one pair (see the module docstring)."""

    def __init__(
        self,
        ctx: Context,
        tx: Tx,
        book: Book,
        state: PairState,
        now: datetime,
        *,
        closing: tuple[OrderStatus, str] = (OrderStatus.CANCELLED, "cancelled"),
    ) -> None:
        self.ctx, self.tx, self.book, self.state, self.now = ctx, tx, book, state, now
        self.pair = book.pair
        self.closing = closing
        self.orders: dict[str, OrderRecord] = {}
        self.new_orders: list[str] = []
        self.changed: set[str] = set()
        self.holds: dict[str, Hold] = {}
        self.trades: list[TradeRecord] = []
        self.fills: list[Fill] = []
        self.levels: set[tuple[int, int]] = set()
        self.last_price = state.last_price
        self.priority = state.priority
        self.triggered: list[str] = []
        self.unrested: set[str] = set()
        """Fired stop-markets taken out of the book after resting (their level changed)."""
        engine = book.live
        self._before = (engine.best_bid, engine.best_ask)

    # -- orders and holds ---------------------------------------------------------------

    def take_priority(self) -> int:
        """The pair's next time priority (stored with the state by :meth:`finish`)."""
        self.priority += 1
        return self.priority

    def order(self, order_id: str) -> OrderRecord:
        """An order of this command: new, or a live stored one loaded now."""
        found = self.orders.get(order_id)
        if found is None:
            found = self.ctx.store.order_for_update(self.tx, order_id)
            if found is None or not found.is_live:
                raise IntegrityError(f"the book holds {order_id}, which is not a live order")
            self.orders[order_id] = found
        return found

    def adopt(self, order: OrderRecord) -> None:
        """Work on ``order``, read by the command itself (open, or a pending stop)."""
        ensure(order.is_live, f"order {order.id} is not live")
        self.orders[order.id] = order

    def add_new(self, order: OrderRecord, hold_units: int) -> OrderRecord:
        """Register a new order and put ``hold_units`` on hold for it (none when zero).

        Raises:
            InsufficientFundsError: the user's available balance does not cover the hold.
        """
        if hold_units > 0:
            asset = self.pair.quote if order.side is Side.BUY else self.pair.base
            hold = Hold(self.ctx.ids.new("hold"), user_account(order.user_id, asset.code),
                        hold_units)
            post_entry(self.tx, holds.reserve_draft(
                hold, f"order:{order.id}:hold", f"hold for order {order.id} on {order.pair}"
            ))
            self.tx.save_hold(hold)
            self.holds[hold.id] = hold
            order = replace(order, hold_id=hold.id)
        self.orders[order.id] = order
        self.new_orders.append(order.id)
        return order

    def _hold(self, order: OrderRecord) -> Hold:
        ensure(order.hold_id is not None, f"order {order.id} has no hold")
        hold_id = str(order.hold_id)
        found = self.holds.get(hold_id) or self.tx.hold(hold_id)
        if found is None:
            raise IntegrityError(f"hold {hold_id} of order {order.id} is missing")
        self.holds[hold_id] = found
        return found

    def _capture(self, order: OrderRecord, units: int) -> None:
        hold = self._hold(order)
        ensure(
            hold.status is HoldStatus.OPEN and 0 < units <= hold.remaining,
            f"order {order.id} would capture {units}, beyond its hold",
        )
        captured = replace(hold, captured=hold.captured + units)
        if captured.remaining == 0:
            captured = replace(captured, status=HoldStatus.CLOSED)
        self.holds[hold.id] = captured
        self.tx.save_hold(captured)

    # -- engine events ------------------------------------------------------------------

    def apply(self, events: Sequence[Event]) -> None:
        """Turn the engine events of this command into fills, cancels and entries."""
        for event in events:
            if event[0] == "trade":
                self._trade(str(event[1]), str(event[2]), event[3], event[4])
            elif event[0] == "cancelled":
                self._cancelled(str(event[1]), event[2], event[3])
            elif event[0] == "triggered":
                self._triggered(str(event[1]))
            elif event[0] != "accepted":
                raise IntegrityError(f"unexpected engine event {event[0]} in {self.pair.symbol}")

    def _trade(self, maker_id: str, taker_id: str, ticks: int, lots: int) -> None:
        pair = self.pair
        maker, taker = self.order(maker_id), self.order(taker_id)
        units, value = pair.base_units(lots), pair.quote_units(ticks, lots)
        buy, sell = (taker, maker) if taker.side is Side.BUY else (maker, taker)
        buy_fee = self._fee(buy, value, maker=buy is maker)
        sell_fee = self._fee(sell, value, maker=sell is maker)
        ensure(
            units <= maker.remaining and units <= taker.remaining,
            f"a trade in {pair.symbol} would overfill an order",
        )
        trade_id = self.ctx.ids.new("trd")
        entry = self._settle(trade_id, buy, sell, units, value, (buy_fee, sell_fee))
        price = pair.format_price(ticks)
        self._fill(buy, units, value, buy_fee, as_maker=buy is maker)
        self._fill(sell, units, value, sell_fee, as_maker=sell is maker)
        self.trades.append(TradeRecord(
            id=trade_id, pair=pair.symbol, price=price, quantity=units, value=value,
            buy_order_id=buy.id, sell_order_id=sell.id, buyer_id=buy.user_id,
            seller_id=sell.user_id, taker_side=taker.side, buyer_fee=buy_fee,
            seller_fee=sell_fee, entry_id=entry.id, created_at=self.now,
        ))
        self.fills.append(Fill(buy.user_id, Side.BUY, units, value, buy_fee, price))
        self.fills.append(Fill(sell.user_id, Side.SELL, units, value, sell_fee, price))
        self.levels.add((engine_side(maker.side), ticks))
        self.last_price = price

    def _fee(self, order: OrderRecord, value: int, *, maker: bool) -> int:
        before = order.maker_quote if maker else order.quote_filled - order.maker_quote
        return fees.fill_fee(self.pair, before, value, maker=maker)

    def _settle(
        self, trade_id: str, buy: OrderRecord, sell: OrderRecord, units: int, value: int,
        fee: tuple[int, int],
    ) -> JournalEntry:
        base, quote = self.pair.base.code, self.pair.quote.code
        buy_fee, sell_fee = fee
        postings = [
            Posting(user_account(buy.user_id, quote, AccountKind.HELD), -(value + buy_fee)),
            Posting(user_account(sell.user_id, base, AccountKind.HELD), -units),
            Posting(user_account(buy.user_id, base), units),
        ]
        if value - sell_fee:
            postings.append(Posting(user_account(sell.user_id, quote), value - sell_fee))
        if buy_fee + sell_fee:
            fees_account = AccountRef(OwnerType.OPERATOR, self.ctx.fee_owner, quote,
                                      AccountKind.FEES)
            postings.append(Posting(fees_account, buy_fee + sell_fee))
        self._capture(buy, value + buy_fee)
        self._capture(sell, units)
        return post_entry(self.tx, EntryDraft(
            idempotency_key=f"trade:{trade_id}",
            postings=tuple(postings),
            kind=EntryKind.CAPTURE,
            memo=f"trade {trade_id} on {self.pair.symbol}",
            metadata={
                "trade_id": trade_id, "pair": self.pair.symbol, "buy_order_id": buy.id,
                "sell_order_id": sell.id, "buy_hold_id": str(buy.hold_id),
                "sell_hold_id": str(sell.hold_id),
            },
        ))

    def _fill(
        self, order: OrderRecord, units: int, value: int, fee: int, *, as_maker: bool
    ) -> None:
        current = self.orders[order.id]
        filled = replace(
            current,
            filled=current.filled + units,
            quote_filled=current.quote_filled + value,
            maker_quote=current.maker_quote + (value if as_maker else 0),
            fee_paid=current.fee_paid + fee,
            updated_at=self.now,
        )
        if filled.remaining == 0:
            filled = replace(filled, status=OrderStatus.FILLED)
        self.orders[order.id] = filled
        self.changed.add(order.id)

    def _triggered(self, order_id: str) -> None:
        order = self.order(order_id)
        ensure(
            order.status is OrderStatus.PENDING_TRIGGER, f"order {order_id} is not a pending stop"
        )
        self.orders[order_id] = replace(
            order, status=OrderStatus.OPEN, priority=self.take_priority(), updated_at=self.now
        )
        self.triggered.append(order_id)
        self.changed.add(order_id)

    def close_fired_markets(self) -> None:
        """Cancel what rests of stop-markets fired in this command (reason ``market``).

        A stop-market with a protection price is a stop-limit at that price in the engine
        (whose stop-market has no bound); like a market order it must not stay in the book.
        """
        engine = self.book.live
        events: list[Event] = []
        for order_id in self.triggered:
            view = engine.order(order_id)
            if self.orders[order_id].tif != "IOC" or view is None:
                continue
            engine.events.clear()
            engine.cancel(order_id)
            ensure(
                engine.events == [("cancelled", order_id, view.remaining, "cancelled")],
                f"cancelling {order_id} gave {engine.events}",
            )
            engine.events.clear()
            events.append(("cancelled", order_id, view.remaining, "market"))
            self.unrested.add(order_id)
        self.apply(events)

    def _cancelled(self, order_id: str, lots: int, reason: str) -> None:
        order = self.order(order_id)
        ensure(
            lots == lots_of(self.pair, order.remaining, f"order {order_id}"),
            f"the book and the stored order {order_id} disagree on what remains",
        )
        status, closing_reason = self.closing if reason == "cancelled" else (
            OrderStatus.CANCELLED, reason
        )
        rested = order_id in self.unrested or (
            order.status is OrderStatus.OPEN
            and order_id not in self.new_orders and order_id not in self.triggered
        )
        if rested:  # it was resting: its level changes
            self.levels.add((engine_side(order.side), order_ticks(self.pair, order)))
        self.orders[order_id] = replace(
            order, status=status, reason=closing_reason, updated_at=self.now
        )
        self.changed.add(order_id)

    # -- the end of the command -----------------------------------------------------------

    def finish(self) -> PairState:
        """Release holds of closed orders, write every row and event; the pair's new state."""
        ctx, tx = self.ctx, self.tx
        engine = self.book.live
        for order_id in (*self.new_orders, *self.triggered):
            view = engine.order(order_id)
            if view is not None and view.price is not None and view.trigger is None:
                self.levels.add((view.side, view.price))  # it rests now
        touched = [*self.new_orders, *sorted(self.changed - set(self.new_orders))]
        for order_id in touched:
            self._release_if_closed(self.orders[order_id])
        changed = bool(self.levels)
        state = replace(
            self.state, seq=self.state.seq + (1 if changed else 0),
            version=ctx.ids.new("bkv"), last_price=self.last_price, updated_at=self.now,
            priority=self.priority,
        )
        for order_id in self.new_orders:
            ctx.store.insert_order(tx, self.orders[order_id])
        ctx.store.update_orders(
            tx, [self.orders[i] for i in sorted(self.changed - set(self.new_orders))]
        )
        self.trades = list(ctx.store.insert_trades(tx, self.trades))
        save_positions(ctx.store, tx, self.pair.symbol, self.fills, self.now)
        save_candles(ctx.store, tx, self.pair.symbol, self.fills, self.now)
        ctx.store.save_pair_state(tx, state)
        self._emit(touched, state, changed)
        return state

    def _release_if_closed(self, order: OrderRecord) -> None:
        if order.is_live or order.hold_id is None:
            return
        hold = self._hold(order)
        if hold.status is HoldStatus.OPEN:
            released, draft = holds.release(
                hold, f"order:{order.id}:release", f"release for order {order.id}"
            )
            post_entry(self.tx, draft)
            self.tx.save_hold(released)
            self.holds[hold.id] = released

    def _emit(self, touched: Sequence[str], state: PairState, changed: bool) -> None:
        pair, assets, symbol = self.pair, self.ctx.assets, self.pair.symbol
        aggregate = f"trading:{symbol}"
        for trade in self.trades:
            self.tx.emit(DomainEvent("trading.trade", aggregate, trade_view(trade, pair, assets)))
        for order_id in touched:
            order = self.orders[order_id]
            self.tx.emit(DomainEvent(
                "trading.order", f"trading-user:{order.user_id}", order_view(order, pair, assets)
            ))
        if changed:
            bids = sorted((t, self.book.level_lots(s, t)) for s, t in self.levels if s == BUY)
            asks = sorted((t, self.book.level_lots(s, t)) for s, t in self.levels if s == SELL)
            self.tx.emit(DomainEvent("trading.book", aggregate, {
                "pair": symbol, "seq": state.seq,
                "bids": levels_view(pair, bids[::-1]), "asks": levels_view(pair, asks),
            }))
        engine = self.book.live
        if (engine.best_bid, engine.best_ask) != self._before or self.trades:
            self.tx.emit(DomainEvent("trading.ticker", aggregate, {
                "pair": symbol, "lastPrice": self.last_price,
                "bestBid": _price(pair, engine.best_bid),
                "bestAsk": _price(pair, engine.best_ask),
            }))


def _price(pair: Pair, ticks: int | None) -> str | None:
    return None if ticks is None else pair.format_price(ticks)
