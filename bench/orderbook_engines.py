"""The engines bench/orderbook.py measures: setup, timed loop, latency loop, final book.

Each engine gets four functions: ``*_setup(prefill)`` builds a fresh engine and loads the
untimed prefill; ``*_timed(state, ops)`` is the throughput loop (one ``perf_counter`` pair);
``*_latency(state, ops)`` the same loop with ``perf_counter_ns`` around each op, returning
the samples and the fills it could count; ``*_book(state)`` reads the final book as
``(orders, lots)``. The loops dispatch on the op type inline and call each engine's own API
(see bench/orderbook.py's docstring for how each peer is driven).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import w1

LIMIT, CANCEL, MARKET = w1.LIMIT, w1.CANCEL, w1.MARKET
Ops = list[Any]


# -- engines: ours ---------------------------------------------------------------------------


def ours_setup(prefill: Ops, freeze: bool) -> Any:
    from dpgnode.domain.exchange import MatchingEngine

    engine = MatchingEngine()
    for _, oid, side, price, qty in prefill:
        engine.limit(oid, None, side, price, qty)
    engine.events.clear()
    gc.collect()
    if freeze:
        gc.freeze()
    return engine


def ours_timed(engine: Any, ops: Ops) -> float:
    limit, cancel, market, events = engine.limit, engine.cancel, engine.market, engine.events
    start = time.perf_counter()
    for op in ops:
        kind = op[0]
        if kind == LIMIT:
            limit(op[1], None, op[2], op[3], op[4])
        elif kind == CANCEL:
            cancel(op[1])
        else:
            market(op[1], None, op[2], op[3])
        if len(events) > 4096:
            events.clear()  # a consumer takes the events; the peers produce none to read
    return time.perf_counter() - start


def ours_latency(engine: Any, ops: Ops) -> tuple[list[int], int]:
    limit, cancel, market, events = engine.limit, engine.cancel, engine.market, engine.events
    pc = time.perf_counter_ns
    samples: list[int] = []
    record = samples.append
    fills = 0
    for op in ops:
        kind = op[0]
        if kind == LIMIT:
            t0 = pc()
            limit(op[1], None, op[2], op[3], op[4])
            t1 = pc()
        elif kind == CANCEL:
            t0 = pc()
            cancel(op[1])
            t1 = pc()
        else:
            t0 = pc()
            market(op[1], None, op[2], op[3])
            t1 = pc()
        record(t1 - t0)
        if events:
            fills += sum(1 for e in events if e[0] == "trade")
            events.clear()
    return samples, fills


def ours_book(engine: Any) -> tuple[int, int]:
    bids, asks = engine.depth()
    return engine.order_count, sum(q for _, q in bids) + sum(q for _, q in asks)


# -- engines: liquibook ------------------------------------------------------------------------


def liquibook_setup(prefill: Ops) -> tuple[Any, dict[int, Any]]:
    import liquibook  # type: ignore[import-untyped]

    book = liquibook.liquibook_book_OrderBook()
    orders: dict[int, Any] = {}
    for _, oid, side, price, qty in prefill:
        order = orders[oid] = liquibook.SimpleOrder(side == 0, price, qty)
        book.add(order)
    gc.collect()
    return book, orders


def liquibook_timed(state: tuple[Any, dict[int, Any]], ops: Ops) -> float:
    import liquibook

    book, orders = state
    add, cancel, new = book.add, book.cancel, liquibook.SimpleOrder
    ioc = liquibook.oc_immediate_or_cancel
    pop = orders.pop
    start = time.perf_counter()
    for op in ops:
        kind = op[0]
        if kind == LIMIT:
            order = orders[op[1]] = new(op[2] == 0, op[3], op[4])
            add(order)
        elif kind == CANCEL:
            cancel(pop(op[1]))
        else:
            add(new(op[2] == 0, 0, op[3]), ioc)
    return time.perf_counter() - start


def liquibook_latency(state: tuple[Any, dict[int, Any]], ops: Ops) -> tuple[list[int], None]:
    import liquibook

    book, orders = state
    add, cancel, new = book.add, book.cancel, liquibook.SimpleOrder
    ioc = liquibook.oc_immediate_or_cancel
    pop = orders.pop
    pc = time.perf_counter_ns
    samples: list[int] = []
    record = samples.append
    for op in ops:
        kind = op[0]
        if kind == LIMIT:
            t0 = pc()
            order = orders[op[1]] = new(op[2] == 0, op[3], op[4])
            add(order)
            t1 = pc()
        elif kind == CANCEL:
            t0 = pc()
            cancel(pop(op[1]))
            t1 = pc()
        else:
            t0 = pc()
            add(new(op[2] == 0, 0, op[3]), ioc)
            t1 = pc()
        record(t1 - t0)
    return samples, None  # fills are only visible through a listener (a Python callback)


def liquibook_book(state: tuple[Any, dict[int, Any]]) -> tuple[int, int]:
    book = state[0]
    trackers = [*book.bids().values(), *book.asks().values()]
    return len(trackers), sum(t.open_qty() for t in trackers)


# -- engines: lightmatchingengine ----------------------------------------------------------------

INSTRUMENT = "W1"


def lme_setup(prefill: Ops) -> Any:
    from lightmatchingengine.lightmatchingengine import (  # type: ignore[import-untyped]
        LightMatchingEngine,
    )

    engine = LightMatchingEngine()
    for _, oid, side, price, qty in prefill:
        order, _ = engine.add_order(INSTRUMENT, price, qty, side + 1)
        if order.order_id != oid:
            raise SystemExit("lightmatchingengine numbers orders differently from W1")
    gc.collect()
    return engine


def lme_timed(engine: Any, ops: Ops) -> float:
    # Its ids count up from 1 per add_order, like W1's over limits and markets (checked in
    # lme_book), so W1's ids are used for cancels as they are.
    add, cancel = engine.add_order, engine.cancel_order
    start = time.perf_counter()
    for op in ops:
        kind = op[0]
        if kind == LIMIT:
            add(INSTRUMENT, op[3], op[4], op[2] + 1)
        elif kind == CANCEL:
            cancel(op[1], INSTRUMENT)
        else:
            order, _ = add(INSTRUMENT, 0, op[3], op[2] + 1)
            if order.leaves_qty:
                cancel(order.order_id, INSTRUMENT)  # it would rest at price 0: make it IOC
    return time.perf_counter() - start


def lme_latency(engine: Any, ops: Ops) -> tuple[list[int], int]:
    add, cancel = engine.add_order, engine.cancel_order
    pc = time.perf_counter_ns
    samples: list[int] = []
    record = samples.append
    fills = 0
    for op in ops:
        kind = op[0]
        if kind == LIMIT:
            t0 = pc()
            order, trades = add(INSTRUMENT, op[3], op[4], op[2] + 1)
            t1 = pc()
        elif kind == CANCEL:
            t0 = pc()
            cancel(op[1], INSTRUMENT)
            t1 = pc()
            order, trades = None, ()
        else:
            t0 = pc()
            order, trades = add(INSTRUMENT, 0, op[3], op[2] + 1)
            if order.leaves_qty:
                cancel(order.order_id, INSTRUMENT)
            t1 = pc()
        record(t1 - t0)
        if trades:  # the taker's own trade records carry its id; the others are fills
            fills += sum(1 for t in trades if t.order_id != order.order_id)
    return samples, fills


def lme_book(engine: Any, last_id: int) -> tuple[int, int]:
    if engine.curr_order_id != last_id:
        raise SystemExit(
            f"lightmatchingengine ids ended at {engine.curr_order_id}, W1's at {last_id}")
    book = engine.order_books[INSTRUMENT]
    resting = [o for side in (book.bids, book.asks) for level in side.values() for o in level]
    return len(resting), sum(o.leaves_qty for o in resting)


# -- shared --------------------------------------------------------------------------------------


def pct(samples: list[int], q: float) -> float:
    return samples[min(len(samples) - 1, int(q * len(samples)))] / 1_000


def latency_figures(samples: list[int], unit: float = 1.0) -> dict[str, float]:
    """p50/p99/p99.9/max of ``samples`` (ns), in µs divided by ``unit``."""
    samples.sort()
    return {
        "p50": round(pct(samples, 0.5) / unit, 3),
        "p99": round(pct(samples, 0.99) / unit, 3),
        "p999": round(pct(samples, 0.999) / unit, 3),
        "max": round(samples[-1] / 1_000 / unit, 3),
    }


def engine_hooks(name: str, prefill: Ops, last_id: int) -> tuple[
    Callable[[], Any], Callable[[Any, Ops], float], Callable[[Any, Ops], tuple[list[int], Any]],
    Callable[[Any], tuple[int, int]],
]:
    """``(setup, timed, latency, book)`` of one peer or of ours."""
    if name in ("ours", "ours-gc"):
        freeze = name == "ours"
        return (lambda: ours_setup(prefill, freeze), ours_timed, ours_latency, ours_book)
    if name == "liquibook":
        return (lambda: liquibook_setup(prefill), liquibook_timed, liquibook_latency,
                liquibook_book)
    if name == "lightmatchingengine":
        return (lambda: lme_setup(prefill), lme_timed, lme_latency,
                lambda engine: lme_book(engine, last_id))
    raise SystemExit(f"unknown engine {name}")


def last_order_id(prefill: Ops, ops: Ops) -> int:
    return int(max(op[1] for op in [*prefill, *ops] if op[0] != CANCEL))
