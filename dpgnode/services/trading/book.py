"""One pair's in-memory book and how it is kept equal to the database.

The database is the truth: a book is a cache of the pair's open orders and pending stops,
rebuilt from them in priority order whenever it might differ. Each command that changes a
book gives the pair a new ``version`` in the same transaction; the in-memory book
remembers the version it reflects. A command first compares the two and rebuilds on any
mismatch, which covers a book changed by another process (a second API worker,
``dpg book cancel-all``), a command that raised half-way (its version is cleared before the
engine is touched and set only at the end), and a batch whose commit failed after its
commands ran (the stored version never moved).

Only writer commands touch the engine, one at a time (the writer runs commands one after
another on its own thread), so the engine needs no lock of its own; ``lock`` lets readers on
other threads take a consistent depth snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from dpgnode.domain.exchange import BUY, SELL, MatchingEngine
from dpgnode.domain.exchange.pair import Pair
from dpgnode.domain.exchange.snapshot import FORMAT as SNAPSHOT_FORMAT
from dpgnode.errors import ConfigError, IntegrityError, ValidationError
from dpgnode.ports.trading import OrderRecord, OrderStatus, PairState, Side

DIRTY = ""
"""The version of a book that may not match any stored state."""


def engine_side(side: Side) -> int:
    """The engine's side constant for ``side``."""
    return BUY if side is Side.BUY else SELL


def order_ticks(pair: Pair, order: OrderRecord) -> int:
    """A stored limit order's price in ticks.

    Raises:
        ConfigError: the price is off the pair's grid (the tick was changed in the
            configuration while the order was open).
    """
    if order.price is None:
        raise IntegrityError(f"order {order.id} has no price")
    try:
        return pair.tick.to_steps(order.price)
    except ValidationError as exc:
        raise ConfigError(
            f"order {order.id}: price {order.price} is off the tick of {pair.symbol}: the "
            "tick was changed while orders were open; restore it or cancel those orders",
            details={"field": "tick"},
        ) from exc


def _ticks(pair: Pair, price: str | None, what: str) -> int:
    """A stored price (trigger, last trade) in ticks; see :func:`order_ticks`."""
    if price is None:
        raise IntegrityError(f"{what} has no price")
    try:
        return pair.tick.to_steps(price)
    except ValidationError as exc:
        raise ConfigError(
            f"{what}: price {price} is off the tick of {pair.symbol}: the tick was changed "
            "while orders were open; restore it or cancel those orders",
            details={"field": "tick"},
        ) from exc


def lots_of(pair: Pair, units: int, what: str) -> int:
    """``units`` base units as whole lots, refusing a remainder (a changed lot size)."""
    lots = pair.lots_from_units(units)
    if pair.base_units(lots) != units:
        raise ConfigError(
            f"{what}: {units} base units are not whole lots of {pair.symbol}: the lot was "
            "changed while orders were open; restore it or cancel those orders",
            details={"field": "lot"},
        )
    return lots


@dataclass(slots=True)
class Book:
    """A pair, its engine and the stored state the engine reflects."""

    pair: Pair
    engine: MatchingEngine | None = None
    version: str = DIRTY
    seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self, state: PairState) -> bool:
        """Whether the engine reflects ``state`` exactly."""
        return self.engine is not None and self.version != DIRTY and self.version == state.version

    def rebuild(self, state: PairState, orders: Sequence[OrderRecord]) -> MatchingEngine:
        """Replace the engine by one holding ``orders`` (live, in priority order).

        Open orders rest in time priority, pending stops wait in placement order, and the
        engine's last trade price (what stops fire on) is the state's: the rebuilt engine
        continues exactly as the one that wrote these rows. Loaded as an engine snapshot,
        which checks the book (unique ids, not crossed).

        Raises:
            ConfigError: an order is off the pair's grid (tick or lot changed meanwhile).
            IntegrityError: the stored orders cross each other (they could never rest).
        """
        pair = self.pair
        bids: dict[int, list[list[object]]] = {}
        asks: dict[int, list[list[object]]] = {}
        stops: list[list[object]] = []
        for order in orders:
            lots = lots_of(pair, order.remaining, f"order {order.id}")
            side = engine_side(order.side)
            if order.status is OrderStatus.PENDING_TRIGGER:
                limit = None if order.price is None else order_ticks(pair, order)
                stops.append([
                    len(stops) + 1, order.id, order.user_id, side, str(order.type),
                    _ticks(pair, order.trigger_price, f"order {order.id}"), lots, limit,
                ])
                continue
            levels = bids if side == BUY else asks
            levels.setdefault(order_ticks(pair, order), []).append([order.id, order.user_id, lots])
        last = state.last_price
        snapshot = {
            "format": SNAPSHOT_FORMAT, "mode": pair.mode.value, "halted": False,
            "last_price": None if last is None else _ticks(pair, last, "the last price"),
            "stop_seq": len(stops), "stops": stops,
            "bids": [[price, bids[price]] for price in sorted(bids, reverse=True)],
            "asks": [[price, asks[price]] for price in sorted(asks)],
        }
        try:
            engine = MatchingEngine.restore(snapshot)
        except ValidationError as exc:
            raise IntegrityError(
                f"the stored live orders of {pair.symbol} do not form a book: {exc.message}"
            ) from exc
        self.engine, self.version, self.seq = engine, state.version, state.seq
        return engine

    @property
    def live(self) -> MatchingEngine:
        """The engine (the caller holds ``lock`` and knows the book was loaded)."""
        if self.engine is None:
            raise IntegrityError(f"the book of {self.pair.symbol} was never loaded")
        return self.engine

    def level_lots(self, side: int, ticks: int) -> int:
        """Lots resting at one price on one side."""
        return sum(lots for _, _, lots in self.live.level_orders(side, ticks))


def aggregate(
    pair: Pair, orders: Sequence[OrderRecord], levels: int | None
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Depth computed from stored open orders: ``(bids, asks)`` as ``(ticks, lots)``."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for order in orders:
        side = bids if order.side is Side.BUY else asks
        ticks = order_ticks(pair, order)
        side[ticks] = side.get(ticks, 0) + lots_of(pair, order.remaining, f"order {order.id}")
    best_bids = sorted(bids.items(), reverse=True)[:levels]
    best_asks = sorted(asks.items())[:levels]
    return best_bids, best_asks
