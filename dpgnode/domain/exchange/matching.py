"""The book's data structures and the matching loops (FIFO and pro-rata).

Layout, chosen for the hot path (plain limit / cancel / market, FIFO):
- per side, a dict ``price -> Level``, a heap of the prices (``heapq``: pushing a new level
  and finding the next best are C calls; an emptied level's price stays in the heap and is
  skipped when it surfaces, and the heap is rebuilt when stale entries outnumber live
  levels), and the best price cached in an int (``NO_BID`` / ``NO_ASK`` when the side is
  empty, so the "does it cross?" test is one integer comparison, never a ``None`` check);
- a dict ``id -> record`` of every resting order (records are lists, see ``types``);
- cancel is lazy: the record's quantity becomes 0 and matching skips it; a level whose
  queue holds more cancelled records than live ones is compacted.

Invariants: ``best_bid < best_ask`` whenever both sides are non-empty (the book is never
crossed at rest); ``Level.qty`` is the sum of the live records' quantities and is 0 exactly
when the level has been removed; every live record is in the id index, and no other; every
level's price is in its side's heap, and no heap entry is better than the cached best.
"""

from __future__ import annotations

from collections import deque
from heapq import heapify, heappop, heappush

from sortedcontainers import SortedList

from dpgnode.domain.exchange.prorata import pro_rata_shares
from dpgnode.domain.exchange.types import (
    BUY,
    NO_ASK,
    NO_BID,
    SELL,
    Account,
    Event,
    Level,
    MatchingMode,
    OrderId,
    OrderRecord,
    StopOrder,
    TimeInForce,
)

_GTC = TimeInForce.GTC
_FOK = TimeInForce.FOK
_SPARE_LEVELS = 32
_STALE_SLACK = 64  # stale heap entries tolerated beyond one per live level before a rebuild


