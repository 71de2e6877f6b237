"""Vocabulary of the matching engine: sides, modes, time in force, events, book records.

Kept apart from the engine so that the codec, the snapshot module and the trading service
can name these types without reading the matching code.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

BUY = 0
"""Side of an order that buys the base asset."""
SELL = 1
"""Side of an order that sells the base asset."""

MAX_PRICE = 2**62 - 1
"""Largest price in ticks; larger prices are rejected (keeps the empty-book sentinels apart)."""
MAX_QTY = 2**62 - 1
"""Largest order quantity in lots a pair may allow (``Pair.max_qty`` default). The engine
itself takes any positive quantity: Python integers do not overflow, and its hot path
spends no comparison on a bound the pair already enforces."""

NO_ASK = MAX_PRICE + 1
"""Best ask of an empty ask side: above every valid price, so no buy crosses it."""
NO_BID = 0
"""Best bid of an empty bid side: below every valid price, so no sell crosses it."""

OrderId = str | int
"""Caller-chosen order identifier (the replay uses strings, the W1 benchmark integers)."""
Account = str | int | None
"""Owner of an order, for self-trade prevention; ``None`` opts out of it."""


class MatchingMode(StrEnum):
    """How an incoming order is shared among the resting orders of one price level."""

    FIFO = "fifo"
    """Price-time priority: the oldest order at the best price trades first."""
    PRO_RATA = "pro-rata"
    """In proportion to each resting order's remaining quantity, leftovers oldest first."""


class TimeInForce(StrEnum):
    """What happens to a limit order's quantity that does not trade at once."""

    GTC = "GTC"
    """Good till cancelled: the rest goes into the book."""
    IOC = "IOC"
    """Immediate or cancel: the rest is cancelled."""
    FOK = "FOK"
    """Fill or kill: trades only if all of it trades at once, else nothing trades."""


class StopKind(StrEnum):
    """Which way the last trade price must move for a stop order to fire."""

    STOP_LOSS = "stop_loss"
    """Sell fires at ``last <= trigger``, buy at ``last >= trigger``."""
    TAKE_PROFIT = "take_profit"
    """Sell fires at ``last >= trigger``, buy at ``last <= trigger``."""


Accepted = tuple[Literal["accepted"], OrderId]
"""``("accepted", id)``: a new order passed every check."""
Trade = tuple[Literal["trade"], OrderId, OrderId, int, int]
"""``("trade", maker_id, taker_id, price_ticks, qty_lots)``, at the maker's price."""
Cancelled = tuple[Literal["cancelled"], OrderId, int, str]
"""``("cancelled", id, remaining_lots, reason)``; reason: ``cancelled`` (asked for),
``ioc``, ``market``, ``fok``, ``self_trade``."""
Rejected = tuple[Literal["rejected"], OrderId, str]
"""``("rejected", id, reason)``: the command changed nothing."""
Triggered = tuple[Literal["triggered"], OrderId]
"""``("triggered", id)``: a stop fired; the events of its order follow."""
Reduced = tuple[Literal["reduced"], OrderId, int]
"""``("reduced", id, remaining_lots)``: a live order's quantity was lowered."""
Event = Accepted | Trade | Cancelled | Rejected | Triggered | Reduced
"""One engine event: a plain tuple, so that emitting one costs a single small allocation."""

# A resting order is a list ``[qty, id, account, level]`` rather than a slotted object:
# building a list costs a quarter of a class instantiation (45 vs 183 ns measured here), and
# resting an order is the most frequent write of the hot path (W1 in the benchmark notes).
# Fields are read by literal index: [0] remaining lots (0 once filled or cancelled), [1] id,
# [2] account, [3] the Level it rests in. ``Any`` is confined to these records.
OrderRecord = list[Any]


class Level:
    """The orders resting at one price on one side, oldest first.

    Cancelled orders stay in ``orders`` with quantity 0 until matching reaches them or the
    level is compacted (lazy cancel: no O(n) removal from the middle of a queue).
    """

    __slots__ = ("dead", "orders", "price", "qty", "side")

    def __init__(self, side: int, price: int) -> None:
        self.side = side
        self.price = price
        self.orders: deque[OrderRecord] = deque()
        self.qty = 0
        """Sum of the live orders' remaining lots; 0 exactly when the level is empty."""
        self.dead = 0
        """Cancelled orders still in ``orders``."""


@dataclass(slots=True)
class StopOrder:
    """A stop waiting for its trigger; ``seq`` orders stops that fire together."""

    seq: int
    oid: OrderId
    account: Account
    side: int
    kind: StopKind
    trigger: int
    qty: int
    price: int | None
    """Limit price once triggered (stop-limit), or ``None`` (stop-market)."""

    @property
    def falling(self) -> bool:
        """Fires when the last price falls to the trigger (sell stop-loss, buy take-profit)."""
        return (self.side == SELL) == (self.kind == StopKind.STOP_LOSS)

    @property
    def key(self) -> tuple[int, int, OrderId]:
        """Sort key in the trigger lists: seq is unique, so comparisons never reach the id."""
        return (self.trigger, self.seq, self.oid)


@dataclass(frozen=True, slots=True)
class OrderView:
    """A live order as the engine holds it (resting, or a stop not yet triggered)."""

    oid: OrderId
    side: int
    remaining: int
    price: int | None
    """Limit price in ticks; ``None`` for a stop-market order."""
    trigger: int | None = None
    """Trigger price in ticks for a pending stop, else ``None``."""
