"""A small, slow, obviously correct order book: the oracle of the differential tests.

Everything is a flat list scanned and sorted on every step; no cached best price, no lazy
cancel, no index. Fill-or-kill is decided by running the match on a deep copy of the book
and looking at what is left, and pro-rata shares are computed with exact fractions, so that
neither shares code or shortcuts with the engine. It follows the semantics written in
``dpgnode/domain/exchange/engine.py``'s docstring and emits the same event tuples.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

BUY, SELL = 0, 1
MAX_PRICE = 2**62 - 1


@dataclass
class Resting:
    oid: Any
    account: Any
    side: int
    price: int
    qty: int
    arrival: int


@dataclass
class Stop:
    oid: Any
    account: Any
    side: int
    kind: str
    trigger: int
    qty: int
    price: int | None


class ReferenceBook:
    def __init__(self, mode: str = "fifo") -> None:
        self.mode = mode
        self.book: list[Resting] = []
        self.stops: list[Stop] = []  # in placement order
        self.last: int | None = None
        self.halted = False
        self.events: list[tuple[object, ...]] = []
        self.arrivals = 0

    # ------------------------------------------------------------ commands

    def limit(self, oid: Any, account: Any, side: int, price: int, qty: int, tif: str = "GTC",
              post_only: bool = False) -> None:
        reason = self._refusal(oid, side, qty)
        if reason is None:
            if not 0 < price <= MAX_PRICE:
                reason = "invalid_price"
            elif tif not in ("GTC", "IOC", "FOK"):
                reason = "invalid_tif"
            elif post_only and self._crossing(side, price):
                reason = "would_cross"
        if reason is not None:
            self.events.append(("rejected", oid, reason))
            return
        self.events.append(("accepted", oid))
        self._run(oid, account, side, price, qty, tif)
        self._fire_stops()

    def market(self, oid: Any, account: Any, side: int, qty: int,
               protection: int | None = None) -> None:
        reason = self._refusal(oid, side, qty)
        if reason is None and protection is not None and not 0 < protection <= MAX_PRICE:
            reason = "invalid_price"
        if reason is not None:
            self.events.append(("rejected", oid, reason))
            return
        self.events.append(("accepted", oid))
        self._run(oid, account, side, protection, qty, "MARKET")
        self._fire_stops()

    def stop(self, oid: Any, account: Any, side: int, trigger: int, qty: int,
             price: int | None = None, kind: str = "stop_loss") -> None:
        reason = self._refusal(oid, side, qty)
        if reason is None:
            if not 0 < trigger <= MAX_PRICE or (price is not None and not 0 < price <= MAX_PRICE):
                reason = "invalid_price"
            elif kind not in ("stop_loss", "take_profit"):
                reason = "invalid_kind"
        if reason is not None:
            self.events.append(("rejected", oid, reason))
            return
        self.events.append(("accepted", oid))
        self.stops.append(Stop(oid, account, side, kind, trigger, qty, price))
        self._fire_stops()

    def cancel(self, oid: Any) -> None:
        for order in self.book:
            if order.oid == oid:
                self.book.remove(order)
                self.events.append(("cancelled", oid, order.qty, "cancelled"))
                return
        for stop in self.stops:
            if stop.oid == oid:
                self.stops.remove(stop)
                self.events.append(("cancelled", oid, stop.qty, "cancelled"))
                return
        self.events.append(("rejected", oid, "unknown_order"))

    def reduce(self, oid: Any, qty: int) -> None:
        entries: list[Resting | Stop] = [*self.book, *self.stops]
        for entry in entries:
            if entry.oid == oid:
                if not 0 < qty < entry.qty:
                    self.events.append(("rejected", oid, "invalid_quantity"))
                    return
                entry.qty = qty
                self.events.append(("reduced", oid, qty))
                return
        self.events.append(("rejected", oid, "unknown_order"))

    def halt(self) -> None:
        self.halted = True

    def resume(self) -> None:
        self.halted = False

    # ------------------------------------------------------------ views

    def depth(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        def levels(side: int) -> list[tuple[int, int]]:
            prices = sorted({o.price for o in self.book if o.side == side},
                            reverse=side == BUY)
            return [(p, sum(o.qty for o in self.book if o.side == side and o.price == p))
                    for p in prices]

        return levels(BUY), levels(SELL)

    def live_ids(self) -> set[object]:
        return {o.oid for o in self.book} | {s.oid for s in self.stops}

    # ------------------------------------------------------------ rules

    def _refusal(self, oid: Any, side: int, qty: int) -> str | None:
        if self.halted:
            return "halted"
        if oid in self.live_ids():
            return "duplicate_id"
        if side not in (BUY, SELL):
            return "invalid_side"
        if qty <= 0:
            return "invalid_quantity"
        return None

    def _crossing(self, side: int, price: int) -> bool:
        return any(self._crosses(side, price, o) for o in self.book)

    @staticmethod
    def _crosses(side: int, limit: int | None, resting: Resting) -> bool:
        if resting.side == side:
            return False
        if limit is None:
            return True
        return bool(resting.price <= limit if side == BUY else resting.price >= limit)

    def _opposite_by_priority(self, side: int, limit: int | None) -> list[Resting]:
        crossing = [o for o in self.book if self._crosses(side, limit, o)]
        if side == BUY:
            return sorted(crossing, key=lambda o: (o.price, o.arrival))
        return sorted(crossing, key=lambda o: (-o.price, o.arrival))

    def _run(self, oid: Any, account: Any, side: int, price: int | None, qty: int,
             tif: str) -> None:
        """Match, then rest / cancel; ``tif`` MARKET means IOC with reason ``market``."""
        if tif == "FOK":
            trial = copy.deepcopy(self)
            trial.events = []
            left = trial._match(oid, account, side, price, qty)
            if left != 0 or any(e[0] == "cancelled" for e in trial.events):
                self.events.append(("cancelled", oid, qty, "fok"))
                return
        left = self._match(oid, account, side, price, qty)
        if left is None or left == 0:
            return
        if tif == "GTC":
            assert price is not None
            self.arrivals += 1
            self.book.append(Resting(oid, account, side, price, left, self.arrivals))
        else:
            reason = {"IOC": "ioc", "FOK": "fok", "MARKET": "market"}[tif]
            self.events.append(("cancelled", oid, left, reason))

    def _match(self, oid: Any, account: Any, side: int, limit: int | None,
               qty: int) -> int | None:
        """Trade ``qty``; returns what is left, or None after a self-trade cancel."""
        while qty > 0:
            candidates = self._opposite_by_priority(side, limit)
            if not candidates:
                return qty
            best = candidates[0].price
            level = [o for o in candidates if o.price == best]  # in arrival order
            if self.mode == "fifo":
                maker = level[0]
                if account is not None and maker.account == account:
                    self.events.append(("cancelled", oid, qty, "self_trade"))
                    return None
                fill = min(qty, maker.qty)
                self._trade(maker, oid, fill)
                qty -= fill
            else:
                if account is not None and any(o.account == account for o in level):
                    self.events.append(("cancelled", oid, qty, "self_trade"))
                    return None
                total = sum(o.qty for o in level)
                if qty >= total:
                    shares = [o.qty for o in level]
                else:
                    shares = [math.floor(Fraction(o.qty * qty, total)) for o in level]
                    leftover = qty - sum(shares)
                    for i in range(len(level)):
                        if leftover == 0:
                            break
                        shares[i] += 1
                        leftover -= 1
                for maker, share in zip(level, shares, strict=True):
                    if share:
                        self._trade(maker, oid, share)
                        qty -= share
        return qty

    def _trade(self, maker: Resting, taker: Any, qty: int) -> None:
        self.events.append(("trade", maker.oid, taker, maker.price, qty))
        maker.qty -= qty
        self.last = maker.price
        if maker.qty == 0:
            self.book.remove(maker)

    def _fires(self, stop: Stop) -> bool:
        assert self.last is not None
        falling = (stop.side == SELL) == (stop.kind == "stop_loss")
        return self.last <= stop.trigger if falling else self.last >= stop.trigger

    def _fire_stops(self) -> None:
        while self.last is not None:
            fired = [s for s in self.stops if self._fires(s)]
            if not fired:
                return
            self.stops = [s for s in self.stops if s not in fired]
            for stop in fired:
                self.events.append(("triggered", stop.oid))
                if stop.price is None:
                    self._run(stop.oid, stop.account, stop.side, None, stop.qty, "MARKET")
                else:
                    self._run(stop.oid, stop.account, stop.side, stop.price, stop.qty, "GTC")
