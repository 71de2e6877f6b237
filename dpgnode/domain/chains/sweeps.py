"""Sweeps: the node moving deposits from its issued addresses to the operator's treasury.

A sweep is one signed transaction: on Bitcoin, every confirmed output of the swept deposit
addresses into one output to the treasury (many inputs, no change); on an EVM chain, one
deposit address's whole native balance (less the most its gas may cost) or whole token
balance. A token sweep first needs gas at the deposit address: a *top-up* is a native
transfer from the operator's hot key to it, recorded like a sweep (kind ``top_up``) and
mined before the token transfer is signed.

States (:func:`transition` refuses every other)::

    signed ──broadcast──▶ broadcast ──in a block──▶ mined ──block final──▶ confirmed
      │                     ▲  │                      │
      │                     │  └─conflict final─▶ failed
      │                     └─────reorganised─────────┘
      └──refused by the node──▶ failed

Value stays inside the node, so the ledger sees only the network fee, booked when the
sweep is confirmed (:mod:`.outgoing`). ``inputs`` say how much left which address, for
reconciling each address's balance against the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from dpgnode.domain.chains.blocks import BlockRef
from dpgnode.domain.chains.outgoing import OnChain
from dpgnode.errors import ConflictError, ValidationError


class SweepKind(StrEnum):
    """A sweep to the treasury, or the gas top-up a token sweep needs first."""

    SWEEP = "sweep"
    TOP_UP = "top_up"


class SweepStatus(StrEnum):
    """Where a sweep's transaction stands."""

    SIGNED = "signed"
    BROADCAST = "broadcast"
    MINED = "mined"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    @property
    def on_chain(self) -> bool:
        """Whether the chain watcher still follows it."""
        return self in (SweepStatus.SIGNED, SweepStatus.BROADCAST, SweepStatus.MINED)


_ALLOWED: dict[SweepStatus, frozenset[SweepStatus]] = {
    SweepStatus.SIGNED: frozenset({SweepStatus.BROADCAST, SweepStatus.FAILED}),
    SweepStatus.BROADCAST: frozenset({SweepStatus.MINED, SweepStatus.FAILED}),
    SweepStatus.MINED: frozenset({SweepStatus.BROADCAST, SweepStatus.CONFIRMED}),
    SweepStatus.CONFIRMED: frozenset(),
    SweepStatus.FAILED: frozenset(),
}
_IN_BLOCK = frozenset({SweepStatus.MINED, SweepStatus.CONFIRMED})


@dataclass(frozen=True, slots=True)
class SweepInput:
    """Value leaving one address in a sweep (a Bitcoin output spent, or an EVM balance)."""

    address: str
    units: int
    """Base units of the sweep's asset taken from the address."""
    key_id: str
    """The key that signs for it: ``<key account id>/<branch>/<index>`` or ``hot:<label>``."""
    outpoint: str = ""
    """``txid:vout`` of the spent output (Bitcoin only)."""

    def __post_init__(self) -> None:
        if type(self.units) is not int or self.units <= 0:
            raise ValidationError("a sweep takes a positive amount", field="units")


@dataclass(frozen=True, slots=True)
class Sweep:
    """One sweep (or top-up) transaction as the node records it."""

    id: str
    batch: str
    """The ``dpg chain sweep`` run it belongs to."""
    chain: str
    kind: SweepKind
    asset: str
    """What moves (a token for a token sweep; the native coin for a top-up)."""
    to_address: str
    units: int
    """Base units of ``asset`` the destination receives."""
    inputs: tuple[SweepInput, ...]
    fee_asset: str
    """The chain's native asset, in which the fee is paid."""
    txid: str
    raw_tx: str
    status: SweepStatus
    created_at: datetime
    updated_at: datetime
    spends: tuple[str, ...] = ()
    """Conflict keys of the transaction (see :mod:`.blocks`)."""
    fee_units: int | None = None
    """Known at signing on Bitcoin; read from the receipt once mined on EVM chains."""
    block: BlockRef | None = None
    conflict_txid: str | None = None
    conflict_height: int | None = None
    sent_at: datetime | None = None
    failure: str = ""

    def __post_init__(self) -> None:
        if type(self.units) is not int or self.units <= 0:
            raise ValidationError("a sweep moves a positive amount", field="units")
        if not self.inputs:
            raise ValidationError("a sweep spends at least one address", field="inputs")
        if not self.txid or not self.raw_tx:
            raise ValidationError("a sweep is a signed transaction", field="raw_tx")
        if (self.block is not None) != (self.status in _IN_BLOCK):
            raise ValidationError("only a mined sweep has a block", field="block")

    @property
    def on_chain(self) -> OnChain:
        """Its transaction as the chain follows it."""
        return OnChain(self.txid, self.spends, self.block, self.conflict_txid,
                       self.conflict_height)

    @property
    def source_addresses(self) -> tuple[str, ...]:
        """The addresses it takes value from, in input order, each once."""
        return tuple(dict.fromkeys(i.address for i in self.inputs))


def transition(sweep: Sweep, to: SweepStatus, at: datetime, **changes: object) -> Sweep:
    """``sweep`` moved to ``to`` with ``changes`` applied at once.

    Raises ``ConflictError`` for a transition the machine forbids.
    """
    if to not in _ALLOWED[sweep.status]:
        raise ConflictError(f"sweep {sweep.id} is {sweep.status}; it cannot become {to}",
                            details={"sweep_id": sweep.id, "status": str(sweep.status)})
    return replace(sweep, status=to, updated_at=at, **changes)  # type: ignore[arg-type]


def mark_broadcast(sweep: Sweep, at: datetime) -> Sweep:
    """A chain node accepted the sweep's transaction (or re-sending it was accepted)."""
    if sweep.status is not SweepStatus.SIGNED:
        return replace(sweep, sent_at=at, updated_at=at)
    return transition(sweep, SweepStatus.BROADCAST, at, sent_at=at)


def mark_mined(sweep: Sweep, block: BlockRef, at: datetime) -> Sweep:
    """Its transaction is in ``block`` of the best chain."""
    if sweep.status is SweepStatus.SIGNED:  # mined although our broadcast was not recorded
        sweep = mark_broadcast(sweep, at)
    return transition(sweep, SweepStatus.MINED, at, block=block, conflict_txid=None,
                      conflict_height=None)


def mark_unmined(sweep: Sweep, at: datetime, *, keep_fee: bool) -> Sweep:
    """A reorganisation dropped its block (``keep_fee=False`` forgets a receipt's fee)."""
    return transition(sweep, SweepStatus.BROADCAST, at, block=None,
                      fee_units=sweep.fee_units if keep_fee else None)


def mark_confirmed(sweep: Sweep, fee_units: int, at: datetime) -> Sweep:
    """Its block is final; ``fee_units`` is what it paid."""
    return transition(sweep, SweepStatus.CONFIRMED, at, fee_units=fee_units)


def mark_failed(sweep: Sweep, reason: str, at: datetime) -> Sweep:
    """It will never be mined: refused by the node, or beaten by a final conflict."""
    return transition(sweep, SweepStatus.FAILED, at, failure=reason[:500])


def with_conflict(sweep: Sweep, txid: str | None, height: int | None, at: datetime) -> Sweep:
    """``sweep`` with a conflicting transaction seen in a block at ``height`` (or none)."""
    return replace(sweep, conflict_txid=txid, conflict_height=height, updated_at=at)
