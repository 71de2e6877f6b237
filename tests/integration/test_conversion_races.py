"""Conversion under concurrency: limits hold and a quote executes once (R3 style).

Threads behind a barrier accept quotes at the same moment, through one node's writer and
through two nodes on the same database (two writers, as two processes would be), on SQLite
and on PostgreSQL. The limit check, the usage update and the journal entry run in one
writer command, so a limit that only one conversion fits lets exactly one through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage import tables
from dpgnode.domain.conversion.limits import LimitKind, Period
from dpgnode.domain.money import format_units
from dpgnode.errors import DpgError, PolicyDeniedError
from dpgnode.node import Node, build_node
from dpgnode.services.conversion import Executed, QuoteRequest
from dpgnode.settings import load_settings
from tests.support.conversion import balance, conversion_settings, fund, inventory, user

pytestmark = pytest.mark.integration

ROUNDS = 5
RACERS = 20

Outcome = Executed | DpgError


def _race(calls: Sequence[Callable[[], Executed]]) -> list[Outcome]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Executed]) -> Outcome:
        barrier.wait()
        try:
            return call()
        except DpgError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def open_conv(
    database_url: str, tmp_path: Path, clock: FixedClock
) -> Iterator[Callable[..., Node]]:
    """Opens nodes with fixed rates on ``database_url``; the first call migrates."""
    opened: list[Node] = []

    def factory(*, upgrade: bool = True) -> Node:
        settings = load_settings(
            tmp_path,
            overrides={"database": {"url": database_url}, "conversion": conversion_settings()},
        )
        node = build_node(settings, clock=clock, upgrade=upgrade)
        opened.append(node)
        return node

    yield factory
    for node in reversed(opened):
        node.close()


def _count(node: Node, table: str) -> int:
    with node.engine.connect() as conn:
        found: int = conn.execute(
            select(func.count()).select_from(tables.metadata.tables[table])
        ).scalar_one()
    return found


def _limit_race(nodes: list[Node], clock: FixedClock) -> None:
    first = nodes[0]
    fund(first, user("alice", "BTC"), str(ROUNDS))
    fund(first, inventory("USD"), "10000000")
    first.conversion.limits.set("alice", LimitKind.ASSET, "BTC", Period.DAY, "1")
    for _ in range(ROUNDS):
        quotes = [
            first.conversion.quote(QuoteRequest("alice", "BTC", "USD", from_amount="0.6"))
            for _ in range(RACERS)
        ]
        calls = [
            partial(nodes[i % len(nodes)].conversion.execute, "alice", quote.id)
            for i, quote in enumerate(quotes)
        ]
        outcomes = _race(calls)
        winners = [o for o in outcomes if isinstance(o, Executed)]
        refused = [o for o in outcomes if isinstance(o, PolicyDeniedError)]
        assert (len(winners), len(refused)) == (1, RACERS - 1), outcomes
        [status] = first.conversion.limits.status("alice")
        assert status.used == 60_000_000
        clock.advance(timedelta(days=1))  # the next round starts a new daily period
    assert balance(first, user("alice", "BTC")) == format_units(ROUNDS * (10**8 - 60_000_000), 8)
    assert _count(first, "conversions") == ROUNDS
    report = first.verify_ledger()
    assert report.ok, report.problems


class TestLimitRace:
    def test_exactly_one_conversion_fits_the_limit_when_20_accept_at_once(
        self, open_conv: Callable[..., Node], clock: FixedClock
    ) -> None:
        _limit_race([open_conv()], clock)

    def test_exactly_one_conversion_fits_the_limit_when_two_nodes_share_the_database(
        self, open_conv: Callable[..., Node], clock: FixedClock
    ) -> None:
        first = open_conv()
        second = open_conv(upgrade=False)
        _limit_race([first, second], clock)
        assert second.writer.commands >= ROUNDS * RACERS // 2


class TestSameQuoteRace:
    def test_quote_executes_once_when_accepted_by_20_threads_on_two_nodes(
        self, open_conv: Callable[..., Node]
    ) -> None:
        first = open_conv()
        second = open_conv(upgrade=False)
        fund(first, user("alice", "BTC"), "1")
        fund(first, inventory("USD"), "100000")
        quote = first.conversion.quote(QuoteRequest("alice", "BTC", "USD", from_amount="0.5"))
        calls = [
            partial((first, second)[i % 2].conversion.execute, "alice", quote.id)
            for i in range(RACERS)
        ]
        outcomes = _race(calls)
        assert all(isinstance(o, Executed) for o in outcomes), outcomes
        executed = [o for o in outcomes if isinstance(o, Executed)]
        assert sum(o.created for o in executed) == 1
        assert {o.conversion.id for o in executed} == {executed[0].conversion.id}
        assert balance(first, user("alice", "BTC")) == "0.50000000"
        assert balance(first, user("alice", "USD")) == "29820.15"
        assert _count(first, "conversions") == 1
        report = first.verify_ledger()
        assert report.ok, report.problems
