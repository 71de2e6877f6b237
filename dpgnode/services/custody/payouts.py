"""Payouts: request -> policy -> hold -> approvals -> one signature -> ``signed``.

Each step is one writer command, so its effects (payout row, ledger hold, approvals, audit
records, outbox events) commit together or not at all:

1. ``request``: the policy is evaluated against the asset's recent payouts in the same
   transaction that would record the payout; a refusal records only an audit entry
   (``payout.requested``, ``denied``, with the rule) and raises ``PolicyDeniedError``. An
   accepted request holds the amount on the debit account (``InsufficientFundsError`` if
   it cannot) and waits for approvals, or goes straight to signing when none are needed.
2. ``approve``: records the operator's approval once (twice counts once; the requester's
   own never counts: four-eyes). The command that completes the approvals re-checks the
   whole policy and moves the payout to ``signing``; only its caller asks the signer, so
   any number of concurrent approvals produce exactly one signing request (R3).
3. signing (outside the transaction: an HSM is slow): the transaction is built and signed;
   a second command records ``signed`` with the raw transaction and txid, or ``failed``
   and releases the hold. Either outcome is audited.

Broadcasting the signed transaction is :mod:`.broadcasts` (``broadcast``); settling the
hold belongs to the chains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from dpgnode.domain import hold as holds
from dpgnode.domain.custody.audit import AuditAction, AuditEvent, AuditResult
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import (
    Payout,
    PayoutStatus,
    mark_failed,
    mark_signed,
    transition,
)
from dpgnode.domain.custody.policy import (
    DAY_WINDOW,
    VELOCITY_WINDOW,
    Decision,
    SpendHistory,
    SpendPolicy,
    SpendRequest,
    distinct_approvers,
    evaluate,
    evaluate_for_signing,
)
from dpgnode.domain.hold import Hold
from dpgnode.domain.ledger import AccountKind
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import (
    ConflictError,
    DpgError,
    NotFoundError,
    PolicyDeniedError,
    ValidationError,
)
from dpgnode.ports.chains import TransactionBroadcaster
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import PayoutFunding, PayoutStore
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.signer import Signer
from dpgnode.ports.uow import Hints, Tx, Writer
from dpgnode.services.custody.audit import AuditService
from dpgnode.services.custody.broadcasts import BroadcastOutcome, PayoutBroadcasts
from dpgnode.services.custody.payout_records import (
    PayoutRequest,
    check_request,
    payout_event,
    replayed,
    request_details,
)
from dpgnode.services.custody.payout_tx import PayoutTransactions
from dpgnode.services.custody.tx_signing import SignedTx
from dpgnode.services.ledger import post_entry

__all__ = ["SELF_APPROVAL_RULE", "PayoutRequest", "PayoutService"]

SELF_APPROVAL_RULE = "self_approval"


@dataclass(frozen=True, slots=True)
class _Outcome:
    payout: Payout | None
    sign_now: bool = False
    denied: Decision | None = None
    denied_rule: str = ""
    asset: str = ""


class PayoutService:
    """Payout requests, approvals and their single signature."""

    def __init__(
        self, store: PayoutStore, writer: Writer, ids: IdGenerator, clock: Clock,
        audit: AuditService, policy: SpendPolicy, assets: AssetRegistry,
        transactions: PayoutTransactions,
    ) -> None:
        self._store = store
        self._writer = writer
        self._ids = ids
        self._clock = clock
        self._audit = audit
        self.policy = policy
        self._assets = assets
        self._transactions = transactions

    # -- request -------------------------------------------------------------------------

    def request(
        self, operator: Operator, request: PayoutRequest, *, signer: Signer | None = None,
        funding: PayoutFunding | None = None, min_approvals: int = 0,
    ) -> Payout:
        """Check, hold and record a payout; sign at once when it needs no approval.

        ``min_approvals`` raises the approvals the policy asks for: a process without a
        signer (the API, R22) passes 1, so its requests wait in ``pending_approval`` for an
        operator's approval where the HSM is, instead of reaching ``signing`` with nobody
        to sign.

        Raises:
            PolicyDeniedError: a rule refused it (``details['rule']``); nothing was held.
            InsufficientFundsError: the debit account cannot cover the hold.
            IdempotencyKeyReusedError: the request key was used for another payout.
            ValidationError, NotFoundError: a source that cannot pay the asset (unknown,
                watch-only, or of the other chain family).
        """
        check_request(request, self._assets)
        destination = self._transactions.check_request(
            request.source, request.asset, request.destination
        )
        request = replace(request, destination=destination)
        payout_id, hold_id = self._ids.new("po"), self._ids.new("hold")
        outcome = self._writer.run(
            self._request_command(operator, request, payout_id, hold_id, min_approvals),
            Hints((f"payout-hold:{request.request_key}",),
                  (request.debit_account, request.debit_account.sibling(AccountKind.HELD))),
        )
        return self._finish(outcome, signer, funding)

    def _request_command(
        self, operator: Operator, request: PayoutRequest, payout_id: str, hold_id: str,
        min_approvals: int = 0,
    ) -> Callable[[Tx], _Outcome]:
        def command(tx: Tx) -> _Outcome:
            now = self._clock.now()
            existing = self._store.payout_by_request_key(tx, request.request_key)
            if existing is not None:
                return _Outcome(replayed(existing, request, operator))
            spend = SpendRequest(request.asset, request.units, request.destination)
            decision = evaluate(self.policy.for_asset(request.asset), spend, self._history(
                tx, request.asset, now))
            details = request_details(request)
            if not decision.allowed:
                self._audit.append(tx, AuditEvent(
                    operator.id, AuditAction.PAYOUT_REQUESTED, f"request:{request.request_key}",
                    AuditResult.DENIED, str(decision.rule), details,
                ))
                return _Outcome(None, denied=decision, denied_rule=str(decision.rule),
                                asset=request.asset)
            hold = Hold(hold_id, request.debit_account, request.units)
            post_entry(tx, holds.reserve_draft(
                hold, f"payout-hold:{request.request_key}", f"payout {payout_id}"))
            tx.save_hold(hold)
            approvals = max(decision.approvals_required, min_approvals)
            status = PayoutStatus.PENDING_APPROVAL if approvals else PayoutStatus.SIGNING
            payout = Payout(
                id=payout_id, asset=request.asset, units=request.units,
                destination=request.destination, debit_account=request.debit_account,
                hold_id=hold_id, source=request.source, requested_by=operator.id,
                approvals_required=approvals, status=status,
                request_key=request.request_key, created_at=now, updated_at=now,
                memo=request.memo,
            )
            self._store.save_payout(tx, payout)
            self._audit.append(tx, AuditEvent(
                operator.id, AuditAction.PAYOUT_REQUESTED, payout.id, AuditResult.OK,
                details={**details, "approvalsRequired": str(payout.approvals_required)},
            ))
            tx.emit(payout_event("custody.payout_requested", payout))
            if status is PayoutStatus.SIGNING:
                self._signing_requested(tx, payout, operator.id)
            return _Outcome(payout, sign_now=status is PayoutStatus.SIGNING)

        return command

    # -- approvals -----------------------------------------------------------------------

    def approve(
        self, payout_id: str, operator: Operator, *, signer: Signer | None = None,
        funding: PayoutFunding | None = None, can_sign: bool = True,
    ) -> Payout:
        """Approve as ``operator``; the approval that completes the set triggers signing.

        Returns the payout as it stands after this call (``signing`` left by a concurrent
        approver is returned unchanged: that caller signs, not this one).

        ``can_sign=False`` is for processes that hold no signer (the API, R22): there an
        approval that would complete the set is refused before anything is recorded, in
        the same transaction that counts the approvals, so a payout never reaches
        ``signing`` where nobody can sign it (it would fail and release its hold).

        Raises:
            PolicyDeniedError: the requester approving their own payout
                (``rule=self_approval``), or the policy refusing it at signing time (the
                payout then fails and its hold is released).
            ConflictError: the payout is cancelled or failed; with ``can_sign=False``, this
                approval would complete the set (``details['reason'] = 'signing_required'``).
        """
        at = self._clock.now()

        def command(tx: Tx) -> _Outcome:
            payout = self._payout_in(tx, payout_id)
            if payout.requested_by == operator.id:
                self._audit.append(tx, AuditEvent(
                    operator.id, AuditAction.PAYOUT_APPROVED, payout.id, AuditResult.DENIED,
                    SELF_APPROVAL_RULE,
                ))
                return _Outcome(payout, denied_rule=SELF_APPROVAL_RULE)
            if payout.status in (PayoutStatus.SIGNING, PayoutStatus.SIGNED,
                                 PayoutStatus.BROADCAST):
                return _Outcome(payout)  # decided already: this approval changes nothing
            if payout.status is not PayoutStatus.PENDING_APPROVAL:
                raise ConflictError(f"payout {payout.id} is {payout.status}",
                                    details={"payout_id": payout.id})
            if not can_sign:
                _refuse_final_approval(payout, operator, self._store.approvers(tx, payout.id))
            if self._store.add_approval(tx, payout.id, operator.id, at):
                self._audit.append(tx, AuditEvent(
                    operator.id, AuditAction.PAYOUT_APPROVED, payout.id, AuditResult.OK))
            approvers = distinct_approvers(self._store.approvers(tx, payout.id),
                                           payout.requested_by)
            if len(approvers) < payout.approvals_required:
                return _Outcome(payout)
            return self._start_signing(tx, payout, approvers, operator.id, at)

        outcome = self._writer.run(command)
        return self._finish(outcome, signer, funding)

    def _start_signing(
        self, tx: Tx, payout: Payout, approvers: frozenset[str], actor: str, at: datetime
    ) -> _Outcome:
        spend = SpendRequest(payout.asset, payout.units, payout.destination)
        history = self._history(tx, payout.asset, at, exclude=payout.id)
        decision = evaluate_for_signing(
            self.policy.for_asset(payout.asset), spend, history, approvers)
        if not decision.allowed:
            failed = mark_failed(payout, f"refused at signing: {decision.message}", at)
            self._close(tx, failed, AuditEvent(
                actor, AuditAction.SIGNING_REQUESTED, payout.id, AuditResult.DENIED,
                str(decision.rule)))
            return _Outcome(failed, denied=decision, denied_rule=str(decision.rule))
        signing = transition(payout, PayoutStatus.SIGNING, at)
        self._store.save_payout(tx, signing)
        self._signing_requested(tx, signing, actor, approvers)
        return _Outcome(signing, sign_now=True)

    def _signing_requested(
        self, tx: Tx, payout: Payout, actor: str, approvers: frozenset[str] = frozenset()
    ) -> None:
        self._audit.append(tx, AuditEvent(
            actor, AuditAction.SIGNING_REQUESTED, payout.id, AuditResult.PENDING,
            details={"approvers": ",".join(sorted(approvers)), "source": payout.source},
        ))

    # -- signing -------------------------------------------------------------------------

    def _finish(
        self, outcome: _Outcome, signer: Signer | None, funding: PayoutFunding | None
    ) -> Payout:
        if outcome.denied_rule:
            message = outcome.denied.message if outcome.denied else (
                "the requester of a payout cannot approve it")
            asset = outcome.payout.asset if outcome.payout else outcome.asset
            raise PolicyDeniedError(message, details={"rule": outcome.denied_rule,
                                                      "asset": asset})
        if outcome.payout is None:  # pragma: no cover - every path sets one or the other
            raise NotFoundError("payout vanished")
        if not outcome.sign_now:
            return outcome.payout
        return self._sign(outcome.payout, signer, funding)

    def _sign(
        self, payout: Payout, signer: Signer | None, funding: PayoutFunding | None
    ) -> Payout:
        try:
            if signer is None or funding is None:
                raise ValidationError(
                    "no signer or chain connection in this process to sign the payout",
                    field="signer",
                )
            signed = self._transactions.sign(payout, signer, funding)
        except Exception as exc:
            reason = exc.message if isinstance(exc, DpgError) else type(exc).__name__
            self._fail(payout.id, reason)
            if not isinstance(exc, DpgError):
                raise
            return self.payout(payout.id)
        return self._record_signed(payout.id, signed)

    def _record_signed(self, payout_id: str, signed: SignedTx) -> Payout:
        at = self._clock.now()
        txid = signed.txid

        def command(tx: Tx) -> Payout:
            done = mark_signed(self._payout_in(tx, payout_id), signed.raw_hex, txid, at,
                               fee_units=signed.fee, spends=signed.spends)
            self._store.save_payout(tx, done)
            self._audit.append(tx, AuditEvent(
                "signer", AuditAction.SIGNING_SUCCEEDED, done.id, AuditResult.OK,
                details={"txid": txid},
            ))
            tx.emit(payout_event("custody.payout_signed", done))
            return done

        return self._writer.run(command)

    def _fail(self, payout_id: str, reason: str) -> Payout:
        at = self._clock.now()

        def command(tx: Tx) -> Payout:
            failed = mark_failed(self._payout_in(tx, payout_id), reason, at)
            self._close(tx, failed, AuditEvent(
                "signer", AuditAction.SIGNING_FAILED, failed.id, AuditResult.FAILED,
                details={"reason": failed.failure[:200]},
            ))
            return failed

        return self._writer.run(command)

    def broadcast(
        self, payout_id: str, operator: Operator, chain: TransactionBroadcaster
    ) -> BroadcastOutcome:
        """Hand a signed payout's transaction to its chain (:mod:`.broadcasts`)."""
        return PayoutBroadcasts(self._store, self._writer, self._clock, self._audit).broadcast(
            payout_id, operator, chain)

    # -- cancel and read -----------------------------------------------------------------

    def cancel(self, payout_id: str, operator: Operator, reason: str = "") -> Payout:
        """Cancel a payout before it is signed, or abandon one stuck in ``signing``.

        A stuck ``signing`` payout (its process died mid-signature) becomes ``failed``;
        should the old signer still finish, recording its result conflicts and the
        transaction is discarded (nothing was broadcast). Either way the hold is released.
        """
        at = self._clock.now()

        def command(tx: Tx) -> Payout:
            payout = self._payout_in(tx, payout_id)
            if payout.status is PayoutStatus.SIGNING:
                closed = mark_failed(payout, f"abandoned by {operator.name}: {reason}", at)
            else:
                closed = transition(payout, PayoutStatus.CANCELLED, at)
            self._close(tx, closed, AuditEvent(
                operator.id, AuditAction.PAYOUT_CANCELLED, payout.id, AuditResult.OK,
                details={"reason": reason[:200]},
            ))
            return closed

        return self._writer.run(command)

    def reject(self, payout_id: str, operator: Operator, reason: str = "") -> Payout:
        """Cancel a payout that still awaits approval, releasing its hold.

        Unlike :meth:`cancel` it never abandons a payout already in ``signing``: the check
        and the cancellation are one transaction, so a payout that a concurrent approval
        moved on is left alone.

        Raises:
            ConflictError: the payout no longer awaits approval.
        """
        at = self._clock.now()

        def command(tx: Tx) -> Payout:
            payout = self._payout_in(tx, payout_id)
            if payout.status is not PayoutStatus.PENDING_APPROVAL:
                raise ConflictError(
                    f"payout {payout.id} is {payout.status}: only a payout awaiting approval "
                    "can be rejected", details={"payout_id": payout.id},
                )
            closed = transition(payout, PayoutStatus.CANCELLED, at)
            self._close(tx, closed, AuditEvent(
                operator.id, AuditAction.PAYOUT_CANCELLED, payout.id, AuditResult.OK,
                details={"reason": reason[:200]},
            ))
            return closed

        return self._writer.run(command)

    def payout(self, payout_id: str) -> Payout:
        """One payout (``NotFoundError`` when unknown)."""
        found = self._store.payout(payout_id)
        if found is None:
            raise NotFoundError(f"no payout {payout_id[:64]}", details={"field": "payout"})
        return found

    def payouts(
        self, *, status: PayoutStatus | None = None, asset: str | None = None, limit: int = 100
    ) -> list[Payout]:
        """Payouts, newest first (``limit`` 1..1000)."""
        return list(self._store.payouts(status=status, asset=asset,
                                        limit=max(1, min(limit, 1000))))

    def approvals(self, payout_id: str) -> list[tuple[str, datetime]]:
        """``(operator id, time)`` of each approval, oldest first."""
        return list(self._store.approvals(payout_id))

    # -- helpers -------------------------------------------------------------------------

    def _payout_in(self, tx: Tx, payout_id: str) -> Payout:
        payout = self._store.payout_in(tx, payout_id)
        if payout is None:
            raise NotFoundError(f"no payout {payout_id[:64]}", details={"field": "payout"})
        return payout

    def _history(
        self, tx: Tx, asset: str, now: datetime, exclude: str | None = None
    ) -> SpendHistory:
        return self._store.spend_history(
            tx, asset, day_since=now - DAY_WINDOW, hour_since=now - VELOCITY_WINDOW,
            exclude=exclude,
        )

    def _close(self, tx: Tx, closed: Payout, event: AuditEvent) -> None:
        """Save a failed or cancelled payout, release its hold, audit and announce it."""
        self._store.save_payout(tx, closed)
        hold = tx.hold(closed.hold_id)
        if hold is not None and hold.remaining > 0:
            released, draft = holds.release(hold, f"payout-release:{closed.id}",
                                            f"payout {closed.id} {closed.status}")
            post_entry(tx, draft)
            tx.save_hold(released)
        self._audit.append(tx, event)
        tx.emit(payout_event(f"custody.payout_{closed.status}", closed))


def _refuse_final_approval(
    payout: Payout, operator: Operator, approvers: Iterable[str]
) -> None:
    """Refuse an approval that would complete the set where nobody can sign."""
    after = distinct_approvers([*approvers, operator.id], payout.requested_by)
    if len(after) >= payout.approvals_required:
        raise ConflictError(
            f"this approval completes payout {payout.id} and signs it, which needs the "
            f"signer: run `dpg payout approve {payout.id}` where the HSM is reachable",
            details={"payout_id": payout.id, "reason": "signing_required"},
        )
