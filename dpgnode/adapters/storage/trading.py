"""``TradingStore`` over SQL: pairs' state, orders, trades, candles and positions.

Writes run inside the writer's command through ``SqlTx.execute`` (the command's savepoint),
so an order row, its trades and the journal entries that settle them commit together or not
at all. Reads outside a command use pooled connections and see committed data only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy import exc as sa_exc

from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage import trading_rows as r
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.domain.events import OutboxEvent
from dpgnode.errors import ConflictError, IntegrityError
from dpgnode.ports.trading import (
    Candle,
    OrderRecord,
    OrderStatus,
    PairState,
    Position,
    TradeRecord,
)
from dpgnode.ports.uow import Tx

_p = tables.trading_pairs
_o = tables.trading_orders
_t = tables.trading_trades
_c = tables.trading_candles
_pos = tables.trading_positions


def _sql(tx: Tx) -> SqlTx:
    if not isinstance(tx, SqlTx):
        raise IntegrityError("trading storage needs the SQL writer's transaction")
    return tx


class SqlTradingStore:
    """The trading port over SQLAlchemy Core (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- inside a writer command ---------------------------------------------------------

    def pair_state(self, tx: Tx, symbol: str) -> PairState | None:
        row = _sql(tx).execute(r.PAIR_BY_SYMBOL, {"symbol": symbol}).mappings().first()
        return None if row is None else r.pair(row)

    def save_pair_state(self, tx: Tx, state: PairState) -> None:
        sql = _sql(tx)
        values = r.pair_row(state)
        done = sql.execute(r.UPDATE_PAIR, {"b_symbol": state.symbol, **values})
        if done.rowcount == 0:
            sql.execute(r.INSERT_PAIR, {"symbol": state.symbol, **values})

    def open_orders(self, tx: Tx, symbol: str) -> Sequence[OrderRecord]:
        rows = _sql(tx).execute(r.LIVE, {"pair": symbol}).mappings()
        return [r.order(row) for row in rows]

    def order_for_update(self, tx: Tx, order_id: str) -> OrderRecord | None:
        row = _sql(tx).execute(r.ORDER_BY_ID, {"id": order_id}).mappings().first()
        return None if row is None else r.order(row)

    def order_by_client_id(
        self, tx: Tx, user_id: str, client_order_id: str
    ) -> OrderRecord | None:
        row = _sql(tx).execute(
            r.ORDER_BY_CLIENT_ID, {"user_id": user_id, "client_order_id": client_order_id}
        ).mappings().first()
        return None if row is None else r.order(row)

    def insert_order(self, tx: Tx, order: OrderRecord) -> None:
        try:
            _sql(tx).execute(r.INSERT_ORDER, r.order_row(order))
        except sa_exc.IntegrityError as exc:
            raise ConflictError(
                "an order with this id or client order id exists",
                details={"orderId": order.id},
            ) from exc

    def update_orders(self, tx: Tx, orders: Sequence[OrderRecord]) -> None:
        if orders:
            _sql(tx).execute(r.UPDATE_ORDER, [r.order_update(o) for o in orders])

    def insert_trades(self, tx: Tx, trades: Sequence[TradeRecord]) -> Sequence[TradeRecord]:
        if not trades:
            return []
        rows = _sql(tx).execute(r.INSERT_TRADES, [r.trade_row(t) for t in trades]).all()
        seqs = {row.id: int(row.seq) for row in rows}
        return [replace(t, seq=seqs[t.id]) for t in trades]

    def candles_for_update(
        self, tx: Tx, pair: str, keys: Sequence[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], Candle]:
        if not keys:
            return {}
        params: dict[str, Any] = {"pair": pair}
        for n, (interval, start) in enumerate(keys):
            params[f"i{n}"], params[f"s{n}"] = interval, start
        rows = _sql(tx).execute(r.candles_of(len(keys)), params).mappings()
        found = (r.candle(row) for row in rows)
        return {(c.interval, c.start): c for c in found}

    def save_candles(self, tx: Tx, candles: Sequence[Candle], *, new: bool) -> None:
        if not candles:
            return
        if new:
            _sql(tx).execute(r.INSERT_CANDLES, [r.candle_row(c) for c in candles])
        else:
            _sql(tx).execute(r.UPDATE_CANDLE, [r.candle_update(c) for c in candles])

    def positions_for_update(
        self, tx: Tx, pair: str, user_ids: Sequence[str]
    ) -> dict[str, Position]:
        if not user_ids:
            return {}
        rows = _sql(tx).execute(
            r.POSITIONS_OF, {"pair": pair, "users": sorted(set(user_ids))}
        ).mappings()
        return {row["user_id"]: r.position(row) for row in rows}

    def save_positions(self, tx: Tx, positions: Sequence[Position], *, new: bool) -> None:
        if not positions:
            return
        if new:
            _sql(tx).execute(r.INSERT_POSITIONS, [r.position_row(p) for p in positions])
        else:
            _sql(tx).execute(r.UPDATE_POSITION, [r.position_update(p) for p in positions])

    def due_orders(self, tx: Tx, now: datetime, limit: int) -> Sequence[OrderRecord]:
        rows = _sql(tx).execute(
            select(_o)
            .where(
                _o.c.status == str(OrderStatus.OPEN),
                _o.c.expires_at.is_not(None),
                _o.c.expires_at <= now,
            )
            .order_by(_o.c.expires_at, _o.c.id)
            .limit(limit)
        ).mappings()
        return [r.order(row) for row in rows]

    # -- committed reads -----------------------------------------------------------------

    def earliest_expiry(self) -> datetime | None:
        with self._engine.connect() as conn:
            value: datetime | None = conn.execute(
                select(func.min(_o.c.expires_at)).where(_o.c.status == str(OrderStatus.OPEN))
            ).scalar()
        return value

    def pair_states(self) -> dict[str, PairState]:
        with self._engine.connect() as conn:
            return {
                row["symbol"]: r.pair(row)
                for row in conn.execute(select(_p).order_by(_p.c.symbol)).mappings()
            }

    def order(self, order_id: str) -> OrderRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_o).where(_o.c.id == order_id)).mappings().first()
        return None if row is None else r.order(row)

    def orders(
        self,
        *,
        user_id: str | None = None,
        pair: str | None = None,
        status: OrderStatus | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> Sequence[OrderRecord]:
        query = select(_o).order_by(_o.c.id.desc()).limit(limit)
        if user_id is not None:
            query = query.where(_o.c.user_id == user_id)
        if pair is not None:
            query = query.where(_o.c.pair == pair)
        if status is not None:
            query = query.where(_o.c.status == str(status))
        if before is not None:
            query = query.where(_o.c.id < before)
        with self._engine.connect() as conn:
            return [r.order(row) for row in conn.execute(query).mappings()]

    def book_orders(self, pair: str) -> Sequence[OrderRecord]:
        with self._engine.connect() as conn:
            return [r.order(row) for row in conn.execute(r.BOOK, {"pair": pair}).mappings()]

    def book_snapshot(self, pair: str) -> tuple[PairState | None, Sequence[OrderRecord]]:
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():  # one snapshot: the state's seq matches the orders
                row = conn.execute(select(_p).where(_p.c.symbol == pair)).mappings().first()
                orders = [r.order(x) for x in conn.execute(r.BOOK, {"pair": pair}).mappings()]
        return (None if row is None else r.pair(row)), orders

    def trades(
        self,
        *,
        user_id: str | None = None,
        pair: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[TradeRecord]:
        query = select(_t).order_by(_t.c.seq.desc()).limit(limit)
        if user_id is not None:
            query = query.where(or_(_t.c.buyer_id == user_id, _t.c.seller_id == user_id))
        if pair is not None:
            query = query.where(_t.c.pair == pair)
        if before is not None:
            query = query.where(_t.c.seq < before)
        with self._engine.connect() as conn:
            return [r.trade(row) for row in conn.execute(query).mappings()]

    def candles(
        self, pair: str, interval: str, since: datetime | None, limit: int
    ) -> Sequence[Candle]:
        query = select(_c).where(_c.c.pair == pair, _c.c.interval == interval)
        if since is not None:
            query = query.where(_c.c.start >= since).order_by(_c.c.start).limit(limit)
        else:
            query = query.order_by(_c.c.start.desc()).limit(limit)
        with self._engine.connect() as conn:
            found = [r.candle(row) for row in conn.execute(query).mappings()]
        return found if since is not None else found[::-1]

    def positions(self, user_id: str) -> Sequence[Position]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_pos).where(_pos.c.user_id == user_id).order_by(_pos.c.pair)
            ).mappings()
            return [r.position(row) for row in rows]

    def events_after(self, seq: int, prefix: str, limit: int) -> Sequence[OutboxEvent]:
        o = tables.outbox
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (
            select(o)
            .where(o.c.seq > seq, o.c.type.like(f"{escaped}%", escape="\\"))
            .order_by(o.c.seq)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                OutboxEvent(
                    seq=row["seq"], id=row["id"], type=row["type"], aggregate=row["aggregate"],
                    payload=json.loads(row["payload"]), created_at=row["created_at"],
                )
                for row in conn.execute(query).mappings()
            ]

    def last_event_seq(self) -> int:
        with self._engine.connect() as conn:
            value = conn.execute(select(func.max(tables.outbox.c.seq))).scalar()
        return int(value or 0)
