"""Group commit: concurrent commands share durable transactions; a failing one fails alone.

To put chosen commands into one batch, a first command holds the writer (it waits on an
event inside its transaction) while the others queue; when it lets go, the writer takes
every queued command into the next batch. ``writer.batches`` tells how many commits ran.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from dpgnode.adapters.storage.writer import SqlWriter
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.ledger import AccountKind, EntryDraft
from dpgnode.errors import InsufficientFundsError, IntegrityError
from dpgnode.node import Node
from dpgnode.ports.uow import Tx
from dpgnode.services.ledger import Posted, post_command
from tests import factories as f

pytestmark = pytest.mark.integration

ALICE = f.account("alice")
BOB = f.account("bob")
FEES = f.operator(AccountKind.FEES)


class Gate:
    """A command that keeps the writer busy until ``open()``: later commands queue up."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._open = threading.Event()

    def __call__(self, tx: Tx) -> None:
        self.entered.set()
        assert self._open.wait(timeout=30), "gate never opened"

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def gate(any_node: Node) -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.open()  # never leave the writer blocked, even when a test fails


def _one_batch(
    writer: SqlWriter, gate: Gate, commands: list[Callable[[Tx], Any]], *, commits: bool = True
) -> list[Any]:
    """Run ``commands`` in one batch; each one's result, or the exception it raised.

    ``commits=False``: the batch is expected to fail as a whole (counters skip it).
    """
    held = writer.submit(gate)
    assert gate.entered.wait(timeout=30)
    batches, count = writer.batches, writer.commands
    futures: list[Future[Any]] = [writer.submit(command) for command in commands]
    gate.open()
    held.result(timeout=30)
    outcomes = [future.exception(timeout=30) or future.result() for future in futures]
    ran = (1, len(commands)) if commits else (0, 0)
    assert (writer.batches, writer.commands) == (batches + 1 + ran[0], count + 1 + ran[1]), (
        "the commands did not share one batch"
    )
    return outcomes


def _post(draft: EntryDraft) -> Callable[[Tx], Posted]:
    return post_command(draft)


class TestGroupCommit:
    def test_every_post_commits_in_fewer_transactions_when_50_threads_post_500_entries(
        self, any_node: Node
    ) -> None:
        any_node.ledger.post(f.deposit(ALICE, 10**6, "fund"))
        barrier = threading.Barrier(50)

        def worker(thread: int) -> list[int]:
            barrier.wait()
            return [
                any_node.ledger.post(f.transfer(ALICE, BOB, 1, f"t{thread}-{i}")).entry.seq
                for i in range(10)
            ]

        before = (any_node.writer.batches, any_node.writer.commands)
        with ThreadPoolExecutor(max_workers=50) as pool:
            seqs = [s for chunk in pool.map(worker, range(50)) for s in chunk]
        batches = any_node.writer.batches - before[0]
        commands = any_node.writer.commands - before[1]
        assert sorted(seqs) == list(range(2, 502))
        assert commands == 500
        assert batches < commands
        bob = any_node.queries.account(BOB)
        assert bob is not None
        assert bob.balance == 500
        assert any_node.verify_ledger().ok

    def test_overdraft_fails_alone_when_it_shares_a_batch(self, any_node: Node, gate: Gate) -> None:
        any_node.ledger.post(f.deposit(ALICE, 100, "fund"))
        outcomes = _one_batch(
            any_node.writer,
            gate,
            [
                _post(f.transfer(ALICE, BOB, 60, "a")),
                _post(f.transfer(ALICE, BOB, 60, "b")),  # only 40 left: refused
                _post(f.transfer(ALICE, FEES, 40, "c")),
            ],
        )
        assert [type(o) for o in outcomes] == [Posted, InsufficientFundsError, Posted]
        assert [o.entry.seq for o in outcomes if isinstance(o, Posted)] == [2, 3]
        assert any_node.queries.entry_by_key("b") is None
        assert any_node.verify_ledger().ok

    def test_partial_effects_of_a_failing_command_vanish_when_its_neighbours_commit(
        self, any_node: Node, gate: Gate
    ) -> None:
        any_node.ledger.post(f.deposit(ALICE, 100, "fund"))
        carol = f.account("carol")

        def posts_then_fails(tx: Tx) -> None:
            tx.post(f.transfer(ALICE, carol, 30, "doomed"))
            tx.emit(DomainEvent("test.doomed", "test"))
            raise ValueError("changed its mind")

        outcomes = _one_batch(
            any_node.writer,
            gate,
            [
                _post(f.transfer(ALICE, BOB, 10, "before")),
                posts_then_fails,
                _post(f.transfer(ALICE, BOB, 10, "after")),
            ],
        )
        assert isinstance(outcomes[1], ValueError)
        assert [o.entry.seq for o in (outcomes[0], outcomes[2])] == [2, 3]
        assert any_node.queries.entry_by_key("doomed") is None
        assert any_node.queries.account(carol) is None
        types = [e.type for e in any_node.outbox.pending("probe", 100)]
        assert "test.doomed" not in types
        alice = any_node.queries.account(ALICE)
        assert alice is not None
        assert alice.balance == 80
        assert any_node.verify_ledger().ok

    def test_whole_batch_fails_and_nothing_is_kept_when_an_invariant_breaks(
        self, any_node: Node, gate: Gate
    ) -> None:
        any_node.ledger.post(f.deposit(ALICE, 100, "fund"))

        def breaks_an_invariant(tx: Tx) -> None:
            raise IntegrityError("simulated invariant failure")

        outcomes = _one_batch(
            any_node.writer,
            gate,
            [_post(f.transfer(ALICE, BOB, 10, "innocent")), breaks_an_invariant],
            commits=False,
        )
        assert all(isinstance(o, IntegrityError) for o in outcomes)
        assert any_node.queries.entry_by_key("innocent") is None
        assert any_node.verify_ledger().ok

    def test_command_is_refused_when_it_submits_to_its_own_writer(self, node: Node) -> None:
        def nested(tx: Tx) -> object:
            return node.writer.run(lambda inner: None)

        with pytest.raises(IntegrityError, match="own writer"):
            node.writer.run(nested)
