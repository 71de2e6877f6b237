"""Payouts: value leaving the node on chain, from request to a confirmed transaction.

States and the only transitions allowed (:func:`transition` refuses every other):

    pending_approval ──approvals complete──▶ signing ──signed──▶ signed ──broadcast──▶ broadcast
          │                                    │
          └──cancel──▶ cancelled               └──failed──▶ failed

    broadcast ──in a block──▶ mined ──block final──▶ confirmed
        ▲                       │
        └──────reorganised──────┘
    signed, broadcast ──a conflicting transaction is final──▶ failed

A payout that needs no approval goes straight from its request to ``signing``. Reaching
``signing`` is the moment a signature is asked for, so it happens exactly once per payout:
the write transaction that records the last missing approval is the one that moves the
payout there, and only its caller calls the signer (RELIABILITY R3: 1,000 concurrent
approvals give one signing request). ``signed`` leaves the raw transaction ready for
broadcast; ``broadcast`` records that a chain node accepted it (a refused broadcast leaves
the payout ``signed``). From there the chain decides (``dpgnode.services.chains.outgoing``):
``mined`` while its transaction is in a block of the best chain, back to ``broadcast`` when
a reorganisation drops that block, ``confirmed`` once the block is final (the hold is
captured and the network fee booked), or ``failed`` when another transaction that spends
the same inputs (or nonce) is final instead. ``failed`` and ``cancelled`` release the
ledger hold.

Invariants: amounts are positive base units of ``asset``; ``raw_tx``/``txid`` are set for
``signed``, ``broadcast``, ``mined`` and ``confirmed`` payouts (a payout lost on chain keeps
them as evidence) and on no payout before signing; ``block`` is set iff the payout is
``mined`` or ``confirmed``; ``cancelled``, ``failed`` and ``confirmed`` are final.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from dpgnode.domain.chains.blocks import BlockRef
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
    MINED = "mined"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def closed(self) -> bool:
        """Whether the payout's outcome is decided: nothing cancels or re-signs it.

        A ``signed`` payout is closed too; it may still move on to ``broadcast`` and the
        chain may still decide it (``mined``, ``confirmed`` or lost).
        """
        return self not in (PayoutStatus.PENDING_APPROVAL, PayoutStatus.SIGNING)

    @property
    def on_chain(self) -> bool:
        """Whether the chain watcher follows its transaction (``signed`` bytes may be out)."""
        return self in (PayoutStatus.SIGNED, PayoutStatus.BROADCAST, PayoutStatus.MINED)

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
    PayoutStatus.SIGNED: frozenset({PayoutStatus.BROADCAST, PayoutStatus.FAILED}),
    PayoutStatus.BROADCAST: frozenset({PayoutStatus.MINED, PayoutStatus.FAILED}),
    PayoutStatus.MINED: frozenset({PayoutStatus.BROADCAST, PayoutStatus.CONFIRMED}),
    PayoutStatus.CONFIRMED: frozenset(),
    PayoutStatus.FAILED: frozenset(),
    PayoutStatus.CANCELLED: frozenset(),
}

_CARRIES_TX = frozenset({PayoutStatus.SIGNED, PayoutStatus.BROADCAST, PayoutStatus.MINED,
                         PayoutStatus.CONFIRMED})
_MAY_CARRY_TX = _CARRIES_TX | {PayoutStatus.FAILED}
_IN_BLOCK = frozenset({PayoutStatus.MINED, PayoutStatus.CONFIRMED})


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
    fee_units: int | None = None
    """Network fee its transaction pays, in the chain's native asset: known at signing on
    Bitcoin (inputs minus outputs), from the receipt once mined on EVM chains."""
    spends: tuple[str, ...] = ()
    """Conflict keys of its transaction (``txid:vout`` inputs; EVM ``0xsender:nonce``): a
    final transaction of the chain using one of them means this one can never confirm."""
    block: BlockRef | None = None
    """The best-chain block that carries its transaction (``mined`` and ``confirmed``)."""
    conflict_txid: str | None = None
    """A transaction in a block that spends what this one spends (it wins if final)."""
    conflict_height: int | None = None
    sent_at: datetime | None = None
    """When its transaction was last handed to the chain (broadcast or re-sent)."""

    def __post_init__(self) -> None:
        if type(self.units) is not int or self.units <= 0:
            raise ValidationError("payout amount must be positive", field="amount")
        if self.status in _CARRIES_TX and self.raw_tx is None:
            raise ValidationError("a signed payout carries its raw transaction", field="raw_tx")
        if self.raw_tx is not None and self.status not in _MAY_CARRY_TX:
            raise ValidationError("only a signed payout carries a raw transaction", field="raw_tx")
        if (self.block is not None) != (self.status in _IN_BLOCK):
            raise ValidationError("only a mined payout has a block", field="block")
        if self.fee_units is not None and (type(self.fee_units) is not int or self.fee_units < 0):
            raise ValidationError("a network fee is a whole number of base units", field="fee")

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


def mark_signed(
    payout: Payout, raw_tx: str, txid: str, at: datetime, *, fee_units: int | None = None,
    spends: tuple[str, ...] = (),
) -> Payout:
    """The payout with its signed transaction, its fee (when known) and conflict keys."""
    if not raw_tx or not txid:
        raise ValidationError("a signed payout needs a raw transaction and a txid", field="raw_tx")
    _check_transition(payout, PayoutStatus.SIGNED)
    return replace(payout, status=PayoutStatus.SIGNED, updated_at=at, raw_tx=raw_tx, txid=txid,
                   fee_units=fee_units, spends=tuple(spends))


def mark_failed(payout: Payout, reason: str, at: datetime) -> Payout:
    """The payout failed for ``reason`` (a message without secrets, at most 500 chars)."""
    return replace(transition(payout, PayoutStatus.FAILED, at), failure=reason[:500])


def mark_broadcast(payout: Payout, at: datetime) -> Payout:
    """The signed payout after a chain node accepted its transaction (txid unchanged)."""
    if payout.status is not PayoutStatus.SIGNED:  # a mined one goes back by mark_unmined
        raise ConflictError(
            f"payout {payout.id} is {payout.status}: only a signed payout can be broadcast",
            details={"payout_id": payout.id, "status": str(payout.status)},
        )
    return replace(transition(payout, PayoutStatus.BROADCAST, at), sent_at=at)


def mark_mined(payout: Payout, block: BlockRef, at: datetime) -> Payout:
    """The broadcast payout's transaction is in ``block`` of the best chain."""
    _check_transition(payout, PayoutStatus.MINED)
    return replace(payout, status=PayoutStatus.MINED, block=block, conflict_txid=None,
                   conflict_height=None, updated_at=at)


