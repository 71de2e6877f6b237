"""R3: 50 concurrent takers on one resting order never overfill it; book quantity is conserved.

Each round rests one sell of 0.10 BTC (10 lots) and lets 50 takers, each wanting 1-3 lots at
the same price, race for it: through one node's writer (an anyio task group calling
``place_async``) and through two nodes on the same database, as two API workers would be
(each with its own in-memory book, kept equal to the database by the pair's version). After
each round: exactly the resting quantity traded, never more; every taker got at most what it
asked; the maker's fills equal the sum of the takers'; the ledger and the holds verify.
10 rounds per test on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import anyio
import pytest

from dpgnode.errors import DpgError
from dpgnode.node import Node
from dpgnode.ports.trading import OrderStatus, OrderType, Side
from dpgnode.services.trading import OrderRequest, Placed
from tests.support.trading import check_invariants, fund, fund_many, place

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ROUNDS = 10
TAKERS = 50
RESTING_LOTS = 10
LOT = 1_000_000  # 0.01 BTC in satoshi


def _setup(node: Node, round_: int) -> tuple[str, list[int]]:
    """A fresh maker and 50 fresh takers; the book emptied of the last round's leftovers."""
    node.trading.open_pair("BTC-USD")  # idempotent
    node.trading.cancel_all("BTC-USD")
    fund(node, f"maker{round_}", "BTC", "1")
    fund_many(node, [f"taker{round_}-{n}" for n in range(TAKERS)], "USD", "10000")
    maker = place(node, f"maker{round_}", "sell", "0.1", "60000")
    rng = random.Random(round_)
    print(f"R3 round {round_}: seed {round_}")
    return maker.order.id, [rng.randint(1, 3) for _ in range(TAKERS)]


async def _race(nodes: list[Node], round_: int, wants: list[int]) -> list[Placed | DpgError]:
    outcomes: list[Placed | DpgError] = []

    async def take(taker: int) -> None:
        request = OrderRequest(
            user_id=f"taker{round_}-{taker}", pair="BTC-USD", side=Side.BUY, type=OrderType.LIMIT,
            quantity=f"0.0{wants[taker]}", price="60000",
        )
        try:
            outcomes.append(await nodes[taker % len(nodes)].trading.place_async(request))
        except DpgError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tasks:
        for taker in range(TAKERS):
            tasks.start_soon(take, taker)
    return outcomes


def _assert_conserved(node: Node, maker_id: str, outcomes: list[Placed | DpgError]) -> None:
    assert [o for o in outcomes if isinstance(o, DpgError)] == []
    placed = [o for o in outcomes if isinstance(o, Placed)]
    taker_fills = sum(p.order.filled for p in placed)
    maker = node.trading.order(maker_id)
    assert maker.filled == RESTING_LOTS * LOT  # 50 takers want far more than 10 lots
    assert maker.status is OrderStatus.FILLED
    assert taker_fills == maker.filled
    assert all(p.order.filled <= p.order.quantity for p in placed)
    trades = [t for t in node.trading.trades(limit=100) if t.sell_order_id == maker_id]
    assert sum(t.quantity for t in trades) == RESTING_LOTS * LOT
    assert {t.id for t in trades} == {t.id for p in placed for t in p.trades}
    check_invariants(node)


async def test_resting_order_is_never_overfilled_when_50_takers_race_through_one_node(
    any_node: Node,
) -> None:
    for round_ in range(ROUNDS):
        maker_id, wants = _setup(any_node, round_)
        outcomes = await _race([any_node], round_, wants)
        _assert_conserved(any_node, maker_id, outcomes)
    assert any_node.writer.batches < any_node.writer.commands  # takers really raced


async def test_resting_order_is_never_overfilled_when_takers_race_through_two_nodes(
    make_node: Callable[..., Node],
) -> None:
    first: Node = make_node()
    second: Node = make_node(upgrade=False)
    for round_ in range(ROUNDS):
        maker_id, wants = _setup(first, round_)
        outcomes = await _race([first, second], round_, wants)
        _assert_conserved(first, maker_id, outcomes)
        check_invariants(second)
