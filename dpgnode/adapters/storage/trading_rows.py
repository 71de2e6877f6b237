"""Rows of the trading tables <-> the trading port's records, and the prebuilt statements.

Statements are built once, at import, with bind parameters: building a SQLAlchemy Core
statement costs far more than binding values to one (about a millisecond per statement
against a few microseconds), and a trading command writes several rows. Update statements
name their key in a ``b_``-prefixed parameter so the other keys of a parameter dict are the
columns to set (SQLAlchemy's executemany UPDATE pattern).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from dpgnode.adapters.storage import tables
from dpgnode.ports.trading import (
    Candle,
    OrderRecord,
    OrderStatus,
    OrderType,
    PairState,
    PairStatus,
    Position,
    Side,
    TradeRecord,
)

_p = tables.trading_pairs
_o = tables.trading_orders
_t = tables.trading_trades
_c = tables.trading_candles
_pos = tables.trading_positions

_OPEN = str(OrderStatus.OPEN)
_LIVE = (_OPEN, str(OrderStatus.PENDING_TRIGGER))

PAIR_BY_SYMBOL = select(_p).where(_p.c.symbol == bindparam("symbol"))
UPDATE_PAIR = update(_p).where(_p.c.symbol == bindparam("b_symbol"))
INSERT_PAIR = insert(_p)
ORDER_BY_ID = select(_o).where(_o.c.id == bindparam("id"))
ORDER_BY_CLIENT_ID = select(_o).where(
    _o.c.user_id == bindparam("user_id"), _o.c.client_order_id == bindparam("client_order_id")
)
INSERT_ORDER = insert(_o)
UPDATE_ORDER = update(_o).where(_o.c.id == bindparam("b_id"))
BOOK = (
    select(_o)
    .where(_o.c.pair == bindparam("pair"), _o.c.status == _OPEN)
    .order_by(_o.c.priority, _o.c.id)
)
"""Resting orders of a pair in time priority (what the depth shows)."""
LIVE = (
    select(_o)
    .where(_o.c.pair == bindparam("pair"), _o.c.status.in_(_LIVE))
    .order_by(_o.c.priority, _o.c.id)
)
"""Resting orders and pending stops of a pair in priority order (what the engine holds)."""
INSERT_TRADES = insert(_t).returning(_t.c.id, _t.c.seq, sort_by_parameter_order=True)
UPDATE_CANDLE = update(_c).where(
    _c.c.pair == bindparam("b_pair"), _c.c.interval == bindparam("b_interval"),
    _c.c.start == bindparam("b_start"),
)
INSERT_CANDLES = insert(_c)
POSITIONS_OF = select(_pos).where(
    _pos.c.pair == bindparam("pair"), _pos.c.user_id.in_(bindparam("users", expanding=True))
)
UPDATE_POSITION = update(_pos).where(
    _pos.c.user_id == bindparam("b_user_id"), _pos.c.pair == bindparam("b_pair")
)
INSERT_POSITIONS = insert(_pos)


@cache
def candles_of(count: int) -> Any:
    """Select of a pair's candles among ``count`` ``(interval, start)`` keys (``i0``, ``s0``...)."""
    wanted = or_(*(
        and_(_c.c.interval == bindparam(f"i{n}"), _c.c.start == bindparam(f"s{n}"))
        for n in range(count)
    ))
    return select(_c).where(_c.c.pair == bindparam("pair"), wanted)


def pair(row: RowMapping) -> PairState:
    """A ``trading_pairs`` row as a state."""
    return PairState(
        symbol=row["symbol"], status=PairStatus(row["status"]), seq=int(row["seq"]),
        version=row["version"], last_price=row["last_price"], created_at=row["created_at"],
        updated_at=row["updated_at"], priority=int(row["priority"]),
    )


def pair_row(state: PairState) -> dict[str, Any]:
    """A state's column values (without the key, which callers name)."""
    return {
        "status": str(state.status), "seq": state.seq, "version": state.version,
        "last_price": state.last_price, "created_at": state.created_at,
        "updated_at": state.updated_at, "priority": state.priority,
    }


