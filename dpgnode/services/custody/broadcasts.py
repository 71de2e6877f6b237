"""Broadcasting a signed payout: hand its transaction to the chain, record what happened.

The chain is asked outside any transaction (a node may be slow); then one writer command
records the outcome together with its audit record, so the log holds every attempt:

- accepted (or already known to the node): ``signed`` -> ``broadcast``, audit ``ok``, and
  the outbox event ``custody.payout_broadcast``. Broadcasting a ``broadcast`` payout again
  re-sends the same transaction (useful when mempools dropped it) and changes nothing else;
- refused by the node: the payout stays ``signed`` and the audit record (``failed``) keeps
  the node's reason, which the caller shows; the operator can fix the cause and retry;
- the node unreachable, not configured, or disagreeing about the txid: the attempt is
  audited (``failed``) and the error propagates. Retrying is safe: the same signed bytes go
  out again, and a node that had received them reports them as known.

The ledger hold stays in place: the amount is only final once the transaction confirms,
which is the chain watcher's business (it captures the hold, or releases it when the
transaction is dropped for good).
"""

from __future__ import annotations

from dataclasses import dataclass

from dpgnode.domain.custody.audit import AuditAction, AuditEvent, AuditResult
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus, mark_broadcast
from dpgnode.errors import ConflictError, DpgError, IntegrityError, NotFoundError
from dpgnode.ports.chains import BroadcastResult, TransactionBroadcaster
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import PayoutStore
from dpgnode.ports.uow import Tx, Writer
from dpgnode.services.custody.audit import AuditService
from dpgnode.services.custody.payout_records import payout_event

_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class BroadcastOutcome:
    """The payout after a broadcast attempt, and what the node said."""

    payout: Payout
    accepted: bool
    reason: str = ""
    """The node's reason when it refused the transaction."""
    known: bool = False
    """The node had the transaction already."""


class PayoutBroadcasts:
    """Sends signed payouts to their chains (see the module docstring)."""

    def __init__(self, store: PayoutStore, writer: Writer, clock: Clock,
                 audit: AuditService) -> None:
        self._store = store
        self._writer = writer
        self._clock = clock
        self._audit = audit

    def broadcast(
        self, payout_id: str, operator: Operator, chain: TransactionBroadcaster
    ) -> BroadcastOutcome:
        """Broadcast a ``signed`` (or re-send a ``broadcast``) payout's transaction.

        Raises:
            NotFoundError: no such payout.
            ConflictError: the payout is not signed yet, or failed or was cancelled.
            UnavailableError: the node did not answer (retry; the attempt is audited).
            ConfigError: no node is configured for the asset (the attempt is audited).
            IntegrityError: the node computed another txid than the recorded one.
        """
        payout = self._store.payout(payout_id)
        if payout is None:
            raise NotFoundError(f"no payout {payout_id[:64]}", details={"field": "payout"})
        if payout.status not in (PayoutStatus.SIGNED, PayoutStatus.BROADCAST):
            raise ConflictError(
                f"payout {payout.id} is {payout.status}: only a signed payout can be broadcast",
                details={"payout_id": payout.id, "status": str(payout.status)},
            )
        if payout.raw_tx is None or payout.txid is None:  # Payout's invariant forbids it
            raise IntegrityError(f"signed payout {payout.id} has no transaction")
        try:
            result = chain.broadcast(payout.asset, payout.raw_tx, payout.txid)
        except DpgError as exc:
            self._record_error(payout, operator, exc)
            raise
        if not result.accepted:
            return self._record_refusal(payout, operator, result)
        return self._record_accepted(payout.id, operator, result)

    def _record_accepted(
        self, payout_id: str, operator: Operator, result: BroadcastResult
    ) -> BroadcastOutcome:
        at = self._clock.now()

        def command(tx: Tx) -> BroadcastOutcome:
            payout = self._store.payout_in(tx, payout_id)
            if payout is None:
                raise NotFoundError(f"no payout {payout_id[:64]}", details={"field": "payout"})
            if payout.status is PayoutStatus.SIGNED:
                payout = mark_broadcast(payout, at)
                self._store.save_payout(tx, payout)
                tx.emit(payout_event("custody.payout_broadcast", payout))
            self._audit.append(tx, AuditEvent(
                operator.id, AuditAction.PAYOUT_BROADCAST, payout.id, AuditResult.OK,
                details={"txid": result.txid, "asset": payout.asset,
                         "known": "true" if result.known else "false"},
            ))
            return BroadcastOutcome(payout, True, known=result.known)

        return self._writer.run(command)

    def _record_refusal(
        self, payout: Payout, operator: Operator, result: BroadcastResult
    ) -> BroadcastOutcome:
        reason = result.reason[:_REASON_CHARS] or "refused without a reason"
        self._append(payout, operator, AuditResult.FAILED, reason)
        return BroadcastOutcome(payout, False, reason=reason)

    def _record_error(self, payout: Payout, operator: Operator, exc: DpgError) -> None:
        self._append(payout, operator, AuditResult.FAILED,
                     f"{exc.code}: {exc.message}"[:_REASON_CHARS])

    def _append(
        self, payout: Payout, operator: Operator, result: AuditResult, reason: str
    ) -> None:
        def command(tx: Tx) -> None:
            self._audit.append(tx, AuditEvent(
                operator.id, AuditAction.PAYOUT_BROADCAST, payout.id, result,
                details={"txid": payout.txid or "", "asset": payout.asset,
                         "reason": reason},
            ))

        self._writer.run(command)
