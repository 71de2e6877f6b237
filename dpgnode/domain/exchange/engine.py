"""The matching engine of one trading pair: a pure, deterministic order book.

Prices are integer ticks and quantities integer lots (``Pair`` converts decimal strings at
the edges; the engine trusts its callers to pass ints, as its signatures say). The engine
never reads a clock or draws a random number: the same command sequence always gives the
same events, so a matcher can be rebuilt from its command journal, optionally starting
from a :meth:`MatchingEngine.snapshot`.

Each command appends its events to ``engine.events`` (a list the caller drains), in the
order they happen. Event tuples (see ``types``):

- ``("accepted", id)``: a new limit, market or stop order passed every check;
- ``("trade", maker_id, taker_id, price, qty)``: prints at the resting (maker) order's price;
- ``("cancelled", id, remaining, reason)``: reason ``cancelled`` (asked for), ``ioc`` /
  ``market`` (what did not trade at once), ``fok``, ``self_trade``;
- ``("rejected", id, reason)``: the command changed nothing; reasons ``halted``,
  ``duplicate_id``, ``invalid_side``, ``invalid_price``, ``invalid_quantity``, ``invalid_tif``,
  ``invalid_kind``, ``would_cross`` (post-only), ``unknown_order``;
- ``("triggered", id)``: a stop fired; the events of its order follow;
- ``("reduced", id, remaining)``: a live order's quantity was lowered, priority kept.

Semantics of the details:

- Self-trade prevention: when the next match of an incoming order would be against a resting
  order of the same ``account`` (``None`` never matches), the incoming order's remaining
  quantity is cancelled (``self_trade``), without a trade. In pro-rata mode every live order
  of a level takes part in its allocation, so a level holding an order of the same account
  is not matched at all.
- Fill-or-kill is checked before any trade: it trades only when its whole quantity can trade
  at once (self-trade prevention included), else it is cancelled whole (``fok``).
- Post-only: rejected (``would_cross``) when it would trade on arrival, else a GTC limit.
- Market orders take an optional protection price (the worst price they may trade at); what
  does not trade at once is cancelled (``market``).
- Stops are triggered by the last trade price. A falling trigger (sell stop-loss, buy
  take-profit) fires when ``last <= trigger``, a rising one (buy stop-loss, sell
  take-profit) when ``last >= trigger``. After a command's trades, every stop whose condition
  holds fires, in the order the stops were placed, each becoming a market order (no
  ``price``) or a GTC limit order at ``price``, with the stop's id and account; the trades of
  fired stops may fire more stops, round after round, until none fires. A stop whose
  condition already holds when it is placed fires at once; before the first trade no stop
  fires.
- While halted, new orders are rejected (``halted``); cancel and reduce still work.

Invariants (property-tested against a list-based reference model): the book is never crossed
at rest; per order, ``placed = traded + cancelled + reduced away + resting``; price-time
priority in FIFO mode; in pro-rata mode lot-rounded shares with leftovers by time priority.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from heapq import heappush, nlargest, nsmallest
from operator import itemgetter
from typing import Any

from dpgnode.domain.exchange.stops import StopBook
from dpgnode.domain.exchange.types import (
    BUY,
    MAX_PRICE,
    NO_ASK,
    NO_BID,
    SELL,
    Account,
    Event,
    Level,
    MatchingMode,
    OrderId,
    OrderView,
    StopKind,
    StopOrder,
    TimeInForce,
)

__all__ = [
    "BUY",
    "MAX_PRICE",
    "SELL",
    "Account",
    "Event",
    "MatchingEngine",
    "MatchingMode",
    "OrderId",
    "OrderView",
    "StopKind",
    "TimeInForce",
]

_GTC = TimeInForce.GTC
_IOC = TimeInForce.IOC
_TIFS = frozenset(TimeInForce)
_KINDS = frozenset(StopKind)
_LIVE = itemgetter(0)  # a record's remaining quantity: truthy while the order is live
_COMPACT_AFTER = 16
"""Cancelled records a level may hold before it is compacted (when they are the majority)."""


class MatchingEngine(StopBook):
    """Order book and matching for one pair (see the module docstring for the events).

    Args:
        mode: FIFO (price-time) or pro-rata sharing within a price level.
        events: list the events are appended to (default: a new list, ``engine.events``).
            The caller consumes them and may ``clear()`` the list at any time.
    """

    __slots__ = ()

    # ------------------------------------------------------------------ commands

    def limit(  # noqa: C901 - the hot path is written out on purpose, see the comment inside
        self,
        oid: OrderId,
        account: Account,
        side: int,
        price: int,
        qty: int,
        tif: TimeInForce = _GTC,
        post_only: bool = False,
    ) -> None:
        """Place a limit order of ``qty`` lots at ``price`` ticks.

        Args:
            oid: a new id (not held by a live order or pending stop).
            account: owner, for self-trade prevention (``None``: none).
            side: ``BUY`` or ``SELL``.
            price: limit price in ticks, 1..MAX_PRICE.
            qty: lots, > 0.
            tif: GTC, IOC or FOK.
            post_only: reject instead of trading on arrival.
        """
        # Hot path: a plain GTC order with no stop pending. Everything else, and every
        # refusal, goes through ``_limit_checked``, which re-checks from scratch.
        if (
            tif is not _GTC
            or post_only
            or self._slow
            or qty <= 0
            or not 0 < price <= MAX_PRICE
            or oid in self._index
        ):
            self._limit_checked(oid, account, side, price, qty, tif, post_only)
            return
        # ``_execute`` + ``_rest`` written out: two Python calls fewer on most of the traffic.
        if side == BUY:
            self._emit(("accepted", oid))
            if price >= self._best_ask:
                if self._pro_rata:
                    qty = self._take_pro_rata(oid, account, BUY, price, qty)
                else:
                    qty = self._take_asks(oid, account, price, qty)
                if not qty:
                    return
            level = self._bids.get(price)
            if level is None:
                spare = self._spare
                if spare:
                    level = spare.pop()
                    level.side = BUY
                    level.price = price
                else:
                    level = Level(BUY, price)
                self._bids[price] = level
                heappush(self._bid_heap, -price)
                if price > self._best_bid:
                    self._best_bid = price
        elif side == SELL:
            self._emit(("accepted", oid))
            if price <= self._best_bid:
                if self._pro_rata:
                    qty = self._take_pro_rata(oid, account, SELL, price, qty)
                else:
                    qty = self._take_bids(oid, account, price, qty)
                if not qty:
                    return
            level = self._asks.get(price)
            if level is None:
                spare = self._spare
                if spare:
                    level = spare.pop()
                    level.side = SELL
                    level.price = price
                else:
                    level = Level(SELL, price)
                self._asks[price] = level
                heappush(self._ask_heap, price)
                if price < self._best_ask:
                    self._best_ask = price
        else:
            self._emit(("rejected", oid, "invalid_side"))
            return
        rec = [qty, oid, account, level]
        level.orders.append(rec)
        level.qty += qty
        self._index[oid] = rec

    def market(
        self,
        oid: OrderId,
        account: Account,
        side: int,
        qty: int,
        protection: int | None = None,
    ) -> None:
        """Trade ``qty`` lots at once at the best prices; cancel what does not trade.

        Args:
            oid: a new id.
            account: owner, for self-trade prevention.
            side: ``BUY`` or ``SELL``.
            qty: lots, > 0.
            protection: the worst price in ticks it may trade at (highest for a buy, lowest
                for a sell); ``None``: no bound.
        """
        if protection is None and not self._slow and qty > 0 and oid not in self._index:
            # Hot path, like ``limit``'s: no bound, no stop pending, not halted.
            if side == BUY:
                self._emit(("accepted", oid))
                if self._pro_rata:
                    qty = self._take_pro_rata(oid, account, BUY, MAX_PRICE, qty)
                else:
                    qty = self._take_asks(oid, account, MAX_PRICE, qty)
            elif side == SELL:
                self._emit(("accepted", oid))
                if self._pro_rata:
                    qty = self._take_pro_rata(oid, account, SELL, 1, qty)
                else:
                    qty = self._take_bids(oid, account, 1, qty)
            else:
                self._emit(("rejected", oid, "invalid_side"))
                return
            if qty:
                self._emit(("cancelled", oid, qty, "market"))
            return
        refusal = self._new_order_refusal(oid, side, qty)
        if refusal is None and protection is not None and not 0 < protection <= MAX_PRICE:
            refusal = "invalid_price"
        if refusal is not None:
            self._emit(("rejected", oid, refusal))
            return
        self._emit(("accepted", oid))
        if protection is None:
            protection = MAX_PRICE if side == BUY else 1
        self._execute(oid, account, side, protection, qty, _IOC, "market")
        if self._n_stops:
            self._fire_stops()

    def stop(
        self,
        oid: OrderId,
        account: Account,
        side: int,
        trigger: int,
        qty: int,
        price: int | None = None,
        kind: StopKind = StopKind.STOP_LOSS,
    ) -> None:
        """Hold an order until the last trade price reaches ``trigger`` ticks.

        Once fired it becomes a market order (``price is None``: stop-market) or a GTC limit
        order at ``price`` (stop-limit), with this id and account.
        """
        refusal = self._new_order_refusal(oid, side, qty)
        if refusal is None:
            if not 0 < trigger <= MAX_PRICE or (price is not None and not 0 < price <= MAX_PRICE):
                refusal = "invalid_price"
            elif kind not in _KINDS:
                refusal = "invalid_kind"
        if refusal is not None:
            self._emit(("rejected", oid, refusal))
            return
        self._emit(("accepted", oid))
        self._stop_seq += 1
        entry = StopOrder(self._stop_seq, oid, account, side, StopKind(kind), trigger, qty, price)
        self._add_stop(entry)
        self._fire_stops()

    def cancel(self, oid: OrderId) -> None:
        """Cancel what remains of a resting order or a pending stop."""
        rec = self._index.pop(oid, None)
        if rec is None:
            if oid in self._stops:
                self._cancel_stop(oid)
            else:
                self._emit(("rejected", oid, "unknown_order"))
            return
        qty = rec[0]
        rec[0] = 0
        level: Level = rec[3]
        left = level.qty - qty
        level.qty = left
        self._emit(("cancelled", oid, qty, "cancelled"))
        if not left:
            self._drop_level(level)
            return
        dead = level.dead + 1
        level.dead = dead
        if dead > _COMPACT_AFTER and dead * 2 > len(level.orders):
            level.orders = deque(filter(_LIVE, level.orders))  # C loop: no bytecode per record
            level.dead = 0

    def reduce(self, oid: OrderId, qty: int) -> None:
        """Lower a live order's remaining quantity to ``qty`` lots, keeping its priority.

        ``qty`` must be at least 1 and below the remaining quantity (to remove an order,
        cancel it); a pending stop can be reduced too.
        """
        rec = self._index.get(oid)
        if rec is not None:
            if not 0 < qty < rec[0]:
                self._emit(("rejected", oid, "invalid_quantity"))
                return
            rec[3].qty -= rec[0] - qty
            rec[0] = qty
        else:
            entry = self._stops.get(oid)
            if entry is None:
                self._emit(("rejected", oid, "unknown_order"))
                return
            if not 0 < qty < entry.qty:
                self._emit(("rejected", oid, "invalid_quantity"))
                return
            entry.qty = qty
        self._emit(("reduced", oid, qty))

    def halt(self) -> None:
        """Refuse new orders (trading status ``halted``); cancel and reduce still work."""
        self._halted = True
        self._slow = True

    def resume(self) -> None:
        """Accept new orders again (trading status ``open``)."""
        self._halted = False
        self._slow = bool(self._n_stops)

    # ------------------------------------------------------------------ queries

    @property
    def halted(self) -> bool:
        """Whether new orders are refused."""
        return self._halted

    @property
    def best_bid(self) -> int | None:
        """Highest resting buy price in ticks, or ``None``."""
        return None if self._best_bid == NO_BID else self._best_bid

    @property
    def best_ask(self) -> int | None:
        """Lowest resting sell price in ticks, or ``None``."""
        return None if self._best_ask == NO_ASK else self._best_ask

    @property
    def last_price(self) -> int | None:
        """Price of the last trade in ticks (what stops trigger on), or ``None``."""
        return self._last

    @property
    def order_count(self) -> int:
        """Resting orders (pending stops not included)."""
        return len(self._index)

    @property
    def stop_count(self) -> int:
        """Stops not yet triggered."""
        return self._n_stops

    def depth(
        self, levels: int | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Aggregated ``(price, lots)`` per level, best first, as ``(bids, asks)``."""
        if levels is None:
            bid_prices = sorted(self._bids, reverse=True)
            ask_prices = sorted(self._asks)
        else:  # the top of a deep book without sorting all of it
            bid_prices = nlargest(levels, self._bids)
            ask_prices = nsmallest(levels, self._asks)
        return (
            [(p, self._bids[p].qty) for p in bid_prices],
            [(p, self._asks[p].qty) for p in ask_prices],
        )

    def order(self, oid: OrderId) -> OrderView | None:
        """The live order ``oid`` (resting or pending stop), or ``None``."""
        rec = self._index.get(oid)
        if rec is not None:
            level: Level = rec[3]
            return OrderView(oid, level.side, rec[0], level.price)
        entry = self._stops.get(oid)
        if entry is not None:
            return OrderView(oid, entry.side, entry.qty, entry.price, entry.trigger)
        return None

    def level_orders(self, side: int, price: int) -> list[tuple[OrderId, Account, int]]:
        """``(id, account, remaining)`` of the live orders at one level, oldest first."""
        level = (self._bids if side == BUY else self._asks).get(price)
        if level is None:
            return []
        return [(o[1], o[2], o[0]) for o in level.orders if o[0]]

    def stops(self) -> list[StopOrder]:
        """Pending stops in placement order (copies: changing them changes nothing)."""
        entries = sorted(self._stops.values(), key=lambda s: s.seq)
        return [StopOrder(s.seq, s.oid, s.account, s.side, s.kind, s.trigger, s.qty, s.price)
                for s in entries]

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """The engine's whole state as plain data (JSON-ready: lists, ints, strings).

        ``MatchingEngine.restore(engine.snapshot())`` continues exactly as this engine would.
        """
        from dpgnode.domain.exchange.snapshot import dump

        return dump(self)

    @classmethod
    def restore(
        cls, snapshot: Mapping[str, Any], *, events: list[Event] | None = None
    ) -> MatchingEngine:
        """A new engine in the state of :meth:`snapshot` data.

        Raises:
            ValidationError: the snapshot is malformed or inconsistent.
        """
        from dpgnode.domain.exchange.snapshot import load

        return load(cls, snapshot, events)

    # ------------------------------------------------------------------ internals

    def _new_order_refusal(self, oid: OrderId, side: int, qty: int) -> str | None:
        """Why a new order of any type is refused, or ``None``."""
        if self._halted:
            return "halted"
        if oid in self._index or oid in self._stops:
            return "duplicate_id"
        if side != BUY and side != SELL:
            return "invalid_side"
        if qty <= 0:
            return "invalid_quantity"
        return None

    def _limit_checked(
        self,
        oid: OrderId,
        account: Account,
        side: int,
        price: int,
        qty: int,
        tif: TimeInForce,
        post_only: bool,
    ) -> None:
        """Every limit order that is not a plain GTC one with no stop pending."""
        refusal = self._new_order_refusal(oid, side, qty)
        if refusal is None:
            if not 0 < price <= MAX_PRICE:
                refusal = "invalid_price"
            elif tif not in _TIFS:
                refusal = "invalid_tif"
            elif post_only and (
                price >= self._best_ask if side == BUY else price <= self._best_bid
            ):
                refusal = "would_cross"
        if refusal is not None:
            self._emit(("rejected", oid, refusal))
            return
        self._emit(("accepted", oid))
        tif = TimeInForce(tif)  # a plain "IOC" string becomes the member compared by identity
        self._execute(oid, account, side, price, qty, tif, "ioc" if tif is _IOC else "fok")
        if self._n_stops:
            self._fire_stops()
