"""What a change on chain does to a payout or a sweep: its row, ledger entries, events, audit.

Every function runs inside the caller's writer command (the watcher's block or rollback, or
a fee read by :meth:`~dpgnode.services.chains.outgoing.OutgoingTracker.refresh`), so each
change commits together with its entries, its outbox event and its audit record. Entries
are keyed by the payout or sweep id: a replay posts nothing new.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dpgnode.domain import hold as holds
from dpgnode.domain.chains import sweeps as sweep_states
from dpgnode.domain.chains.blocks import BlockRef
from dpgnode.domain.chains.outgoing import OnChain, fee_draft, network_fee_account
from dpgnode.domain.chains.payments import world_account
from dpgnode.domain.chains.sweeps import Sweep
from dpgnode.domain.custody.audit import AuditAction, AuditEvent, AuditResult
from dpgnode.domain.custody.payout import (
    Payout,
    PayoutStatus,
    mark_broadcast,
    mark_confirmed,
    mark_lost,
    mark_mined,
    mark_unmined,
)
from dpgnode.domain.events import DomainEvent
from dpgnode.errors import IntegrityError
from dpgnode.ports.custody import PayoutStore
from dpgnode.ports.outgoing import OutgoingStore, PaidFee
from dpgnode.ports.uow import Tx
from dpgnode.services.custody.audit import AuditService
from dpgnode.services.custody.payout_records import payout_event
from dpgnode.services.ledger import post_entry

SYSTEM_ACTOR = "system"
"""Audit actor of what the chain decided (no operator acted)."""


class OutgoingEffects:
    """Applies the chain's verdicts to payouts and sweeps (see the module docstring)."""

    def __init__(self, payouts: PayoutStore, sweeps: OutgoingStore, audit: AuditService) -> None:
        self._payouts = payouts
        self._sweeps = sweeps
        self._audit = audit

    # -- payouts -----------------------------------------------------------------------------

    def payout_moved(
        self, tx: Tx, payout: Payout, after: OnChain, at: datetime, *, keep_fee: bool = True
    ) -> Payout:
        """Record that the payout's transaction was mined, unmined or contested."""
        if after.block is not None and payout.block is None:
            if payout.status is PayoutStatus.SIGNED:  # mined; our broadcast went unrecorded
                payout = mark_broadcast(payout, at)
                self._payouts.save_payout(tx, payout)
                self._audit.append(tx, AuditEvent(
                    SYSTEM_ACTOR, AuditAction.PAYOUT_BROADCAST, payout.id, AuditResult.OK,
                    details={"txid": payout.txid or "", "asset": payout.asset,
                             "known": "true", "seenInBlock": after.block.hash}))
                tx.emit(payout_event("custody.payout_broadcast", payout))
            moved = mark_mined(payout, after.block, at)
            kind = "custody.payout_mined"
        elif after.block is None and payout.block is not None:
            moved = replace(mark_unmined(payout, at, keep_fee=keep_fee),
                            conflict_txid=after.conflict_txid,
                            conflict_height=after.conflict_height)
            kind = "custody.payout_unmined"
        else:
            moved = replace(payout, conflict_txid=after.conflict_txid,
                            conflict_height=after.conflict_height, updated_at=at)
            kind = ("custody.payout_contested" if after.conflict_txid is not None
                    else "custody.payout_uncontested")
        self._payouts.save_payout(tx, moved)
        height = None if moved.block is None else moved.block.height
        tx.emit(_with_chain(payout_event(kind, moved), height, moved.conflict_txid))
        return moved

    def confirm_payout(self, tx: Tx, payout: Payout, native_asset: str, at: datetime) -> Payout:
        """The payout's block is final: capture its hold, book its fee, record it."""
        if payout.fee_units is None or payout.block is None:
            raise IntegrityError(f"payout {payout.id} confirmed without its block and fee")
        hold = tx.hold(payout.hold_id)
        if hold is None or hold.remaining < payout.units:
            raise IntegrityError(
                f"payout {payout.id}: its hold {payout.hold_id} no longer covers "
                f"{payout.units} base units")
        memo = f"payout {payout.id} confirmed in block {payout.block.height}"
        captured, draft = holds.capture(hold, payout.units, world_account(payout.asset),
                                        f"payout-capture:{payout.id}", memo)
        post_entry(tx, draft)
        tx.save_hold(captured)
        self._book_fee(tx, f"payout-fee:{payout.id}", native_asset, payout.fee_units,
                       f"network fee of payout {payout.id}",
                       {"payout": payout.id, "txid": payout.txid or ""})
        done = mark_confirmed(payout, payout.fee_units, at)
        self._payouts.save_payout(tx, done)
        self._audit.append(tx, AuditEvent(
            SYSTEM_ACTOR, AuditAction.PAYOUT_CONFIRMED, payout.id, AuditResult.OK,
            details={"txid": payout.txid or "", "block": payout.block.hash,
                     "height": str(payout.block.height), "fee": str(payout.fee_units),
                     "feeAsset": native_asset}))
        tx.emit(_with_chain(payout_event("custody.payout_confirmed", done),
                            payout.block.height, None, fee=payout.fee_units))
        return done

    def lose_payout(self, tx: Tx, payout: Payout, beaten_by: str, at: datetime) -> Payout:
        """The payout's transaction can never be mined: fail it and release its hold."""
        failed = mark_lost(payout, beaten_by, at)
        self._payouts.save_payout(tx, failed)
        hold = tx.hold(failed.hold_id)
        if hold is not None and hold.remaining > 0:
            released, draft = holds.release(hold, f"payout-release:{failed.id}",
                                            f"payout {failed.id} lost on chain")
            post_entry(tx, draft)
            tx.save_hold(released)
        self._audit.append(tx, AuditEvent(
            SYSTEM_ACTOR, AuditAction.PAYOUT_LOST, failed.id, AuditResult.FAILED,
            details={"txid": failed.txid or "", "conflictTxid": beaten_by,
                     "reason": failed.failure[:200]}))
        tx.emit(_with_chain(payout_event("custody.payout_failed", failed), None, beaten_by))
        return failed

    # -- sweeps ------------------------------------------------------------------------------

    def sweep_moved(
        self, tx: Tx, sweep: Sweep, after: OnChain, at: datetime, *, keep_fee: bool = True
    ) -> Sweep:
        """Record that the sweep's transaction was mined, unmined or contested."""
        if after.block is not None and sweep.block is None:
            moved = sweep_states.mark_mined(sweep, after.block, at)
            kind = "chain.sweep_mined"
        elif after.block is None and sweep.block is not None:
            moved = sweep_states.with_conflict(
                sweep_states.mark_unmined(sweep, at, keep_fee=keep_fee),
                after.conflict_txid, after.conflict_height, at)
            kind = "chain.sweep_unmined"
        else:
            moved = sweep_states.with_conflict(sweep, after.conflict_txid,
                                               after.conflict_height, at)
            kind = ("chain.sweep_contested" if after.conflict_txid is not None
                    else "chain.sweep_uncontested")
        self._sweeps.save_sweep(tx, moved)
        tx.emit(sweep_event(kind, moved))
        return moved

    def confirm_sweep(self, tx: Tx, sweep: Sweep, at: datetime) -> Sweep:
        """The sweep's block is final: book its fee and record it."""
        if sweep.fee_units is None or sweep.block is None:
            raise IntegrityError(f"sweep {sweep.id} confirmed without its block and fee")
        self._book_fee(tx, f"sweep-fee:{sweep.id}", sweep.fee_asset, sweep.fee_units,
                       f"network fee of {sweep.kind} {sweep.id}",
                       {"sweep": sweep.id, "txid": sweep.txid})
        done = sweep_states.mark_confirmed(sweep, sweep.fee_units, at)
        self._sweeps.save_sweep(tx, done)
        self._audit.append(tx, AuditEvent(
            SYSTEM_ACTOR, AuditAction.SWEEP_CONFIRMED, sweep.id, AuditResult.OK,
            details={"txid": sweep.txid, "block": sweep.block.hash,
                     "height": str(sweep.block.height), "fee": str(sweep.fee_units),
                     "feeAsset": sweep.fee_asset}))
        tx.emit(sweep_event("chain.sweep_confirmed", done))
        return done

    def lose_sweep(self, tx: Tx, sweep: Sweep, beaten_by: str, at: datetime) -> Sweep:
        """The sweep's transaction can never be mined (its value never left)."""
        failed = sweep_states.mark_failed(
            sweep, f"its transaction lost to {beaten_by}, final on chain", at)
        self._sweeps.save_sweep(tx, failed)
        self._audit.append(tx, AuditEvent(
            SYSTEM_ACTOR, AuditAction.SWEEP_FAILED, sweep.id, AuditResult.FAILED,
            details={"txid": sweep.txid, "conflictTxid": beaten_by}))
        tx.emit(sweep_event("chain.sweep_failed", failed))
        return failed

    # -- fees --------------------------------------------------------------------------------

    def record_fee(self, tx: Tx, kind: str, subject: str, paid: PaidFee, at: datetime) -> bool:
        """Record the fee a receipt reported, if the transaction is still mined in its block."""
        if kind == "payout":
            payout = self._payouts.payout_in(tx, subject)
            if (payout is None or payout.status is not PayoutStatus.MINED
                    or payout.fee_units is not None or not _same_block(payout.block, paid)):
                return False
            self._payouts.save_payout(tx, replace(payout, fee_units=paid.units, updated_at=at))
            return True
        sweep = self._sweeps.sweep_in(tx, subject)
        if (sweep is None or sweep.status is not sweep_states.SweepStatus.MINED
                or sweep.fee_units is not None or not _same_block(sweep.block, paid)):
            return False
        self._sweeps.save_sweep(tx, replace(sweep, fee_units=paid.units, updated_at=at))
        return True

    def _book_fee(
        self, tx: Tx, key: str, native_asset: str, units: int, memo: str,
        metadata: dict[str, str],
    ) -> None:
        draft = fee_draft(key, native_asset, units, memo, metadata)
        if draft is None:
            return
        ref = network_fee_account(native_asset)
        account = tx.open_account(ref, allow_overdraft=True)
        if not account.allow_overdraft:
            raise IntegrityError(
                f"ledger account {ref.code} forbids overdraft, but it accumulates the network "
                "fees the node pays (a negative balance): it must allow overdraft")
        post_entry(tx, draft)


def sweep_event(kind: str, sweep: Sweep) -> DomainEvent:
    """The outbox event announcing a sweep's new state (amounts as decimal strings)."""
    return DomainEvent(kind, f"sweep:{sweep.id}", {
        "sweepId": sweep.id, "batch": sweep.batch, "chain": sweep.chain,
        "kind": str(sweep.kind), "asset": sweep.asset, "units": str(sweep.units),
        "to": sweep.to_address, "from": list(sweep.source_addresses), "txid": sweep.txid,
        "status": str(sweep.status),
        "feeUnits": None if sweep.fee_units is None else str(sweep.fee_units),
        "blockHeight": None if sweep.block is None else sweep.block.height,
        "conflictTxid": sweep.conflict_txid,
    })


def _same_block(block: BlockRef | None, paid: PaidFee) -> bool:
    return block is not None and paid.block_hash in (None, block.hash)


def _with_chain(
    event: DomainEvent, height: int | None, conflict: str | None, *, fee: int | None = None
) -> DomainEvent:
    payload = {**event.payload, "blockHeight": height, "conflictTxid": conflict}
    if fee is not None:
        payload["feeUnits"] = str(fee)
    return DomainEvent(event.type, event.aggregate, payload)
