"""Trading throughput through the node's real TradingService (issue 6).

Run: ``.venv/bin/python bench/trading.py [--orders 4000] [--inflight 32] [--postgres URL]``

A seeded workload: ``--users`` users funded in every asset of ``--pairs`` opened pairs, then
a stream of operations drawn by ``random.Random(--seed)``: GTC limit orders around a mid
price (some cross and trade, most rest), market orders, and cancels of orders that rested
earlier (a cancel of an order that has filled meanwhile is refused with 409 and counted as
``refused``). ``--inflight`` coroutines keep that many operations open on one event loop, as
API request handlers would (``place_async`` / ``cancel_async``), so the writer's group
commit can batch them; each operation goes through validation, holds, matching, one
journal entry per trade, order/trade/candle/position rows and outbox events, and is
acknowledged after the durable commit. Latency is measured per operation from the call to
its acknowledgement.

SQLite (WAL, ``synchronous=FULL``) in a temporary directory by default; ``--postgres URL``
runs against an empty PostgreSQL database instead. At the end the ledger is verified (hash
chain, Σ postings = 0 per asset, balances, holds). The machine the figures come from is
often shared: compare runs of the same machine and moment only. Prints a table; the last
line is one JSON object with every figure. Never asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpgnode.domain.exchange.pair import Pair
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.errors import DpgError
from dpgnode.node import Node, build_node
from dpgnode.ports.trading import OrderStatus, OrderType, Side
from dpgnode.services.trading import OrderRequest
from dpgnode.settings import load_settings

MID = 10_000
"""Mid price of every pair, in ticks."""
SPREAD = 12
"""Limit prices are drawn within ``MID ± SPREAD`` ticks."""


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of the stream."""

    kind: str  # "limit", "market" or "cancel"
    user: str
    pair: str
    side: Side
    lots: int
    ticks: int
    pick: float  # which rested order a cancel takes (a fraction of the list)


