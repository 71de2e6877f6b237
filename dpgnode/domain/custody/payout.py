"""Payouts: value leaving the node on chain, from request to a signed transaction.

States and the only transitions allowed (:func:`transition` refuses every other):

    pending_approval ──approvals complete──▶ signing ──signed──▶ signed ──broadcast──▶ broadcast
          │                                    │
          └──cancel──▶ cancelled               └──failed──▶ failed

A payout that needs no approval goes straight from its request to ``signing``. Reaching
``signing`` is the moment a signature is asked for, so it happens exactly once per payout:
the write transaction that records the last missing approval is the one that moves the
payout there, and only its caller calls the signer (RELIABILITY R3: 1,000 concurrent
approvals give one signing request). ``signed`` leaves the raw transaction ready for
broadcast; ``broadcast`` records that a chain node accepted it (a refused broadcast leaves
the payout ``signed``); ``failed`` and ``cancelled`` release the ledger hold.

Invariants: amounts are positive base units of ``asset``; ``raw_tx``/``txid`` are set iff
the payout is ``signed`` or ``broadcast``; a failed, cancelled or broadcast payout never
changes again, and a ``signed`` one can only become ``broadcast``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from dpgnode.domain.ledger import AccountRef
from dpgnode.errors import ConflictError, ValidationError

HOT_PREFIX = "hot:"
"""Sources of the form ``hot:<label>`` name an HSM hot key instead of a key account."""


class PayoutStatus(StrEnum):
    """Where a payout stands."""

    PENDING_APPROVAL = "pending_approval"
    SIGNING = "signing"
    SIGNED = "signed"
    BROADCAST = "broadcast"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def closed(self) -> bool:
        """Whether the payout's outcome is decided: nothing cancels or re-signs it.

        A ``signed`` payout is closed too; it may still move on to ``broadcast``.
        """
        return self in (
            PayoutStatus.SIGNED, PayoutStatus.BROADCAST, PayoutStatus.FAILED,
            PayoutStatus.CANCELLED,
        )

    @property
    def counts_against_limits(self) -> bool:
        """Whether the payout still counts towards daily and velocity limits.

        Everything that may still leave, or has left, counts; failed and cancelled ones
        never moved money and do not.
        """
        return self not in (PayoutStatus.FAILED, PayoutStatus.CANCELLED)


_ALLOWED: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    PayoutStatus.PENDING_APPROVAL: frozenset(
        {PayoutStatus.SIGNING, PayoutStatus.CANCELLED, PayoutStatus.FAILED}
    ),
    PayoutStatus.SIGNING: frozenset({PayoutStatus.SIGNED, PayoutStatus.FAILED}),
    PayoutStatus.SIGNED: frozenset({PayoutStatus.BROADCAST}),
    PayoutStatus.BROADCAST: frozenset(),
    PayoutStatus.FAILED: frozenset(),
    PayoutStatus.CANCELLED: frozenset(),
}

_CARRIES_TX = frozenset({PayoutStatus.SIGNED, PayoutStatus.BROADCAST})


@dataclass(frozen=True, slots=True)
class Payout:
    """A payout as the node records it."""

    id: str
    asset: str
    units: int
    destination: str
    """Normalised destination address."""
    debit_account: AccountRef
    """The ``available`` ledger account the amount is held on and paid from."""
    hold_id: str
    source: str
    """What signs: a key account id (``ka_…``) or ``hot:<label>`` for an HSM hot key."""
    requested_by: str
    """Operator id of the requester (never counts as an approver)."""
    approvals_required: int
    status: PayoutStatus
    request_key: str
    created_at: datetime
    updated_at: datetime
    memo: str = ""
    raw_tx: str | None = None
    txid: str | None = None
    failure: str = ""

    def __post_init__(self) -> None:
        if type(self.units) is not int or self.units <= 0:
            raise ValidationError("payout amount must be positive", field="amount")
        if (self.raw_tx is not None) != (self.status in _CARRIES_TX):
            raise ValidationError("only a signed payout carries a raw transaction", field="raw_tx")

    @property
    def uses_hot_key(self) -> bool:
        """Whether the source is an HSM hot key rather than a key account."""
        return self.source.startswith(HOT_PREFIX)

    @property
    def hot_key_label(self) -> str:
        """The hot key's label (``hot:BTC:regtest`` for source ``hot:BTC:regtest``)."""
        return self.source if self.uses_hot_key else ""


def transition(payout: Payout, to: PayoutStatus, at: datetime) -> Payout:
    """``payout`` moved to ``to``; ``ConflictError`` for a transition the machine forbids."""
    _check_transition(payout, to)
    return replace(payout, status=to, updated_at=at)


def mark_signed(payout: Payout, raw_tx: str, txid: str, at: datetime) -> Payout:
    """The payout with its signed transaction recorded."""
    if not raw_tx or not txid:
        raise ValidationError("a signed payout needs a raw transaction and a txid", field="raw_tx")
    _check_transition(payout, PayoutStatus.SIGNED)
    return replace(payout, status=PayoutStatus.SIGNED, updated_at=at, raw_tx=raw_tx, txid=txid)


def mark_failed(payout: Payout, reason: str, at: datetime) -> Payout:
    """The payout failed for ``reason`` (a message without secrets, at most 500 chars)."""
    return replace(transition(payout, PayoutStatus.FAILED, at), failure=reason[:500])


def mark_broadcast(payout: Payout, at: datetime) -> Payout:
    """The signed payout after a chain node accepted its transaction (txid unchanged)."""
    return transition(payout, PayoutStatus.BROADCAST, at)


def _check_transition(payout: Payout, to: PayoutStatus) -> None:
    if to not in _ALLOWED[payout.status]:
        raise ConflictError(
            f"payout {payout.id} is {payout.status}; it cannot become {to}",
            details={"payout_id": payout.id, "status": str(payout.status)},
        )
