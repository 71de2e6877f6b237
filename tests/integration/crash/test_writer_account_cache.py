"""The writer's account cache never outlives what it caches.

``SqlWriter`` keeps committed account rows between batches on SQLite (it is what lets a
batch skip re-reading its accounts). Like the crash harness, these tests attack the writer's
state from outside its process's normal flow: another writer on the same file (a second
process, a CLI command) and a batch that fails after its commands changed balances. Either
way the next batch must see the balances on disk, never the cached ones.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dpgnode.domain.ledger import AccountRef
from dpgnode.errors import InsufficientFundsError, IntegrityError
from dpgnode.node import Node
from dpgnode.ports.uow import Tx
from dpgnode.services.ledger import post_command
from tests import factories as f

pytestmark = pytest.mark.integration

X = f.account("cache-x")
Y = f.account("cache-y")
Z = f.account("cache-z")


def _balance(node: Node, ref: AccountRef) -> int:
    account = node.queries.account(ref)
    assert account is not None
    return account.balance


def test_cached_balance_is_dropped_when_another_writer_moves_it(
    make_node: Callable[..., Node],
) -> None:
    first = make_node()
    second = make_node(upgrade=False)
    first.ledger.post(f.deposit(X, 100, "cache-fund"))  # first's writer now caches X = 100
    second.ledger.post(f.transfer(X, Y, 80, "cache-elsewhere"))  # X = 20 on disk

    with pytest.raises(InsufficientFundsError):
        first.ledger.post(f.transfer(X, Z, 50, "cache-stale"))
    first.ledger.post(f.transfer(X, Z, 20, "cache-exact"))

    assert _balance(first, X) == 0
    assert first.verify_ledger().ok
    assert second.verify_ledger().ok


def test_cached_balance_is_dropped_when_its_batch_fails(
    make_node: Callable[..., Node],
) -> None:
    node = make_node()
    node.ledger.post(f.deposit(X, 100, "cache-fund"))
    spend = post_command(f.transfer(X, Y, 30, "cache-doomed"))

    def spends_then_breaks(tx: Tx) -> None:
        spend(tx)  # X = 70 in the batch's (cached) view ...
        raise IntegrityError("simulated invariant failure")  # ... and the batch rolls back

    with pytest.raises(IntegrityError):
        node.writer.run(spends_then_breaks)

    node.ledger.post(f.transfer(X, Y, 100, "cache-all"))  # needs X = 100, as on disk
    assert _balance(node, X) == 0
    assert node.queries.entry_by_key("cache-doomed") is None
    assert node.verify_ledger().ok