def order(row: RowMapping) -> OrderRecord:
    """A ``trading_orders`` row as a record."""
    return OrderRecord(
        id=row["id"], pair=row["pair"], user_id=row["user_id"],
        client_order_id=row["client_order_id"], side=Side(row["side"]),
        type=OrderType(row["type"]), tif=row["tif"], post_only=bool(row["post_only"]),
        price=row["price"], quantity=row["quantity"], filled=row["filled"],
        quote_filled=row["quote_filled"], maker_quote=row["maker_quote"],
        fee_paid=row["fee_paid"],
        status=OrderStatus(row["status"]), reason=row["reason"], hold_id=row["hold_id"],
        priority=int(row["priority"]), expires_at=row["expires_at"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        trigger_price=row["trigger_price"],
    )


def order_row(o: OrderRecord) -> dict[str, Any]:
    """A new order's column values."""
    return {
        "id": o.id, "pair": o.pair, "user_id": o.user_id, "client_order_id": o.client_order_id,
        "side": str(o.side), "type": str(o.type), "tif": o.tif, "post_only": o.post_only,
        "price": o.price, "quantity": o.quantity, "filled": o.filled,
        "quote_filled": o.quote_filled, "maker_quote": o.maker_quote,
        "fee_paid": o.fee_paid, "status": str(o.status),
        "reason": o.reason, "hold_id": o.hold_id, "priority": o.priority,
        "expires_at": o.expires_at, "created_at": o.created_at, "updated_at": o.updated_at,
        "trigger_price": o.trigger_price,
    }


def order_update(o: OrderRecord) -> dict[str, Any]:
    """What changes on a stored order (``UPDATE_ORDER`` parameters)."""
    return {
        "b_id": o.id, "filled": o.filled, "quote_filled": o.quote_filled,
        "maker_quote": o.maker_quote, "fee_paid": o.fee_paid, "status": str(o.status),
        "reason": o.reason, "priority": o.priority, "updated_at": o.updated_at,
    }


def trade(row: RowMapping) -> TradeRecord:
    """A ``trading_trades`` row as a record."""
    return TradeRecord(
        id=row["id"], pair=row["pair"], price=row["price"], quantity=row["quantity"],
        value=row["value"], buy_order_id=row["buy_order_id"],
        sell_order_id=row["sell_order_id"], buyer_id=row["buyer_id"],
        seller_id=row["seller_id"], taker_side=Side(row["taker_side"]),
        buyer_fee=row["buyer_fee"], seller_fee=row["seller_fee"], entry_id=row["entry_id"],
        created_at=row["created_at"], seq=int(row["seq"]),
    )


def trade_row(t: TradeRecord) -> dict[str, Any]:
    """A new trade's column values (the database assigns ``seq``)."""
    return {
        "id": t.id, "pair": t.pair, "price": t.price, "quantity": t.quantity, "value": t.value,
        "buy_order_id": t.buy_order_id, "sell_order_id": t.sell_order_id,
        "buyer_id": t.buyer_id, "seller_id": t.seller_id, "taker_side": str(t.taker_side),
        "buyer_fee": t.buyer_fee, "seller_fee": t.seller_fee, "entry_id": t.entry_id,
        "created_at": t.created_at,
    }


def candle(row: RowMapping) -> Candle:
    """A ``trading_candles`` row as a candle."""
    return Candle(
        pair=row["pair"], interval=row["interval"], start=row["start"], open=row["open"],
        high=row["high"], low=row["low"], close=row["close"], volume=row["volume"],
        quote_volume=row["quote_volume"], trades=int(row["trades"]),
    )


def candle_row(c: Candle) -> dict[str, Any]:
    """A new candle's column values."""
    return {
        "pair": c.pair, "interval": c.interval, "start": c.start, "open": c.open,
        "high": c.high, "low": c.low, "close": c.close, "volume": c.volume,
        "quote_volume": c.quote_volume, "trades": c.trades,
    }


def candle_update(c: Candle) -> dict[str, Any]:
    """What changes on a stored candle (``UPDATE_CANDLE`` parameters)."""
    return {
        "b_pair": c.pair, "b_interval": c.interval, "b_start": c.start, "high": c.high,
        "low": c.low, "close": c.close, "volume": c.volume, "quote_volume": c.quote_volume,
        "trades": c.trades,
    }


def position(row: RowMapping) -> Position:
    """A ``trading_positions`` row as a position."""
    return Position(
        user_id=row["user_id"], pair=row["pair"], quantity=row["quantity"], cost=row["cost"],
        realized_pnl=row["realized_pnl"], fees=row["fees"], updated_at=row["updated_at"],
    )


def position_row(p: Position) -> dict[str, Any]:
    """A new position's column values."""
    return {
        "user_id": p.user_id, "pair": p.pair, "quantity": p.quantity, "cost": p.cost,
        "realized_pnl": p.realized_pnl, "fees": p.fees, "updated_at": p.updated_at,
    }


def position_update(p: Position) -> dict[str, Any]:
    """What changes on a stored position (``UPDATE_POSITION`` parameters)."""
    return {
        "b_user_id": p.user_id, "b_pair": p.pair, "quantity": p.quantity, "cost": p.cost,
        "realized_pnl": p.realized_pnl, "fees": p.fees, "updated_at": p.updated_at,
    }
