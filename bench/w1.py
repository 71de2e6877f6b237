"""W1 order-book workload (bench/WORKLOADS.md in the shared notes), as plain tuples.

``generate(n_ops)`` returns ``(prefill_ops, ops)``; each op is one of::

    ("limit", order_id, side, price, qty)   # side 0 buy, 1 sell; price ticks, qty lots; GTC
    ("cancel", order_id)
    ("market", order_id, side, qty)         # IOC: the unfilled rest is dropped

Order ids are integers counting up from 1 over limits and markets (the prefill's too). The
``resting`` list cancels draw from is updated as WORKLOADS.md says, with one detail the text
leaves open and the published checksums pin down: when a limit order trades and leaves a
rest, its id is appended first, and only then are the makers it emptied swap-removed, in
fill order (removing them first gives 600,137 limits instead of 600,174). The workload depends on
the book (``D``, the number of resting orders, regulates aggressiveness, and cancels pick a
resting order), so this module carries its own small price-time FIFO book to drive the
draws: it is independent of ``dpgnode.domain.exchange`` on purpose, so that the engine's
result on these ops is checked against the published checksums rather than against itself.

Run ``python bench/w1.py`` to print the checksums of the default workload and the engine's
throughput on it (one ``perf_counter`` around the whole loop; a quick figure, the real
benchmark is ``bench/orderbook.py``).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from sortedcontainers import SortedList

SEED = 20240601
MID = 100_000
PREFILL = 2_000
LIMIT, CANCEL, MARKET = "limit", "cancel", "market"

Op = tuple[str, int] | tuple[str, int, int, int] | tuple[str, int, int, int, int]

# Published checksums for n_ops = 1,000,000 (WORKLOADS.md).
CHECKSUMS = {
    "limits": 600_174,
    "marketable": 187_158,
    "cancels": 300_102,
    "markets": 99_724,
    "fills": 395_226,
    "trading_ops": 222_012,
    "final_orders": 2_294,
    "final_lots": 114_558,
}


class _Book:
    """Minimal FIFO book (lazy cancel, live count per level); reports rests and removals."""

    def __init__(self) -> None:
        # per side: price -> [live order count, queue of [qty, side, price, id]]
        self.levels: tuple[dict[int, list[Any]], dict[int, list[Any]]] = ({}, {})
        self.prices: tuple[SortedList[int], SortedList[int]] = (SortedList(), SortedList())
        self.orders: dict[int, list[int]] = {}
        self.resting: list[int] = []
        self.position: dict[int, int] = {}
        self.fills = 0

    def _gone(self, oid: int) -> None:
        i = self.position.pop(oid)
        last = self.resting.pop()
        if last != oid:
            self.resting[i] = last
            self.position[last] = i

    def _drop(self, side: int, price: int) -> None:
        del self.levels[side][price]
        self.prices[side].remove(price)

    def take(self, side: int, limit: int | None, qty: int) -> tuple[int, list[int]]:
        """Match an incoming order of ``side``: the lots left and the makers it emptied.

        The emptied makers leave the book at once but stay in ``resting`` until the caller
        calls ``forget`` (see ``generate`` for why the order matters).
        """
        other = 1 - side
        book = self.levels[other]
        prices = self.prices[other]
        emptied: list[int] = []
        while qty and prices:
            best = prices[-1] if other == 0 else prices[0]
            if limit is not None and (best > limit if side == 0 else best < limit):
                break
            level = book[best]
            queue = level[1]
            while qty and queue:
                rec = queue[0]
                if rec[0] == 0:
                    queue.popleft()
                    continue
                fill = min(qty, rec[0])
                rec[0] -= fill
                qty -= fill
                self.fills += 1
                if rec[0] == 0:
                    queue.popleft()
                    level[0] -= 1
                    del self.orders[rec[3]]
                    emptied.append(rec[3])
            if level[0] == 0:
                self._drop(other, best)
        return qty, emptied

    def forget(self, emptied: list[int]) -> None:
        """Swap-remove filled makers from ``resting``, in fill order."""
        for oid in emptied:
            self._gone(oid)

    def rest(self, oid: int, side: int, price: int, qty: int) -> None:
        rec = [qty, side, price, oid]
        level = self.levels[side].get(price)
        if level is None:
            level = self.levels[side][price] = [0, deque()]
            self.prices[side].add(price)
        level[0] += 1
        level[1].append(rec)
        self.orders[oid] = rec
        self.position[oid] = len(self.resting)
        self.resting.append(oid)

    def cancel(self, oid: int) -> None:
        rec = self.orders.pop(oid)
        rec[0] = 0
        level = self.levels[rec[1]][rec[2]]
        level[0] -= 1
        if level[0] == 0:
            self._drop(rec[1], rec[2])
        self._gone(oid)


def generate(n_ops: int = 1_000_000, seed: int = SEED) -> tuple[list[Op], list[Op]]:
    """The W1 prefill (2,000 passive GTC limits) and ``n_ops`` timed operations."""
    prefill, ops, _ = simulate(n_ops, seed)
    return prefill, ops


def simulate(n_ops: int = 1_000_000, seed: int = SEED) -> tuple[list[Op], list[Op], dict[str, int]]:
    """``generate``'s ops plus what this module's own book saw (fills, final book)."""
    rng = random.Random(seed)
    book = _Book()
    prefill: list[Op] = []
    next_id = 0
    for _ in range(PREFILL):
        side = rng.getrandbits(1)
        off = rng.randint(1, 50)
        qty = rng.randint(1, 100)
        next_id += 1
        price = MID - off if side == 0 else MID + off
        prefill.append((LIMIT, next_id, side, price, qty))
        book.rest(next_id, side, price, qty)
    ops: list[Op] = []
    marketable_count = 0
    for _ in range(n_ops):
        r = rng.random()
        if r < 0.6:
            side = rng.getrandbits(1)
            d = len(book.resting)
            marketable = rng.random() < d / (d + 5000)
            marketable_count += marketable
            off = -rng.randint(1, 10) if marketable else rng.randint(1, 50)
            qty = rng.randint(1, 100)
            price = MID - off if side == 0 else MID + off
            next_id += 1
            ops.append((LIMIT, next_id, side, price, qty))
            left, emptied = book.take(side, price, qty)
            if left:
                book.rest(next_id, side, price, left)
            book.forget(emptied)
        elif r < 0.9:
            target = book.resting[rng.randrange(len(book.resting))]
            ops.append((CANCEL, target))
            book.cancel(target)
        else:
            side = rng.getrandbits(1)
            qty = rng.randint(1, 100)
            next_id += 1
            ops.append((MARKET, next_id, side, qty))
            book.forget(book.take(side, None, qty)[1])
    summary = {
        "marketable": marketable_count,
        "fills": book.fills,
        "final_orders": len(book.orders),
        "final_lots": sum(rec[0] for rec in book.orders.values()),
    }
    return prefill, ops, summary


def replay(prefill: list[Op], ops: list[Op]) -> dict[str, int]:
    """Run the ops through ``MatchingEngine`` (FIFO) and count what WORKLOADS.md checks."""
    from dpgnode.domain.exchange import MatchingEngine

    engine = MatchingEngine()
    events = engine.events
    for _, oid, side, price, qty in prefill:  # type: ignore[misc]
        engine.limit(oid, None, side, price, qty)
    events.clear()
    counts = {"limits": 0, "cancels": 0, "markets": 0, "fills": 0, "trading_ops": 0,
              "rejected": 0}
    for op in ops:
        if op[0] == LIMIT:
            counts["limits"] += 1
            engine.limit(op[1], None, op[2], op[3], op[4])  # type: ignore[misc]
        elif op[0] == CANCEL:
            counts["cancels"] += 1
            engine.cancel(op[1])
        else:
            counts["markets"] += 1
            engine.market(op[1], None, op[2], op[3])  # type: ignore[misc]
        fills = sum(1 for event in events if event[0] == "trade")
        counts["fills"] += fills
        counts["trading_ops"] += fills > 0
        counts["rejected"] += sum(1 for event in events if event[0] == "rejected")
        events.clear()
    bids, asks = engine.depth()
    counts["final_orders"] = engine.order_count
    counts["final_lots"] = sum(q for _, q in bids) + sum(q for _, q in asks)
    return counts


def throughput(prefill: list[Op], ops: list[Op]) -> float:
    """Ops/s of one timed pass (events cleared after each op, GC frozen after the prefill)."""
    import gc
    import time

    from dpgnode.domain.exchange import MatchingEngine

    engine = MatchingEngine()
    events = engine.events
    for _, oid, side, price, qty in prefill:  # type: ignore[misc]
        engine.limit(oid, None, side, price, qty)
    events.clear()
    gc.collect()
    gc.freeze()
    limit, cancel, market = engine.limit, engine.cancel, engine.market
    clear = events.clear
    start = time.perf_counter()
    for op in ops:
        kind = op[0]
        if kind == LIMIT:
            limit(op[1], None, op[2], op[3], op[4])  # type: ignore[misc]
        elif kind == CANCEL:
            cancel(op[1])
        else:
            market(op[1], None, op[2], op[3])  # type: ignore[misc]
        clear()
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    return len(ops) / elapsed


def _main() -> None:
    prefill, ops = generate()
    counts = replay(prefill, ops)
    print(counts)
    print("matches WORKLOADS.md:", all(counts[k] == v for k, v in CHECKSUMS.items()
                                        if k in counts))
    rates = sorted(throughput(prefill, ops) for _ in range(3))
    print(f"ops/s median of 3: {rates[1]:,.0f} (min {rates[0]:,.0f}, max {rates[2]:,.0f})")


if __name__ == "__main__":
    _main()
