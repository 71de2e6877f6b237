"""Positions and candles after a command's fills, read and written through the command's ``Tx``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dpgnode.ports.trading import Candle, Side, TradingStore
from dpgnode.ports.uow import Tx
from dpgnode.services.trading.candles import INTERVALS, add_trade, bucket_start
from dpgnode.services.trading.positions import apply_fill, empty_position


@dataclass(frozen=True, slots=True)
class Fill:
    """One side of one trade: who, which way, how much, at what value, fee and price."""

    user_id: str
    side: Side
    units: int
    value: int
    fee: int
    price: str


def save_positions(
    store: TradingStore, tx: Tx, pair: str, fills: Sequence[Fill], now: datetime
) -> None:
    """Apply ``fills`` in order to the users' stored positions in ``pair``."""
    if not fills:
        return
    stored = store.positions_for_update(tx, pair, [f.user_id for f in fills])
    current = dict(stored)
    for fill in fills:
        position = current.get(fill.user_id) or empty_position(fill.user_id, pair, now)
        current[fill.user_id] = apply_fill(
            position, fill.side, fill.units, fill.value, fill.fee, now
        )
    store.save_positions(tx, [p for u, p in sorted(current.items()) if u in stored], new=False)
    store.save_positions(
        tx, [p for u, p in sorted(current.items()) if u not in stored], new=True
    )


def save_candles(
    store: TradingStore, tx: Tx, pair: str, fills: Sequence[Fill], now: datetime
) -> None:
    """Add the trades of ``fills`` (each trade is two fills: the buy and the sell side)."""
    trades = [f for f in fills if f.side is Side.BUY]
    if not trades:
        return
    keys = [(name, bucket_start(now, interval)) for name, interval in INTERVALS.items()]
    stored = store.candles_for_update(tx, pair, keys)
    current: dict[tuple[str, datetime], Candle] = dict(stored)
    for trade in trades:
        for key in keys:
            current[key] = add_trade(
                current.get(key), (pair, *key), trade.price, trade.units, trade.value
            )
    store.save_candles(tx, [current[k] for k in keys if k in stored], new=False)
    store.save_candles(tx, [current[k] for k in keys if k not in stored], new=True)
