"""Spot exchange domain: trading pairs, the matching engine and its JSON-line replay codec.

Everything here is pure (no I/O, no clock, no randomness): the engine's output is a function
of its command sequence alone, so a matcher process can be rebuilt from its command journal
and its snapshots.
"""

from dpgnode.domain.exchange.engine import MatchingEngine
from dpgnode.domain.exchange.pair import Increment, Pair, Rate, Rounding, TradingStatus
from dpgnode.domain.exchange.types import (
    BUY,
    MAX_PRICE,
    MAX_QTY,
    SELL,
    Account,
    Event,
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
    "MAX_QTY",
    "SELL",
    "Account",
    "Event",
    "Increment",
    "MatchingEngine",
    "MatchingMode",
    "OrderId",
    "OrderView",
    "Pair",
    "Rate",
    "Rounding",
    "StopKind",
    "StopOrder",
    "TimeInForce",
    "TradingStatus",
]
