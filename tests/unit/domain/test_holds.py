"""Holds: reserve, capture (partly or fully), release; a closed hold accepts nothing."""

from __future__ import annotations

import pytest

from dpgnode.domain.hold import HoldStatus, capture, release, reserve_draft
from dpgnode.domain.ledger import AccountKind, EntryKind, Posting, validate_draft
from dpgnode.errors import ConflictError, ValidationError
from tests import factories as f

OWNER = f.account("alice")
HELD = OWNER.sibling(AccountKind.HELD)
FEES = f.operator(AccountKind.FEES)


class TestReserve:
    def test_reserve_moves_the_amount_from_available_to_held_when_hold_is_valid(self) -> None:
        draft = reserve_draft(f.hold("h1", OWNER, 60), "k1")
        assert draft.postings == (Posting(OWNER, -60), Posting(HELD, 60))
        assert draft.kind is EntryKind.HOLD
        assert draft.metadata == {"hold_id": "h1"}
        assert draft.memo == "hold h1"
        validate_draft(draft)

    def test_reserve_is_refused_when_account_is_not_an_available_account(self) -> None:
        with pytest.raises(ValidationError) as info:
            reserve_draft(f.hold(account_ref=FEES), "k1")
        assert info.value.field == "account"

    @pytest.mark.parametrize("amount", [0, -1])
    def test_reserve_is_refused_when_amount_is_not_positive(self, amount: int) -> None:
        with pytest.raises(ValidationError) as info:
            reserve_draft(f.hold(amount=amount), "k1")
        assert info.value.field == "amount"


class TestCapture:
    def test_capture_leaves_the_hold_open_when_capture_is_partial(self) -> None:
        updated, draft = capture(f.hold("h1", OWNER, 60), 20, FEES, "c1")
        assert (updated.captured, updated.remaining, updated.status) == (20, 40, HoldStatus.OPEN)
        assert draft.postings == (Posting(HELD, -20), Posting(FEES, 20))
        assert draft.kind is EntryKind.CAPTURE
        assert draft.metadata == {"hold_id": "h1"}

    def test_capture_closes_the_hold_when_it_takes_the_remaining_amount(self) -> None:
        partly = f.hold("h1", OWNER, 60, captured=20)
        updated, _ = capture(partly, 40, FEES, "c2")
        assert (updated.captured, updated.remaining, updated.status) == (60, 0, HoldStatus.CLOSED)

    @pytest.mark.parametrize("units", [0, -1, 41])
    def test_capture_is_refused_when_units_are_not_within_the_remaining_amount(
        self, units: int
    ) -> None:
        with pytest.raises(ValidationError, match="between 1 and 40"):
            capture(f.hold(amount=60, captured=20), units, FEES, "c3")

    def test_capture_is_refused_when_destination_holds_another_asset(self) -> None:
        with pytest.raises(ValidationError) as info:
            capture(f.hold(), 1, f.operator(AccountKind.FEES, "ETH"), "c4")
        assert info.value.field == "destination"

    def test_capture_is_refused_when_hold_is_closed(self) -> None:
        closed = f.hold(amount=60, captured=60, status=HoldStatus.CLOSED)
        with pytest.raises(ConflictError, match="closed") as info:
            capture(closed, 1, FEES, "c5")
        assert info.value.details["hold_id"] == closed.id


class TestRelease:
    def test_release_returns_the_whole_amount_when_nothing_was_captured(self) -> None:
        updated, draft = release(f.hold("h1", OWNER, 60), "r1")
        assert (updated.released, updated.remaining, updated.status) == (60, 0, HoldStatus.CLOSED)
        assert draft.postings == (Posting(HELD, -60), Posting(OWNER, 60))
        assert draft.kind is EntryKind.RELEASE

    def test_release_returns_only_the_remainder_when_part_was_captured(self) -> None:
        updated, draft = release(f.hold("h1", OWNER, 60, captured=25), "r2")
        assert (updated.captured, updated.released, updated.remaining) == (25, 35, 0)
        assert draft.postings == (Posting(HELD, -35), Posting(OWNER, 35))

    def test_release_is_refused_when_hold_is_closed(self) -> None:
        closed = f.hold(amount=60, released=60, status=HoldStatus.CLOSED)
        with pytest.raises(ConflictError):
            release(closed, "r3")
