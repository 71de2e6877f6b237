"""The writer commands that record a sweep's signing and broadcast, with audit and events.

Kept apart from ``sweeps`` so the use case reads as its steps; each method returns the
command the caller runs on the writer, so the row, its audit record and its outbox event
commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dpgnode.domain.chains import sweeps as states
from dpgnode.domain.chains.sweeps import Sweep, SweepStatus
from dpgnode.domain.custody.audit import AuditAction, AuditEvent, AuditResult
from dpgnode.domain.custody.operator import Operator
from dpgnode.errors import IntegrityError
from dpgnode.ports.clock import Clock
from dpgnode.ports.outgoing import OutgoingStore
from dpgnode.ports.uow import Tx
from dpgnode.services.chains.outgoing_effects import sweep_event
from dpgnode.services.custody.audit import AuditService

T = TypeVar("T")
_Command = Callable[[Tx], T]


class SweepRecords:
    """Recording commands of sweeps (see the module docstring)."""

    def __init__(self, store: OutgoingStore, audit: AuditService, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    def signed(self, sweep: Sweep, operator: Operator) -> _Command[None]:
        """Record a newly signed sweep (before it is broadcast: the watcher then knows it)."""

        def command(tx: Tx) -> None:
            self._store.add_sweep(tx, sweep)
            self._audit.append(tx, AuditEvent(
                operator.id, AuditAction.SWEEP_SIGNED, sweep.id, AuditResult.OK,
                details=_audit_details(sweep)))
            tx.emit(sweep_event("chain.sweep_signed", sweep))

        return command

    def accepted(self, sweep_id: str, operator: Operator) -> _Command[Sweep]:
        """Record that a chain node accepted (or already had) the sweep's transaction."""
        at = self._clock.now()

        def command(tx: Tx) -> Sweep:
            sweep = self._sweep_in(tx, sweep_id)
            done = states.mark_broadcast(sweep, at)
            self._store.save_sweep(tx, done)
            self._audit.append(tx, AuditEvent(
                operator.id, AuditAction.SWEEP_BROADCAST, sweep.id, AuditResult.OK,
                details={"txid": sweep.txid, "chain": sweep.chain}))
            if sweep.status is SweepStatus.SIGNED:
                tx.emit(sweep_event("chain.sweep_broadcast", done))
            return done

        return command

    def refused(self, sweep_id: str, operator: Operator, reason: str, *,
                final: bool) -> _Command[Sweep]:
        """Audit a failed broadcast; ``final`` (the node refused it) also fails the sweep.

        Not final (the node did not answer): the sweep stays ``signed``, the watcher decides.
        """
        at = self._clock.now()

        def command(tx: Tx) -> Sweep:
            sweep = self._sweep_in(tx, sweep_id)
            self._audit.append(tx, AuditEvent(
                operator.id, AuditAction.SWEEP_BROADCAST, sweep.id, AuditResult.FAILED,
                details={"txid": sweep.txid, "chain": sweep.chain, "reason": reason}))
            if not final or sweep.status is not SweepStatus.SIGNED:
                return sweep
            failed = states.mark_failed(sweep, f"refused by the node: {reason}", at)
            self._store.save_sweep(tx, failed)
            tx.emit(sweep_event("chain.sweep_failed", failed))
            return failed

        return command

    def _sweep_in(self, tx: Tx, sweep_id: str) -> Sweep:
        sweep = self._store.sweep_in(tx, sweep_id)
        if sweep is None:
            raise IntegrityError(f"sweep {sweep_id} vanished")
        return sweep


def _audit_details(sweep: Sweep) -> dict[str, str]:
    return {
        "chain": sweep.chain, "kind": str(sweep.kind), "asset": sweep.asset,
        "units": str(sweep.units), "to": sweep.to_address, "txid": sweep.txid,
        "inputs": str(len(sweep.inputs)), "from": ",".join(sweep.source_addresses)[:500],
        "batch": sweep.batch,
    }
