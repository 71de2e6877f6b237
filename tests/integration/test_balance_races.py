"""R3: 100 concurrent full-balance withdrawals from one account -> exactly one succeeds.

(LNbank, BTCPay 2.0.6: concurrent withdrawals drained a balance.) Each test runs 10 rounds
on SQLite and on PostgreSQL: through one node's writer (threads calling ``post`` and
``reserve``, an anyio task group calling ``post_async``) and through two nodes on the same
database, two writers as two processes would be (SQLite's write lock, PostgreSQL's
``ledger_head ... FOR UPDATE``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import anyio
import pytest

from dpgnode.domain.ledger import AccountKind, AccountRef
from dpgnode.errors import DpgError, InsufficientFundsError
from dpgnode.node import Node
from tests import factories as f

pytestmark = pytest.mark.integration

ROUNDS = 10
RACERS = 100
BALANCE = 10**20 + 7  # beyond 64 bits, so the race also covers big-integer storage
SOURCE = f.account("victim", "ETH")


def _destination(racer: int) -> AccountRef:
    return f.account(f"thief{racer}", "ETH")


def _race(calls: list[Callable[[], object]]) -> list[DpgError | None]:
    """Run every call at once (threads behind a barrier); the error of each, or None."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> DpgError | None:
        barrier.wait()
        try:
            call()
        except DpgError as exc:
            return exc
        return None

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _assert_exactly_one_winner(outcomes: list[DpgError | None]) -> None:
    winners = [o for o in outcomes if o is None]
    losers = [o for o in outcomes if isinstance(o, InsufficientFundsError)]
    others = [o for o in outcomes if o is not None and not isinstance(o, InsufficientFundsError)]
    assert others == []
    assert (len(winners), len(losers)) == (1, RACERS - 1)


def _withdrawals(nodes: list[Node], round_: int) -> list[Callable[[], object]]:
    calls: list[Callable[[], object]] = []
    for racer in range(RACERS):
        node = nodes[racer % len(nodes)]
        draft = f.transfer(SOURCE, _destination(racer), BALANCE, f"withdraw-{round_}-{racer}")
        calls.append(partial(node.ledger.post, draft))
    return calls


def _fund(node: Node, round_: int) -> None:
    node.ledger.post(f.deposit(SOURCE, BALANCE, f"fund-{round_}"))


def _assert_drained(node: Node) -> None:
    account = node.queries.account(SOURCE)
    assert account is not None
    assert account.balance == 0
    report = node.verify_ledger()
    assert report.ok, report.problems


class TestFullBalanceWithdrawalRace:
    def test_exactly_one_post_wins_when_100_threads_withdraw_everything(
        self, any_node: Node
    ) -> None:
        for round_ in range(ROUNDS):
            _fund(any_node, round_)
            _assert_exactly_one_winner(_race(_withdrawals([any_node], round_)))
            _assert_drained(any_node)
        assert any_node.writer.batches < any_node.writer.commands

    def test_exactly_one_hold_is_taken_when_100_threads_reserve_everything(
        self, any_node: Node
    ) -> None:
        for round_ in range(ROUNDS):
            _fund(any_node, round_)
            calls: list[Callable[[], object]] = [
                partial(any_node.ledger.reserve, SOURCE, BALANCE, f"reserve-{round_}-{racer}")
                for racer in range(RACERS)
            ]
            _assert_exactly_one_winner(_race(calls))
            _assert_drained(any_node)
        held = any_node.queries.account(SOURCE.sibling(AccountKind.HELD))
        assert held is not None
        assert held.balance == ROUNDS * BALANCE
        assert len(any_node.queries.open_holds()) == ROUNDS

    @pytest.mark.anyio
    async def test_exactly_one_async_post_wins_when_100_tasks_withdraw_everything(
        self, any_node: Node
    ) -> None:
        for round_ in range(ROUNDS):
            _fund(any_node, round_)
            outcomes: list[DpgError | None] = []

            async def withdraw(
                key: str,
                racer: int,
                round_: int = round_,
                outcomes: list[DpgError | None] = outcomes,
            ) -> None:
                draft = f.transfer(SOURCE, _destination(racer), BALANCE, key)
                try:
                    await any_node.ledger.post_async(draft)
                except DpgError as exc:
                    outcomes.append(exc)
                else:
                    outcomes.append(None)

            async with anyio.create_task_group() as tg:
                for racer in range(RACERS):
                    tg.start_soon(withdraw, f"async-{round_}-{racer}", racer)
            _assert_exactly_one_winner(outcomes)
            _assert_drained(any_node)

    def test_exactly_one_post_wins_when_two_nodes_share_the_database(
        self, make_node: Callable[..., Node]
    ) -> None:
        first: Node = make_node()
        second: Node = make_node(upgrade=False)
        for round_ in range(ROUNDS):
            _fund(first, round_)
            _assert_exactly_one_winner(_race(_withdrawals([first, second], round_)))
            _assert_drained(second)
        _assert_drained(first)
        # Both writers really took part (each one ran its half of the withdrawals).
        assert first.writer.commands >= ROUNDS * RACERS // 2
        assert second.writer.commands >= ROUNDS * RACERS // 2