def operations(pairs: list[Pair], users: int, seed: int) -> Iterator[Op]:
    """The endless seeded stream: 65 % limit, 10 % market, 25 % cancel."""
    rng = random.Random(seed)
    while True:
        pair = pairs[rng.randrange(len(pairs))]
        roll = rng.random()
        kind = "limit" if roll < 0.65 else "market" if roll < 0.75 else "cancel"
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        # Buys lean low and sells high, so most limit orders rest and some cross.
        offset = rng.randint(-SPREAD, SPREAD // 3)
        ticks = MID + offset if side is Side.BUY else MID - offset
        yield Op(kind, f"b{rng.randrange(users)}", pair.symbol, side,
                 pair.min_qty * rng.randint(1, 5), ticks, rng.random())


@dataclass
class Result:
    """What one timed run measured."""

    done: int = 0
    refused: int = 0
    trades: int = 0
    seconds: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct_ms(self, q: float) -> float:
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


class Driver:
    """Runs the stream with ``inflight`` coroutines; remembers resting orders to cancel."""

    def __init__(self, node: Node, stream: Iterator[Op]) -> None:
        self.node = node
        self.stream = stream
        self.resting: list[tuple[str, str]] = []  # (order id, user)

    async def run(self, count: int, inflight: int) -> Result:
        result = Result()
        left = [count]

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                await self._one(next(self.stream), result)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        result.seconds = time.perf_counter() - start
        return result

    async def _one(self, op: Op, result: Result) -> None:
        trading = self.node.trading
        kind = op.kind
        if kind == "cancel" and not self.resting:
            kind = "limit"
        started = time.perf_counter_ns()
        try:
            if kind == "cancel":
                order_id, user = self.resting.pop(int(op.pick * len(self.resting)))
                await trading.cancel_async(order_id, user)
            else:
                market = kind == "market"
                placed = await trading.place_async(OrderRequest(
                    user_id=op.user, pair=op.pair, side=op.side,
                    type=OrderType.MARKET if market else OrderType.LIMIT,
                    quantity=trading.pair(op.pair).format_qty(op.lots),
                    price=None if market else trading.pair(op.pair).format_price(op.ticks),
                ))
                result.trades += len(placed.trades)
                if placed.order.status is OrderStatus.OPEN:
                    self.resting.append((placed.order.id, op.user))
        except DpgError:
            result.refused += 1
            return
        result.latencies_ns.append(time.perf_counter_ns() - started)
        result.done += 1
        result.by_kind[kind] = result.by_kind.get(kind, 0) + 1


def fund(node: Node, pairs: list[Pair], users: int) -> None:
    """Credit every user plenty of each asset of the pairs (one entry per asset)."""
    for code in sorted({a.code for p in pairs for a in (p.base, p.quote)}):
        units = 10 ** (node.assets.require(code).decimals + 9)
        world = AccountRef(OwnerType.OPERATOR, "bench", code, AccountKind.WORLD)
        postings = [
            Posting(AccountRef(OwnerType.USER, f"b{n}", code, AccountKind.AVAILABLE), units)
            for n in range(users)
        ]
        node.ledger.post(EntryDraft(f"bench-fund-{code}", (Posting(world, -units * users),
                                                          *postings)))


def choose_pairs(node: Node, count: int) -> list[Pair]:
    """The first ``count`` configured FIFO pairs, by symbol (a stable choice)."""
    found = sorted((p for p, _ in node.trading.pairs() if str(p.mode) == "fifo"),
                   key=lambda p: p.symbol)
    return found[:count]


def open_node(data_dir: Path, url: str | None) -> Node:
    overrides: dict[str, Any] = {}
    if url is not None:
        overrides["database"] = {"url": url}
    return build_node(load_settings(data_dir, overrides=overrides), upgrade=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--orders", type=int, default=4_000, help="operations measured")
    parser.add_argument("--warmup", type=int, default=800, help="operations before measuring")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="an empty PostgreSQL database (default: SQLite in a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dpg-bench-trading-") as tmp:
        node = open_node(Path(tmp), args.postgres)
        try:
            pairs = choose_pairs(node, args.pairs)
            for pair in pairs:
                node.trading.open_pair(pair.symbol)
            fund(node, pairs, args.users)
            driver = Driver(node, operations(pairs, args.users, args.seed))
            asyncio.run(driver.run(args.warmup, args.inflight))
            batches0 = node.writer.batches
            cpu0 = os.times()
            result = asyncio.run(driver.run(args.orders, args.inflight))
            cpu1 = os.times()
            batches = node.writer.batches - batches0
            report = node.verify_ledger()
            verify = "ok" if report.ok else "; ".join(report.problems[:5])
        finally:
            node.close()

    ops = max(1, result.done + result.refused)
    figures = {
        "benchmark": "trading",
        "database": "postgresql" if args.postgres else "sqlite",
        "pairs": [p.symbol for p in pairs], "users": args.users, "inflight": args.inflight,
        "seed": args.seed, "orders": result.done, "refused": result.refused,
        "by_kind": result.by_kind, "trades": result.trades,
        "seconds": round(result.seconds, 3), "orders_per_s": round(result.rate, 1),
        "p50_ms": round(result.pct_ms(0.50), 2), "p99_ms": round(result.pct_ms(0.99), 2),
        "mean_batch": round((result.done + result.refused) / batches, 1) if batches else 0,
        "cpu_us_per_op": round((cpu1.user - cpu0.user + cpu1.system - cpu0.system) * 1e6 / ops),
        "verify": verify, "python": platform.python_version(), "cpus": os.cpu_count(),
    }
    print(f"trading benchmark on {figures['database']}: {len(pairs)} pairs, {args.users} users, "
          f"{args.inflight} in flight, seed {args.seed} (shared machine: figures are noisy)")
    print(f"{'operations':>12} {'refused':>8} {'trades':>7} {'orders/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'batch':>6} {'cpu us/op':>10}  ledger")
    print(f"{result.done:>12} {result.refused:>8} {result.trades:>7} {result.rate:>9.1f} "
          f"{figures['p50_ms']:>8} {figures['p99_ms']:>8} {figures['mean_batch']:>6} "
          f"{figures['cpu_us_per_op']:>10}  {verify}")
    print(f"  by kind: {result.by_kind}")
    print(json.dumps(figures, sort_keys=True))
    return 0 if verify == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
