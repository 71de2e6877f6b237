"""Snapshots of a :class:`~dpgnode.domain.exchange.engine.MatchingEngine` as plain data.

A snapshot holds exactly what decides the engine's future events: the live resting orders
per level in time priority, the pending stops with their placement sequence, the last trade
price (stops trigger on it), the stop sequence counter, the mode and the halted flag.
Lazily cancelled orders are left out: they never produce an event.

Format 1 (every value JSON-ready)::

    {"format": 1, "mode": "fifo", "halted": false, "last_price": 100 | null, "stop_seq": 3,
     "bids": [[price, [[id, account, qty], ...]], ...],   # best first, oldest first
     "asks": [[price, [[id, account, qty], ...]], ...],
     "stops": [[seq, id, account, side, kind, trigger, qty, price | null], ...]}  # by seq

:func:`load` checks everything it reads (types, ranges, ordering, unique ids, an uncrossed
book) and raises :class:`~dpgnode.errors.ValidationError` naming the first problem, so a
damaged snapshot can never produce an engine that breaks the book's invariants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dpgnode.domain.exchange.types import (
    BUY,
    MAX_PRICE,
    SELL,
    Account,
    Event,
    MatchingMode,
    OrderId,
    StopKind,
    StopOrder,
)
from dpgnode.errors import ValidationError

if TYPE_CHECKING:
    from dpgnode.domain.exchange.engine import MatchingEngine

FORMAT = 1


def dump(engine: MatchingEngine) -> dict[str, Any]:
    """The engine's state in snapshot format 1."""
    bids = [
        [price, _live(engine, BUY, price)] for price in sorted(engine._bids, reverse=True)
    ]
    asks = [[price, _live(engine, SELL, price)] for price in sorted(engine._asks)]
    stops = [
        [s.seq, s.oid, s.account, s.side, s.kind.value, s.trigger, s.qty, s.price]
        for s in sorted(engine._stops.values(), key=lambda s: s.seq)
    ]
    return {
        "format": FORMAT,
        "mode": engine.mode.value,
        "halted": engine.halted,
        "last_price": engine.last_price,
        "stop_seq": engine._stop_seq,
        "bids": bids,
        "asks": asks,
        "stops": stops,
    }


def _live(engine: MatchingEngine, side: int, price: int) -> list[list[Any]]:
    return [[oid, account, qty] for oid, account, qty in engine.level_orders(side, price)]


def load(
    cls: type[MatchingEngine], data: Mapping[str, Any], events: list[Event] | None
) -> MatchingEngine:
    """A new engine in the state ``data`` describes (see module docstring)."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ValidationError("not a format-1 engine snapshot", field="format")
    try:
        mode = MatchingMode(str(data.get("mode")))
    except ValueError:
        raise ValidationError("unknown matching mode", field="mode") from None
    engine = cls(mode, events=events)
    halted = data.get("halted")
    if not isinstance(halted, bool):
        raise ValidationError("halted must be a boolean", field="halted")
    last = data.get("last_price")
    engine._last = None if last is None else _int(last, "last_price", 1, MAX_PRICE)
    engine._stop_seq = _int(data.get("stop_seq"), "stop_seq", 0, 2**63)
    seen: set[OrderId] = set()
    _load_side(engine, BUY, data.get("bids"), seen)
    _load_side(engine, SELL, data.get("asks"), seen)
    bid, ask = engine.best_bid, engine.best_ask
    if bid is not None and ask is not None and bid >= ask:
        raise ValidationError("the snapshot's book is crossed", field="bids")
    _load_stops(engine, data.get("stops"), seen)
    if halted:
        engine.halt()
    return engine


def _load_side(engine: MatchingEngine, side: int, levels: object, seen: set[OrderId]) -> None:
    name = "bids" if side == BUY else "asks"
    previous: int | None = None
    for level in _list(levels, name):
        price_raw, orders = _pair(level, name)
        price = _int(price_raw, f"{name}.price", 1, MAX_PRICE)
        if previous is not None and (price >= previous if side == BUY else price <= previous):
            raise ValidationError(f"{name} are not in best-first order", field=name)
        previous = price
        entries = _list(orders, f"{name}.orders")
        if not entries:
            raise ValidationError(f"{name} has an empty level at {price}", field=name)
        for entry in entries:
            oid, account, qty = _triple(entry, f"{name}.orders")
            engine._rest(_oid(oid, seen), _account(account), side, price,
                         _int(qty, f"{name}.qty", 1, None))


def _load_stops(engine: MatchingEngine, stops: object, seen: set[OrderId]) -> None:
    previous = 0
    for item in _list(stops, "stops"):
        row = _list(item, "stops")
        if len(row) != 8:
            raise ValidationError("a stop has 8 fields", field="stops")
        seq = _int(row[0], "stops.seq", previous + 1, engine._stop_seq)
        previous = seq
        side = _int(row[3], "stops.side", BUY, SELL)
        try:
            kind = StopKind(row[4])
        except ValueError:
            raise ValidationError("unknown stop kind", field="stops.kind") from None
        price = None if row[7] is None else _int(row[7], "stops.price", 1, MAX_PRICE)
        entry = StopOrder(seq, _oid(row[1], seen), _account(row[2]), side, kind,
                      _int(row[5], "stops.trigger", 1, MAX_PRICE),
                      _int(row[6], "stops.qty", 1, None), price)
        engine._add_stop(entry)


def _list(value: object, field: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise ValidationError(f"{field} must be a list", field=field)
    return value


def _pair(value: object, field: str) -> tuple[Any, Any]:
    items = _list(value, field)
    if len(items) != 2:
        raise ValidationError(f"{field} entries have 2 fields", field=field)
    return items[0], items[1]


def _triple(value: object, field: str) -> tuple[Any, Any, Any]:
    items = _list(value, field)
    if len(items) != 3:
        raise ValidationError(f"{field} entries have 3 fields", field=field)
    return items[0], items[1], items[2]


def _int(value: object, field: str, low: int, high: int | None) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high]`` (``high`` None: unbounded)."""
    if type(value) is not int or value < low or (high is not None and value > high):
        raise ValidationError(f"{field} must be an integer in [{low}, {high}]", field=field)
    return value


def _oid(value: object, seen: set[OrderId]) -> OrderId:
    if type(value) not in (str, int):
        raise ValidationError("order ids are strings or integers", field="id")
    oid: OrderId = value  # type: ignore[assignment]  # checked on the line above
    if oid in seen:
        raise ValidationError(f"order id {oid!r} appears twice", field="id")
    seen.add(oid)
    return oid


def _account(value: object) -> Account:
    if value is not None and type(value) not in (str, int):
        raise ValidationError("accounts are strings, integers or null", field="account")
    account: Account = value  # type: ignore[assignment]  # checked on the line above
    return account