def mark_unmined(payout: Payout, at: datetime, *, keep_fee: bool) -> Payout:
    """A reorganisation dropped the block of the mined payout: broadcast again, unmined.

    ``keep_fee=False`` forgets a fee read from the dropped block's receipt (EVM: the base
    fee differs from block to block); a Bitcoin fee is the transaction's own and stays.
    """
    _check_transition(payout, PayoutStatus.BROADCAST)
    return replace(payout, status=PayoutStatus.BROADCAST, block=None,
                   fee_units=payout.fee_units if keep_fee else None, updated_at=at)


def mark_confirmed(payout: Payout, fee_units: int, at: datetime) -> Payout:
    """The mined payout's block is final; ``fee_units`` is the network fee it paid."""
    _check_transition(payout, PayoutStatus.CONFIRMED)
    return replace(payout, status=PayoutStatus.CONFIRMED, fee_units=fee_units, updated_at=at)


def mark_lost(payout: Payout, conflict_txid: str, at: datetime) -> Payout:
    """The signed or broadcast payout can never confirm: it fails, keeping its transaction.

    ``conflict_txid`` spent its inputs (or nonce) in a final block.
    """
    _check_transition(payout, PayoutStatus.FAILED)
    return replace(
        payout, status=PayoutStatus.FAILED, updated_at=at,
        failure=f"its transaction {payout.txid} lost to {conflict_txid}, final on chain"[:500],
    )


def _check_transition(payout: Payout, to: PayoutStatus) -> None:
    if to not in _ALLOWED[payout.status]:
        raise ConflictError(
            f"payout {payout.id} is {payout.status}; it cannot become {to}",
            details={"payout_id": payout.id, "status": str(payout.status)},
        )
