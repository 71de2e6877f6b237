"""LedgerService use cases over a real SQLite file: post, reverse, reserve, capture, release.

Each test ends with the ledger still verifying: a refused command leaves no trace.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from dpgnode.adapters.storage import tables
from dpgnode.domain.hold import HoldStatus
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, EntryKind, Posting
from dpgnode.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    NotFoundError,
    ValidationError,
)
from dpgnode.node import Node
from tests import factories as f

ALICE = f.account("alice")
BOB = f.account("bob")
FEES = f.operator(AccountKind.FEES)


def balance(node: Node, ref: AccountRef) -> int:
    account = node.queries.account(ref)
    return 0 if account is None else account.balance


def outbox_count(node: Node) -> int:
    with node.engine.connect() as conn:
        count: int = conn.execute(select(func.count()).select_from(tables.outbox)).scalar_one()
    return count


@pytest.fixture
def funded(node: Node) -> Iterator[Node]:
    """Alice holds 1,000 base units of BTC."""
    node.ledger.post(f.deposit(ALICE, 1_000, "fund-alice"))
    yield node
    report = node.verify_ledger()
    assert report.ok, report.problems


class TestPost:
    def test_entry_moves_balances_and_emits_one_event_when_posted(self, funded: Node) -> None:
        posted = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        assert posted.created
        assert posted.entry.seq == 2
        assert (balance(funded, ALICE), balance(funded, BOB)) == (600, 400)
        assert outbox_count(funded) == 2
        event = funded.outbox.pending("test", 10)[-1]
        assert event.type == "ledger.entry_posted"
        assert event.aggregate == "ledger"
        assert event.payload["entryId"] == posted.entry.id
        assert event.payload["postings"] == [
            {"account": ALICE.code, "units": "-400"},
            {"account": BOB.code, "units": "400"},
        ]

    def test_replay_returns_the_original_entry_without_effect_when_body_is_the_same(
        self, funded: Node
    ) -> None:
        first = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        again = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        assert not again.created
        assert again.entry == first.entry
        assert balance(funded, BOB) == 400
        assert outbox_count(funded) == 2

    def test_replay_is_the_same_request_when_postings_come_in_another_order(
        self, funded: Node
    ) -> None:
        draft = f.transfer(ALICE, BOB, 400, "pay-1")
        first = funded.ledger.post(draft)
        reordered = EntryDraft("pay-1", tuple(reversed(draft.postings)))
        assert funded.ledger.post(reordered).entry.id == first.entry.id

    @pytest.mark.parametrize(
        "other",
        [
            f.transfer(ALICE, BOB, 401, "pay-1"),
            f.transfer(ALICE, f.account("carol"), 400, "pay-1"),
            f.transfer(ALICE, BOB, 400, "pay-1", memo="different"),
        ],
        ids=["units", "account", "memo"],
    )
    def test_replay_raises_key_reused_without_effect_when_body_differs(
        self, funded: Node, other: EntryDraft
    ) -> None:
        funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        with pytest.raises(IdempotencyKeyReusedError):
            funded.ledger.post(other)
        assert (balance(funded, ALICE), balance(funded, BOB)) == (600, 400)
        assert funded.queries.account(f.account("carol")) is None

    def test_overdraft_is_refused_and_nothing_is_opened_when_funds_are_short(
        self, funded: Node
    ) -> None:
        carol = f.account("carol")
        with pytest.raises(InsufficientFundsError) as info:
            funded.ledger.post(f.transfer(ALICE, carol, 1_001, "too-much"))
        assert info.value.details["account"] == ALICE.code
        assert balance(funded, ALICE) == 1_000
        assert funded.queries.account(carol) is None
        assert funded.queries.entry_by_key("too-much") is None
        assert outbox_count(funded) == 1

    def test_key_stays_free_when_its_first_use_was_refused(self, funded: Node) -> None:
        with pytest.raises(InsufficientFundsError):
            funded.ledger.post(f.transfer(ALICE, BOB, 1_001, "retry-me"))
        assert funded.ledger.post(f.transfer(ALICE, BOB, 1_000, "retry-me")).created

    def test_unbalanced_draft_is_refused_before_reaching_the_writer_when_posted(
        self, funded: Node
    ) -> None:
        draft = EntryDraft("bad", (Posting(ALICE, -5), Posting(BOB, 4)))
        with pytest.raises(ValidationError):
            funded.ledger.post(draft)
        assert funded.writer.commands == 1

    def test_post_is_refused_when_a_posting_touches_a_held_account(self, funded: Node) -> None:
        # Regression: a plain transfer into a held account broke `ledger verify` for good
        # (held balance no longer equal to the open holds).
        held = ALICE.sibling(AccountKind.HELD)
        with pytest.raises(ValidationError) as info:
            funded.ledger.post(f.transfer(ALICE, held, 10, "into-held"))
        assert info.value.field == "postings[1].account"

    @pytest.mark.parametrize("kind", [EntryKind.HOLD, EntryKind.CAPTURE, EntryKind.RELEASE])
    def test_post_is_refused_when_draft_claims_a_hold_kind(
        self, funded: Node, kind: EntryKind
    ) -> None:
        with pytest.raises(ValidationError) as info:
            funded.ledger.post(f.transfer(ALICE, BOB, 10, "fake", kind=kind))
        assert info.value.field == "kind"

    def test_post_is_refused_when_draft_poses_as_a_reversal(self, funded: Node) -> None:
        # Regression: a posted "reversal" of 5 units blocked the real reversal of 1,000.
        deposit = funded.queries.entry_by_key("fund-alice")
        assert deposit is not None
        fake = f.transfer(ALICE, BOB, 5, "fake-rev", kind=EntryKind.REVERSAL, reverses=deposit.id)
        with pytest.raises(ValidationError):
            funded.ledger.post(fake)
        with pytest.raises(ValidationError):
            funded.ledger.post(f.transfer(ALICE, BOB, 5, "fake-link", reverses=deposit.id))
        assert funded.ledger.reverse(deposit.id, "real-rev").created

    def test_amounts_beyond_64_bits_stay_exact_when_posted(self, node: Node) -> None:
        eth = f.account("alice", "ETH")
        node.ledger.post(f.deposit(eth, 10**30 + 1, "eth-1"))
        assert balance(node, eth) == 10**30 + 1
        assert balance(node, f.world("ETH")) == -(10**30 + 1)
        assert node.verify_ledger().totals == {"ETH": 0}

    @pytest.mark.anyio
    async def test_async_post_commits_like_post_when_awaited(self, funded: Node) -> None:
        posted = await funded.ledger.post_async(f.transfer(ALICE, BOB, 10, "async-1"))
        assert posted.created
        assert balance(funded, BOB) == 10


class TestReverse:
    def test_reversal_restores_balances_and_links_back_when_entry_is_a_transfer(
        self, funded: Node
    ) -> None:
        paid = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        reversed_ = funded.ledger.reverse(paid.entry.id, "rev-1")
        assert reversed_.created
        assert reversed_.entry.kind is EntryKind.REVERSAL
        assert reversed_.entry.reverses == paid.entry.id
        assert (balance(funded, ALICE), balance(funded, BOB)) == (1_000, 0)

    def test_replay_returns_the_reversal_when_key_is_the_same(self, funded: Node) -> None:
        paid = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        first = funded.ledger.reverse(paid.entry.id, "rev-1")
        again = funded.ledger.reverse(paid.entry.id, "rev-1")
        assert not again.created
        assert again.entry.id == first.entry.id
        assert balance(funded, ALICE) == 1_000

    def test_second_reversal_is_refused_when_entry_was_already_reversed(self, funded: Node) -> None:
        paid = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        funded.ledger.reverse(paid.entry.id, "rev-1")
        with pytest.raises(ConflictError, match="already reversed"):
            funded.ledger.reverse(paid.entry.id, "rev-2")

    def test_reversal_raises_key_reused_when_key_belongs_to_another_entry(
        self, funded: Node
    ) -> None:
        paid = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        with pytest.raises(IdempotencyKeyReusedError):
            funded.ledger.reverse(paid.entry.id, "fund-alice")

    def test_reversal_is_refused_when_entry_does_not_exist(self, funded: Node) -> None:
        with pytest.raises(NotFoundError):
            funded.ledger.reverse("je_missing", "rev-1")

    def test_reversal_is_refused_when_entry_is_a_reversal(self, funded: Node) -> None:
        paid = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        reversal = funded.ledger.reverse(paid.entry.id, "rev-1")
        with pytest.raises(ConflictError):
            funded.ledger.reverse(reversal.entry.id, "rev-2")

    def test_reversal_is_refused_when_the_credited_value_was_spent(self, funded: Node) -> None:
        paid = funded.ledger.post(f.transfer(ALICE, BOB, 400, "pay-1"))
        funded.ledger.post(f.transfer(BOB, FEES, 1, "spend"))
        with pytest.raises(InsufficientFundsError):
            funded.ledger.reverse(paid.entry.id, "rev-1")
        assert funded.queries.entry_by_key("rev-1") is None

    def test_reversal_is_refused_and_ledger_verifies_when_entry_is_a_hold(
        self, funded: Node
    ) -> None:
        # Regression: reversing the hold entry left held = 0 beside an open hold of 60.
        held = funded.ledger.reserve(ALICE, 60, "hold-1")
        with pytest.raises(ConflictError, match="hold"):
            funded.ledger.reverse(held.entry.id, "rev-hold")


class TestHolds:
    def test_reserve_moves_funds_to_held_and_stores_an_open_hold_when_funds_suffice(
        self, funded: Node
    ) -> None:
        result = funded.ledger.reserve(ALICE, 600, "hold-1")
        assert result.created
        assert (balance(funded, ALICE), balance(funded, result.hold.held_account)) == (400, 600)
        assert funded.queries.hold(result.hold.id) == result.hold
        assert [h.id for h in funded.queries.open_holds()] == [result.hold.id]

    def test_reserve_is_refused_and_stores_no_hold_when_funds_are_short(self, funded: Node) -> None:
        with pytest.raises(InsufficientFundsError):
            funded.ledger.reserve(ALICE, 1_001, "hold-1")
        assert funded.queries.open_holds() == []
        assert balance(funded, ALICE) == 1_000

    @pytest.mark.parametrize("units", [0, -5])
    def test_reserve_is_refused_when_units_are_not_positive(self, funded: Node, units: int) -> None:
        with pytest.raises(ValidationError):
            funded.ledger.reserve(ALICE, units, "hold-1")

    def test_reserve_replay_returns_the_same_hold_when_key_and_amount_repeat(
        self, funded: Node
    ) -> None:
        first = funded.ledger.reserve(ALICE, 600, "hold-1")
        again = funded.ledger.reserve(ALICE, 600, "hold-1")
        assert not again.created
        assert again.hold.id == first.hold.id
        assert again.entry.id == first.entry.id
        assert balance(funded, ALICE) == 400

    def test_reserve_replay_raises_key_reused_when_amount_differs(self, funded: Node) -> None:
        funded.ledger.reserve(ALICE, 600, "hold-1")
        with pytest.raises(IdempotencyKeyReusedError):
            funded.ledger.reserve(ALICE, 601, "hold-1")

    def test_partial_then_full_capture_closes_the_hold_when_it_is_used_up(
        self, funded: Node
    ) -> None:
        hold_id = funded.ledger.reserve(ALICE, 600, "hold-1").hold.id
        part = funded.ledger.capture(hold_id, 200, BOB, "cap-1")
        assert (part.hold.captured, part.hold.status) == (200, HoldStatus.OPEN)
        rest = funded.ledger.capture(hold_id, 400, FEES, "cap-2")
        assert (rest.hold.captured, rest.hold.status) == (600, HoldStatus.CLOSED)
        assert (balance(funded, BOB), balance(funded, FEES)) == (200, 400)
        assert balance(funded, ALICE.sibling(AccountKind.HELD)) == 0
        assert funded.queries.open_holds() == []

    def test_capture_is_refused_when_it_exceeds_the_remaining_amount(self, funded: Node) -> None:
        hold_id = funded.ledger.reserve(ALICE, 600, "hold-1").hold.id
        funded.ledger.capture(hold_id, 200, BOB, "cap-1")
        with pytest.raises(ValidationError):
            funded.ledger.capture(hold_id, 401, BOB, "cap-2")

    def test_capture_replay_returns_the_first_capture_when_body_repeats(self, funded: Node) -> None:
        hold_id = funded.ledger.reserve(ALICE, 600, "hold-1").hold.id
        first = funded.ledger.capture(hold_id, 200, BOB, "cap-1")
        again = funded.ledger.capture(hold_id, 200, BOB, "cap-1")
        assert not again.created
        assert again.entry.id == first.entry.id
        assert balance(funded, BOB) == 200

    def test_capture_replay_raises_key_reused_when_units_differ(self, funded: Node) -> None:
        hold_id = funded.ledger.reserve(ALICE, 600, "hold-1").hold.id
        funded.ledger.capture(hold_id, 200, BOB, "cap-1")
        with pytest.raises(IdempotencyKeyReusedError):
            funded.ledger.capture(hold_id, 300, BOB, "cap-1")

    def test_release_returns_the_remainder_when_part_was_captured(self, funded: Node) -> None:
        hold_id = funded.ledger.reserve(ALICE, 600, "hold-1").hold.id
        funded.ledger.capture(hold_id, 200, BOB, "cap-1")
        released = funded.ledger.release(hold_id, "rel-1")
        assert (released.hold.released, released.hold.status) == (400, HoldStatus.CLOSED)
        assert balance(funded, ALICE) == 800

    def test_release_replay_returns_the_release_when_key_repeats(self, funded: Node) -> None:
        hold_id = funded.ledger.reserve(ALICE, 600, "hold-1").hold.id
        first = funded.ledger.release(hold_id, "rel-1")
        again = funded.ledger.release(hold_id, "rel-1")
        assert not again.created
        assert again.entry.id == first.entry.id

    def test_closed_hold_refuses_capture_and_release_when_released(self, funded: Node) -> None:
        hold_id = funded.ledger.reserve(ALICE, 600, "hold-1").hold.id
        funded.ledger.release(hold_id, "rel-1")
        with pytest.raises(ConflictError, match="closed"):
            funded.ledger.capture(hold_id, 1, BOB, "cap-late")
        with pytest.raises(ConflictError, match="closed"):
            funded.ledger.release(hold_id, "rel-2")

    def test_release_raises_key_reused_when_key_belongs_to_the_reserve(self, funded: Node) -> None:
        # Regression: this returned created=False with the hold entry, the hold still open.
        hold_id = funded.ledger.reserve(ALICE, 600, "hold-1").hold.id
        with pytest.raises(IdempotencyKeyReusedError):
            funded.ledger.release(hold_id, "hold-1")
        assert funded.queries.hold(hold_id) is not None
        assert balance(funded, ALICE) == 400

    def test_capture_raises_key_reused_when_key_belongs_to_another_hold(self, funded: Node) -> None:
        first = funded.ledger.reserve(ALICE, 100, "hold-1").hold.id
        second = funded.ledger.reserve(ALICE, 100, "hold-2").hold.id
        funded.ledger.capture(first, 10, BOB, "cap-1")
        with pytest.raises(IdempotencyKeyReusedError):
            funded.ledger.capture(second, 10, BOB, "cap-1")

    def test_capture_is_refused_when_hold_does_not_exist(self, funded: Node) -> None:
        with pytest.raises(NotFoundError):
            funded.ledger.capture("hold_missing", 1, BOB, "cap-1")

    def test_release_is_refused_when_hold_does_not_exist(self, funded: Node) -> None:
        with pytest.raises(NotFoundError):
            funded.ledger.release("hold_missing", "rel-1")
