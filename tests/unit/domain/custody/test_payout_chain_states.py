"""A broadcast payout on chain: mined, unmined by a reorganisation, confirmed, or lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dpgnode.domain.chains.blocks import BlockRef
from dpgnode.domain.custody.payout import (
    Payout,
    PayoutStatus,
    mark_broadcast,
    mark_confirmed,
    mark_lost,
    mark_mined,
    mark_signed,
    mark_unmined,
    transition,
)
from dpgnode.domain.ledger import AccountRef
from dpgnode.errors import ConflictError, ValidationError

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
BLOCK = BlockRef(101, "ef" * 32)


def broadcast(fee: int | None = 240, raw: str = "02000000") -> Payout:
    payout = Payout(
        id="po_1", asset="BTC", units=10_000, destination="bcrt1q...",
        debit_account=AccountRef.parse("store:st_1:BTC:available"), hold_id="hold_1",
        source="hot:BTC:regtest", requested_by="op_a", approvals_required=0,
        status=PayoutStatus.SIGNING, request_key="k", created_at=T0, updated_at=T0,
    )
    signed = mark_signed(payout, raw, "ab" * 32, T0, fee_units=fee, spends=("aa" * 32 + ":1",))
    return mark_broadcast(signed, T0)


def test_signing_records_the_fee_and_the_conflict_keys_when_the_signer_knows_them() -> None:
    payout = broadcast()
    assert payout.fee_units == 240
    assert payout.spends == ("aa" * 32 + ":1",)
    assert payout.status.on_chain


def test_mined_payout_carries_its_block_and_forgets_a_conflict_when_mined() -> None:
    contested = replace(broadcast(), conflict_txid="cc" * 32, conflict_height=100)
    mined = mark_mined(contested, BLOCK, T1)
    assert (mined.status, mined.block, mined.conflict_txid) == (PayoutStatus.MINED, BLOCK, None)
    assert mined.status.closed
    assert mined.status.counts_against_limits


def test_unmined_payout_is_broadcast_again_and_keeps_a_bitcoin_fee_when_reorganised() -> None:
    back = mark_unmined(mark_mined(broadcast(), BLOCK, T0), T1, keep_fee=True)
    assert (back.status, back.block, back.fee_units) == (PayoutStatus.BROADCAST, None, 240)


def test_unmined_payout_forgets_a_receipt_fee_when_its_block_is_dropped() -> None:
    mined = replace(mark_mined(broadcast(fee=None, raw="0x02f8"), BLOCK, T0), fee_units=21_000)
    assert mark_unmined(mined, T1, keep_fee=False).fee_units is None


def test_confirmed_payout_is_final_with_its_fee() -> None:
    done = mark_confirmed(mark_mined(broadcast(), BLOCK, T0), 240, T1)
    assert (done.status, done.fee_units, done.block) == (PayoutStatus.CONFIRMED, 240, BLOCK)
    for to in PayoutStatus:
        with pytest.raises((ConflictError, ValidationError)):
            transition(done, to, T1)


def test_only_a_mined_payout_can_be_confirmed() -> None:
    with pytest.raises(ConflictError):
        mark_confirmed(broadcast(), 240, T1)


def test_lost_payout_fails_keeping_its_transaction_as_evidence() -> None:
    lost = mark_lost(broadcast(), "dd" * 32, T1)
    assert lost.status is PayoutStatus.FAILED
    assert lost.raw_tx == "02000000"
    assert lost.txid == "ab" * 32
    assert "dd" * 32 in lost.failure
    assert not lost.status.counts_against_limits


def test_a_mined_payout_cannot_be_lost() -> None:
    with pytest.raises(ConflictError):
        mark_lost(mark_mined(broadcast(), BLOCK, T0), "dd" * 32, T1)


def test_block_is_set_exactly_when_mined_or_confirmed() -> None:
    with pytest.raises(ValidationError):
        replace(broadcast(), block=BLOCK)
    with pytest.raises(ValidationError):
        replace(mark_mined(broadcast(), BLOCK, T0), block=None)


def test_fee_is_a_whole_non_negative_amount() -> None:
    with pytest.raises(ValidationError):
        replace(broadcast(), fee_units=-1)


def test_a_payout_before_signing_never_carries_a_transaction() -> None:
    with pytest.raises(ValidationError):
        replace(broadcast(), status=PayoutStatus.PENDING_APPROVAL)
