"""Approving where no signer is (the API, R22) and rejecting: nothing half-done.

``approve(can_sign=False)`` records approvals but refuses the one that would complete the
set, in the same transaction that counts them, so a payout never reaches ``signing``
where nobody can sign it; ``reject`` cancels only a payout that still awaits approval.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import PayoutStatus
from dpgnode.domain.ledger import AccountKind
from dpgnode.errors import ConflictError
from dpgnode.node import Node
from tests.support.dashboard import DEBIT, Seed, open_node, seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed(tmp_path_factory.mktemp("approvals-seed"))


@pytest.fixture
def node(seeded: Seed, tmp_path: Path) -> Iterator[Node]:
    shutil.copytree(seeded.data_dir, tmp_path / "node")
    opened = open_node(tmp_path / "node", next_id=seeded.next_id)
    yield opened
    opened.close()


def _op(node: Node, name: str) -> Operator:
    return next(op for op in node.custody.operators.operators() if op.name == name)


def _held(node: Node) -> int:
    account = node.queries.account(DEBIT.sibling(AccountKind.HELD))
    return 0 if account is None else account.balance


def test_completing_approval_is_refused_and_unrecorded_when_the_process_cannot_sign(
    node: Node, seeded: Seed
) -> None:
    payouts, big = node.custody.payouts, seeded.payouts["big"]
    payouts.approve(big, _op(node, "bob"), can_sign=False)
    with pytest.raises(ConflictError) as refused:
        payouts.approve(big, _op(node, "carol"), can_sign=False)
    assert refused.value.details["reason"] == "signing_required"
    assert [op for op, _ in payouts.approvals(big)] == [_op(node, "bob").id]
    assert payouts.payout(big).status is PayoutStatus.PENDING_APPROVAL


def test_repeated_approval_counts_once_and_is_not_final_when_the_same_operator_repeats(
    node: Node, seeded: Seed
) -> None:
    payouts, big = node.custody.payouts, seeded.payouts["big"]
    for _ in range(3):
        payouts.approve(big, _op(node, "bob"), can_sign=False)
    assert len(payouts.approvals(big)) == 1


def test_rejection_releases_the_hold_once_when_the_payout_awaits_approval(
    node: Node, seeded: Seed
) -> None:
    payouts, half = node.custody.payouts, seeded.payouts["half"]
    held = _held(node)
    assert payouts.reject(half, _op(node, "alice"), "wrong").status is PayoutStatus.CANCELLED
    assert _held(node) == held - 25_000_000
    with pytest.raises(ConflictError):
        payouts.reject(half, _op(node, "alice"), "again")
    assert _held(node) == held - 25_000_000
    assert node.verify_ledger().ok
