"""Address pools under concurrency: 200 concurrent issues get 200 distinct, consecutive indexes.

Threads released together issue from one account, through one node's writer and through two
nodes sharing the database (two writers, as two processes); SQLite and PostgreSQL. The
database is the record: every index is stored once with its address, none is skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import KeyAccount, Scheme
from dpgnode.node import Node
from dpgnode.services.custody.wallets import AccountSpec
from tests.support.custody import VECTOR_MNEMONIC, custody_node
from tests.support.memory_signer import MemorySigner

pytestmark = pytest.mark.integration

CALLERS = 200


@pytest.fixture
def nodes(database_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[list[Node]]:
    built = [custody_node(tmp_path / f"n{i}", clock, url=database_url) for i in range(2)]
    yield built
    for node in reversed(built):
        node.close()


def _account(node: Node, scheme: Scheme) -> KeyAccount:
    view = node.custody.keychains.import_mnemonic(
        MemorySigner(network=Network.REGTEST), VECTOR_MNEMONIC, network=Network.REGTEST,
        accounts=[AccountSpec(scheme)],
    )
    return view.accounts[0]


def _check(node: Node, account: KeyAccount, indexes: list[int], addresses: list[str]) -> None:
    assert sorted(indexes) == list(range(CALLERS))
    assert len(set(addresses)) == CALLERS
    stored = node.custody.addresses.addresses(account.id, limit=1000)
    assert [a.index for a in stored] == list(range(CALLERS))
    key = node.custody.addresses.account_key(account)
    assert [a.address for a in stored] == key.addresses(0, 0, CALLERS)
    assert node.custody.keychains.account(account.id).next_index == CALLERS


@pytest.mark.parametrize("scheme", [Scheme.BIP84, Scheme.EVM])
def test_200_threads_get_distinct_consecutive_indexes_when_racing(
    nodes: list[Node], scheme: Scheme
) -> None:
    account = _account(nodes[0], scheme)
    start = threading.Event()

    def issue(i: int) -> tuple[int, str]:
        start.wait()
        issued = nodes[i % 2].custody.addresses.issue(account.id, reference=f"inv_{i}")
        return issued.address.index, issued.address.address

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        futures = [pool.submit(issue, i) for i in range(CALLERS)]
        start.set()
        results = [f.result() for f in futures]
    _check(nodes[1], account, [r[0] for r in results], [r[1] for r in results])


@pytest.mark.anyio
async def test_200_tasks_get_distinct_consecutive_indexes_when_racing(
    nodes: list[Node],
) -> None:
    account = _account(nodes[0], Scheme.BIP84)
    results: list[tuple[int, str]] = []

    async def issue(i: int) -> None:
        issued = await nodes[0].custody.addresses.issue_async(account.id, reference=f"t{i}")
        results.append((issued.address.index, issued.address.address))

    async with anyio.create_task_group() as tg:
        for i in range(CALLERS):
            tg.start_soon(issue, i)
    _check(nodes[0], account, [r[0] for r in results], [r[1] for r in results])