class BookCore:
    """State of one book and the loops that match against it (no command validation)."""

    __slots__ = (
        "_ask_heap",
        "_asks",
        "_best_ask",
        "_best_bid",
        "_bid_heap",
        "_bids",
        "_emit",
        "_halted",
        "_index",
        "_last",
        "_n_stops",
        "_pro_rata",
        "_slow",
        "_spare",
        "_stop_seq",
        "_stops",
        "_stops_falling",
        "_stops_rising",
        "events",
        "mode",
    )

    def __init__(
        self, mode: MatchingMode = MatchingMode.FIFO, *, events: list[Event] | None = None
    ) -> None:
        self.mode = MatchingMode(mode)
        self.events: list[Event] = [] if events is None else events
        self._emit = self.events.append
        self._pro_rata = self.mode is MatchingMode.PRO_RATA
        self._bids: dict[int, Level] = {}
        self._asks: dict[int, Level] = {}
        # Min-heaps of the level prices (bids negated): the best is at [0]. An emptied level
        # leaves its price behind until it surfaces (or the heap is rebuilt): lazy deletion.
        self._bid_heap: list[int] = []
        self._ask_heap: list[int] = []
        self._best_bid = NO_BID
        self._best_ask = NO_ASK
        self._index: dict[OrderId, OrderRecord] = {}
        self._halted = False
        self._slow = False
        """Halted or a stop pending: new orders take the checked path (see ``limit``)."""
        self._spare: list[Level] = []
        """Emptied levels kept for reuse: a new level is then 4 stores, not an object."""
        self._last: int | None = None
        self._stops: dict[OrderId, StopOrder] = {}
        self._stops_falling: SortedList[tuple[int, int, OrderId]] = SortedList()
        self._stops_rising: SortedList[tuple[int, int, OrderId]] = SortedList()
        self._n_stops = 0
        self._stop_seq = 0

    def _execute(
        self,
        oid: OrderId,
        account: Account,
        side: int,
        price: int,
        qty: int,
        tif: TimeInForce,
        remainder: str,
    ) -> None:
        """Match an accepted order, then rest (GTC) or cancel (``remainder``) what is left."""
        crosses = price >= self._best_ask if side == BUY else price <= self._best_bid
        if crosses:
            if tif is _FOK and not self._fillable(side, account, price, qty):
                self._emit(("cancelled", oid, qty, "fok"))
                return
            if self._pro_rata:
                qty = self._take_pro_rata(oid, account, side, price, qty)
            elif side == BUY:
                qty = self._take_asks(oid, account, price, qty)
            else:
                qty = self._take_bids(oid, account, price, qty)
            if not qty:
                return
        if tif is _GTC:
            self._rest(oid, account, side, price, qty)
        else:
            self._emit(("cancelled", oid, qty, remainder))

    def _rest(self, oid: OrderId, account: Account, side: int, price: int, qty: int) -> None:
        """Queue ``qty`` lots at ``price`` behind the orders already there."""
        if side == BUY:
            level = self._bids.get(price)
            if level is None:
                level = self._bids[price] = self._new_level(BUY, price)
                heappush(self._bid_heap, -price)
                if price > self._best_bid:
                    self._best_bid = price
        else:
            level = self._asks.get(price)
            if level is None:
                level = self._asks[price] = self._new_level(SELL, price)
                heappush(self._ask_heap, price)
                if price < self._best_ask:
                    self._best_ask = price
        rec = [qty, oid, account, level]
        level.orders.append(rec)
        level.qty += qty
        self._index[oid] = rec

    def _new_level(self, side: int, price: int) -> Level:
        if self._spare:
            level = self._spare.pop()
            level.side = side
            level.price = price
            return level
        return Level(side, price)

    def _recycle(self, level: Level) -> None:
        """Keep an emptied level (its queue holds only finished records) for reuse."""
        if len(self._spare) < _SPARE_LEVELS:
            level.orders.clear()
            level.dead = 0
            self._spare.append(level)

    def _drop_level(self, level: Level) -> None:
        """Remove an emptied level and move the cached best price if it was the best."""
        self._recycle(level)
        price = level.price
        if level.side == BUY:
            bids = self._bids
            del bids[price]
            heap = self._bid_heap
            if price == self._best_bid:
                while heap and -heap[0] not in bids:
                    heappop(heap)
                self._best_bid = -heap[0] if heap else NO_BID
            elif len(heap) > 2 * len(bids) + _STALE_SLACK:
                heap[:] = [-p for p in bids]
                heapify(heap)
        else:
            asks = self._asks
            del asks[price]
            heap = self._ask_heap
            if price == self._best_ask:
                while heap and heap[0] not in asks:
                    heappop(heap)
                self._best_ask = heap[0] if heap else NO_ASK
            elif len(heap) > 2 * len(asks) + _STALE_SLACK:
                heap[:] = list(asks)
                heapify(heap)

    def _take_asks(self, oid: OrderId, account: Account, limit: int, qty: int) -> int:
        """FIFO-match a buy against asks up to ``limit``; returns the lots left.

        Self-trade prevention cancels the rest (and returns 0). The sell twin below is the
        same loop mirrored; they are not merged because a side test per fill costs more than
        the duplication does to read.
        """
        asks = self._asks
        index = self._index
        emit = self._emit
        best = self._best_ask
        while best <= limit:
            level = asks[best]
            orders = level.orders
            start = qty
            while orders:
                rec = orders[0]
                size = rec[0]
                if not size:
                    orders.popleft()
                    level.dead -= 1
                    continue
                if account is not None and rec[2] == account:
                    if qty != start:
                        self._last = best
                    self._best_ask = best
                    emit(("cancelled", oid, qty, "self_trade"))
                    return 0
                if size <= qty:
                    orders.popleft()
                    rec[0] = 0
                    del index[rec[1]]
                    level.qty -= size
                    emit(("trade", rec[1], oid, best, size))
                    qty -= size
                    if not qty:
                        break
                else:
                    rec[0] = size - qty
                    level.qty -= qty
                    emit(("trade", rec[1], oid, best, qty))
                    qty = 0
                    break
            self._last = best
            if not level.qty:
                del asks[best]
                spare = self._spare
                if len(spare) < _SPARE_LEVELS:  # ``_recycle`` written out
                    orders.clear()
                    level.dead = 0
                    spare.append(level)
                heap = self._ask_heap
                while heap and heap[0] not in asks:
                    heappop(heap)
                best = heap[0] if heap else NO_ASK
            if not qty:
                break
        self._best_ask = best
        return qty

    def _take_bids(self, oid: OrderId, account: Account, limit: int, qty: int) -> int:
        """FIFO-match a sell against bids down to ``limit``; returns the lots left."""
        bids = self._bids
        index = self._index
        emit = self._emit
        best = self._best_bid
        while best >= limit:
            level = bids[best]
            orders = level.orders
            start = qty
            while orders:
                rec = orders[0]
                size = rec[0]
                if not size:
                    orders.popleft()
                    level.dead -= 1
                    continue
                if account is not None and rec[2] == account:
                    if qty != start:
                        self._last = best
                    self._best_bid = best
                    emit(("cancelled", oid, qty, "self_trade"))
                    return 0
                if size <= qty:
                    orders.popleft()
                    rec[0] = 0
                    del index[rec[1]]
                    level.qty -= size
                    emit(("trade", rec[1], oid, best, size))
                    qty -= size
                    if not qty:
                        break
                else:
                    rec[0] = size - qty
                    level.qty -= qty
                    emit(("trade", rec[1], oid, best, qty))
                    qty = 0
                    break
            self._last = best
            if not level.qty:
                del bids[best]
                spare = self._spare
                if len(spare) < _SPARE_LEVELS:  # ``_recycle`` written out
                    orders.clear()
                    level.dead = 0
                    spare.append(level)
                heap = self._bid_heap
                while heap and -heap[0] not in bids:
                    heappop(heap)
                best = -heap[0] if heap else NO_BID
            if not qty:
                break
        self._best_bid = best
        return qty

    def _take_pro_rata(
        self, oid: OrderId, account: Account, side: int, limit: int, qty: int
    ) -> int:
        """Pro-rata-match against the other side up to ``limit``; returns the lots left.

        A level that holds an order of the same account is not matched: the rest of the
        incoming order is cancelled (self-trade prevention), as every live order of a level
        takes part in its allocation.
        """
        while qty:
            if side == BUY:
                best = self._best_ask
                if best > limit:
                    break
                level = self._asks[best]
            else:
                best = self._best_bid
                if best < limit:
                    break
                level = self._bids[best]
            live = [rec for rec in level.orders if rec[0]]
            if account is not None and any(rec[2] == account for rec in live):
                self._emit(("cancelled", oid, qty, "self_trade"))
                return 0
            shares = pro_rata_shares(qty, [rec[0] for rec in live])
            self._last = best
            filled = 0
            for rec, share in zip(live, shares, strict=True):
                if share:
                    self._emit(("trade", rec[1], oid, best, share))
                    rec[0] -= share
                    filled += share
                    if not rec[0]:
                        del self._index[rec[1]]
            level.qty -= filled
            qty -= filled
            if level.qty:
                level.orders = deque(rec for rec in live if rec[0])
                level.dead = 0
            else:
                self._drop_level(level)
        return qty

    def _fillable(self, side: int, account: Account, limit: int, qty: int) -> bool:
        """Whether ``qty`` lots can trade at once up to ``limit`` (the fill-or-kill test).

        Counts what matching would really fill: it stops where self-trade prevention would
        cancel (at an own order in FIFO, at a level holding one in pro-rata).
        """
        if side == BUY:
            book = self._asks
            prices = sorted(p for p in book if p <= limit)
        else:
            book = self._bids
            prices = sorted((p for p in book if p >= limit), reverse=True)
        available = 0
        for price in prices:
            level = book[price]
            if account is None:
                available += level.qty
            elif self._pro_rata:
                if any(rec[0] and rec[2] == account for rec in level.orders):
                    return False
                available += level.qty
            else:
                for rec in level.orders:
                    if rec[0]:
                        if rec[2] == account:
                            return False
                        available += rec[0]
                        if available >= qty:
                            return True
            if available >= qty:
                return True
        return False
