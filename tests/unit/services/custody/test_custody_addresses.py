"""Address pools: one index per issue, never reused, used marks, the gap and its alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage import tables
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import KeyAccount, Scheme
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.node import Node
from dpgnode.services.custody.wallets import AccountSpec
from tests.support.custody import VECTOR_MNEMONIC, custody_node
from tests.support.memory_signer import MemorySigner


def bitcoin_account(node: Node) -> KeyAccount:
    view = node.custody.keychains.import_mnemonic(
        MemorySigner(), VECTOR_MNEMONIC, network=Network.REGTEST,
        accounts=[AccountSpec(Scheme.BIP84)],
    )
    return view.accounts[0]


def gap_events(node: Node) -> list[dict[str, object]]:
    with node.engine.connect() as conn:
        rows = conn.execute(
            select(tables.outbox.c.payload).where(tables.outbox.c.type == "custody.gap_exceeded")
        ).scalars()
        return [json.loads(r) for r in rows]


@pytest.fixture
def small_gap_node(tmp_path: Path, clock: FixedClock) -> Iterator[Node]:
    built = custody_node(tmp_path / "gap", clock, custody={"network": "regtest", "gap_limit": 3})
    yield built
    built.close()


class TestIssue:
    def test_indexes_are_consecutive_and_addresses_distinct_when_issued(self, node: Node) -> None:
        account = bitcoin_account(node)
        issued = [node.custody.addresses.issue(account.id, reference=f"inv_{i}")
                  for i in range(10)]
        assert [i.address.index for i in issued] == list(range(10))
        assert len({i.address.address for i in issued}) == 10
        key = node.custody.addresses.account_key(account)
        assert [i.address.address for i in issued] == key.addresses(0, 0, 10)

    def test_pool_survives_a_restart_when_reopened(
        self, tmp_path: Path, clock: FixedClock
    ) -> None:
        first = custody_node(tmp_path / "n", clock)
        account = bitcoin_account(first)
        before = [first.custody.addresses.issue(account.id).address.address for _ in range(3)]
        first.close()
        second = custody_node(tmp_path / "n", clock)
        try:
            after = second.custody.addresses.issue(account.id).address
            assert after.index == 3
            assert after.address not in before
        finally:
            second.close()

    def test_change_branch_counts_separately_when_issued(self, node: Node) -> None:
        account = bitcoin_account(node)
        node.custody.addresses.issue(account.id)
        change = node.custody.addresses.issue(account.id, branch=1)
        assert (change.address.branch, change.address.index) == (1, 0)

    def test_unknown_account_is_not_found_when_issuing(self, node: Node) -> None:
        with pytest.raises(NotFoundError):
            node.custody.addresses.issue("ka_missing")

    @pytest.mark.parametrize("branch", [2, -1])
    def test_other_branches_are_refused_when_issuing(self, node: Node, branch: int) -> None:
        account = bitcoin_account(node)
        with pytest.raises(ValidationError):
            node.custody.addresses.issue(account.id, branch=branch)

    def test_reference_is_kept_when_given(self, node: Node) -> None:
        account = bitcoin_account(node)
        node.custody.addresses.issue(account.id, reference="inv_42")
        listed = node.custody.addresses.addresses(account.id)
        assert [a.reference for a in listed] == ["inv_42"]


class TestUsedAndGap:
    def test_marking_used_is_idempotent_when_repeated(
        self, node: Node, clock: FixedClock
    ) -> None:
        account = bitcoin_account(node)
        address = node.custody.addresses.issue(account.id).address.address
        first = node.custody.addresses.mark_used(address)
        second = node.custody.addresses.mark_used(address)
        assert first.used_at == second.used_at == clock.now()

    def test_unknown_address_is_not_found_when_marked(self, node: Node) -> None:
        with pytest.raises(NotFoundError):
            node.custody.addresses.mark_used("bcrt1qqqqsyqcyq5rqwzqfpg9scrgwpugpzysnard0ew")

    def test_gap_reflects_used_marks_when_reported(self, node: Node) -> None:
        account = bitcoin_account(node)
        issued = [node.custody.addresses.issue(account.id).address for _ in range(12)]
        node.custody.addresses.mark_used(issued[2].address)
        node.custody.addresses.mark_used(issued[9].address)
        report = node.custody.addresses.gap(account.id)
        assert (report.issued, report.used, report.last_used_index) == (12, 2, 9)
        assert (report.gap, report.trailing_unused, report.gap_limit_needed) == (6, 2, 7)
        assert [a.index for a in node.custody.addresses.addresses(account.id, used=True)] == [2, 9]
        unused = node.custody.addresses.addresses(account.id, used=False, offset=2, limit=3)
        assert [a.index for a in unused] == [3, 4, 5]

    def test_alert_is_emitted_once_when_the_gap_passes_the_limit(
        self, small_gap_node: Node
    ) -> None:
        node = small_gap_node
        account = bitcoin_account(node)
        issued = [node.custody.addresses.issue(account.id) for _ in range(6)]
        assert [i.gap_exceeded for i in issued] == [False, False, False, True, False, False]
        (event,) = gap_events(node)
        assert event["trailingUnused"] == 4
        assert event["gapLimit"] == 3

    def test_alert_rearms_when_a_later_address_is_used(self, small_gap_node: Node) -> None:
        node = small_gap_node
        account = bitcoin_account(node)
        issued = [node.custody.addresses.issue(account.id) for _ in range(5)]
        node.custody.addresses.mark_used(issued[-1].address.address)
        again = [node.custody.addresses.issue(account.id) for _ in range(4)]
        assert [i.gap_exceeded for i in again] == [False, False, False, True]
        assert len(gap_events(node)) == 2

    def test_alert_stays_silent_when_below_the_limit(self, small_gap_node: Node) -> None:
        node = small_gap_node
        account = bitcoin_account(node)
        for _ in range(3):
            assert not node.custody.addresses.issue(account.id).gap_exceeded
        assert gap_events(node) == []
