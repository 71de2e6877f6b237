"""The ``broadcast`` state of a payout: reachable only from ``signed``; then the chain decides."""

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
    mark_mined,
    mark_signed,
    transition,
)
from dpgnode.domain.ledger import AccountRef
from dpgnode.errors import ConflictError, ValidationError

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def payout(status: PayoutStatus = PayoutStatus.SIGNING) -> Payout:
    return Payout(
        id="po_1", asset="BTC", units=10_000, destination="bcrt1q...",
        debit_account=AccountRef.parse("store:st_1:BTC:available"), hold_id="hold_1",
        source="hot:BTC:regtest", requested_by="op_a", approvals_required=0, status=status,
        request_key="k", created_at=T0, updated_at=T0,
    )


def signed() -> Payout:
    return mark_signed(payout(), "02000000", "ab" * 32, T0)


def test_broadcast_keeps_the_transaction_when_a_signed_payout_is_broadcast() -> None:
    done = mark_broadcast(signed(), T0 + timedelta(minutes=1))
    assert done.status is PayoutStatus.BROADCAST
    assert (done.raw_tx, done.txid) == ("02000000", "ab" * 32)
    assert done.updated_at == T0 + timedelta(minutes=1)
    assert done.sent_at == T0 + timedelta(minutes=1)
    assert done.status.closed
    assert done.status.counts_against_limits


@pytest.mark.parametrize("status", [
    PayoutStatus.PENDING_APPROVAL, PayoutStatus.SIGNING, PayoutStatus.FAILED,
    PayoutStatus.CANCELLED, PayoutStatus.BROADCAST, PayoutStatus.MINED, PayoutStatus.CONFIRMED,
])
def test_broadcast_is_refused_when_payout_is_not_signed(status: PayoutStatus) -> None:
    broadcast = mark_broadcast(signed(), T0)
    mined = mark_mined(broadcast, BlockRef(10, "cd" * 32), T0)
    current = {
        PayoutStatus.BROADCAST: broadcast, PayoutStatus.MINED: mined,
        PayoutStatus.CONFIRMED: mark_confirmed(mined, 150, T0),
    }.get(status) or payout(status)
    with pytest.raises(ConflictError):
        mark_broadcast(current, T0)


@pytest.mark.parametrize("to", [s for s in PayoutStatus
                                if s not in (PayoutStatus.MINED, PayoutStatus.FAILED)])
def test_broadcast_payout_only_becomes_mined_or_failed(to: PayoutStatus) -> None:
    with pytest.raises(ConflictError):
        transition(mark_broadcast(signed(), T0), to, T0)


def test_broadcast_payout_must_carry_its_transaction() -> None:
    with pytest.raises(ValidationError):
        replace(mark_broadcast(signed(), T0), raw_tx=None)
