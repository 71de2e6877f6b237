"""Reconciliation: the ledger's view of the node's addresses against the chain's, per asset.

:meth:`Reconciler.reconcile` compares one chain at its settled height (the rules are in
:mod:`dpgnode.domain.chains.reconcile`). It only reads the ledger; what it writes is the
alert: a ``reconciliation_mismatch`` incident (kept with the chain's incidents, it never
pauses the watcher) and a ``chain.reconciliation_mismatch`` outbox event naming the
addresses and amounts, in one writer command. The same mismatch seen again is not announced
again; a different one closes the old incident and opens a new one; a run that matches
closes the open incident (``chain.reconciliation_resolved``). The ledger is never adjusted.

Automatic runs: :meth:`after_poll` (a :class:`~.monitor.ChainMonitor` listener) marks a chain
due when a poll applied or undid blocks, and :meth:`run_due` (the node's reconcile worker)
runs the due chains, off the watchers' threads, so a slow UTXO scan never delays following
the chain. They cover every address that ever received a payment, plus those the node's own
transactions touched: reading every issued address each block (a million, most never used)
would cost far more than it could find, since an address nobody paid holds nothing the
ledger could disagree with; an operator who suspects otherwise rescans
(``dpg chain rescan``), which turns such payments into payments, then reconciles.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from dpgnode.domain.chains.cursor import Incident, IncidentKind
from dpgnode.domain.chains.payments import ConfirmationPolicy, PaymentStatus
from dpgnode.domain.chains.reconcile import (
    Difference,
    Holding,
    ReconcileState,
    Reconciliation,
    compare,
    fingerprint,
    ledger_view,
    settled_height,
)
from dpgnode.domain.events import DomainEvent, JsonValue
from dpgnode.errors import DpgError, NotFoundError
from dpgnode.ports.chain_watch import ChainStore
from dpgnode.ports.chains import ChainBalances, ChainClient
from dpgnode.ports.clock import Clock
from dpgnode.ports.reconcile import LedgerHoldings, OwnMovements, ReconcileIncidents
from dpgnode.ports.uow import Tx, Writer
from dpgnode.services.chains.redaction import redact
from dpgnode.services.chains.watcher import PollReport

MISMATCH_EVENT = "chain.reconciliation_mismatch"
RESOLVED_EVENT = "chain.reconciliation_resolved"
_LISTED = 100
"""Differences named in an event or incident (the count says how many there were)."""
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileTarget:
    """One chain to reconcile: its policy, its reader, and what reads its balances."""

    policy: ConfirmationPolicy
    client: ChainClient
    balances: ChainBalances | None = None
    family: str = ""
    """``bitcoin`` or ``evm``: which key accounts' addresses the chain carries."""
    network: str = ""
    """Bitcoin network of those accounts (``regtest``); unused for EVM."""
    native_asset: str = ""
    """The chain's own coin: an address's view always shows it, paid or not."""


@dataclass(frozen=True, slots=True)
class AddressHolding:
    """What one address holds of one asset, as the ledger and the chain see it."""

    chain: str
    asset: str
    ledger: int
    """Live ledger credits plus the settled movements of the node's own transactions."""
    pending: int
    """Payments seen but not credited yet (unconfirmed or confirming)."""
    on_chain: int | None
    """At ``settled_height``; ``None`` when the chain could not be read (see ``error``)."""
    settled_height: int | None
    unsettled: bool = False
    """An own transaction or a payment is on its way: the two views may differ for now."""
    error: str = ""


class Reconciler:
    """Runs reconciliations and records their alerts (see the module docstring)."""

    def __init__(
        self, targets: Mapping[str, ReconcileTarget], store: ChainStore,
        holdings: LedgerHoldings, movements: OwnMovements, incidents: ReconcileIncidents,
        writer: Writer, clock: Clock,
    ) -> None:
        self._targets = dict(targets)
        self._store = store
        self._holdings = holdings
        self._movements = movements
        self._incidents = incidents
        self._writer = writer
        self._clock = clock
        self._due: set[str] = set()
        self._last: dict[str, Reconciliation] = {}
        self._lock = threading.Lock()
        self._running: dict[str, threading.Lock] = {name: threading.Lock() for name in targets}

    @property
    def chains(self) -> list[str]:
        """The chains this reconciler knows, by name."""
        return sorted(self._targets)

    # -- scheduling ----------------------------------------------------------------------

    def after_poll(self, report: PollReport) -> None:
        """Monitor listener: a poll that applied or undid blocks makes the chain due."""
        if report.applied or report.reorg_depth:
            self.request(report.chain)

    def request(self, chain: str) -> None:
        """Reconcile ``chain`` at the next :meth:`run_due`."""
        if chain in self._targets:
            with self._lock:
                self._due.add(chain)

    def run_due(self) -> list[Reconciliation]:
        """Reconcile every due chain once; errors are recorded as ``failed`` runs."""
        with self._lock:
            due, self._due = sorted(self._due), set()
        done: list[Reconciliation] = []
        for chain in due:
            try:
                done.append(self.reconcile(chain))
            except DpgError as exc:
                failed = Reconciliation(chain, ReconcileState.FAILED, self._clock.now(),
                                        reason=redact(f"{exc.code}: {exc.message}"))
                self._remember(failed)
                log.warning("reconciliation failed", chain=chain, error=exc.code)
                done.append(failed)
        return done

    def last(self, chain: str) -> Reconciliation | None:
        """The latest run on ``chain`` in this process, if any."""
        with self._lock:
            return self._last.get(chain)

    def targets(self) -> Mapping[str, ReconcileTarget]:
        """The chains, by name, with what reads them."""
        return dict(self._targets)

    # -- one address (the API's balance view) ---------------------------------------------

    def address_view(self, chain: str, address: str) -> list[AddressHolding]:
        """Ledger and chain view of every asset ``address`` received on ``chain``.

        Reads only: nothing is recorded. A chain that cannot be read gives ``on_chain=None``
        with the (redacted by the caller) reason, never an error: the ledger view stands.
        """
        target = self._targets.get(chain)
        if target is None:
            raise NotFoundError(f"the node does not follow a chain named {chain[:40]!r}",
                                details={"field": "chain"})
        cursor = self._store.cursor(chain)
        settled = None
        if cursor is not None:
            finalized = target.client.finalized_height() if target.policy.finalized else None
            settled = settled_height(target.policy, cursor.height, finalized)
        mine = [m for m in self._movements.movements(chain) if m.address == address]
        limit = settled if settled is not None else -1  # nothing settled: all is on its way
        view = ledger_view(
            self._holdings.credits(chain, address=address), mine, limit,
            [h for h in self._holdings.confirming(chain, limit) if h[1] == address],
        )
        pending: dict[str, int] = {}
        for payment in self._store.payments(chain, address=address, limit=1000):
            if payment.status in (PaymentStatus.PENDING, PaymentStatus.CONFIRMING):
                pending[payment.asset] = pending.get(payment.asset, 0) + payment.units
        assets = sorted({a for a, _ in self._holdings.holdings(chain, address=address)}
                        | {a for a, _ in view.balances} | {a for a, _ in view.unsettled}
                        | ({target.native_asset} if target.native_asset else set()))
        found: list[AddressHolding] = []
        for asset in assets:
            on_chain, error = self._read_one(target, asset, address, settled)
            found.append(AddressHolding(
                chain, asset, view.balances.get((asset, address), 0), pending.get(asset, 0),
                on_chain, settled, (asset, address) in view.unsettled, error,
            ))
        return found

    @staticmethod
    def _read_one(
        target: ReconcileTarget, asset: str, address: str, settled: int | None
    ) -> tuple[int | None, str]:
        if target.balances is None:
            return None, "no balance reader is configured for this chain"
        try:
            held = target.balances.balances(asset, [address], at_height=settled)
        except DpgError as exc:
            return None, redact(f"{exc.code}: {exc.message}")
        return held.get(address, 0), ""

    # -- one run -------------------------------------------------------------------------

    def reconcile(self, chain: str, *, record: bool = True) -> Reconciliation:
        """Compare ``chain``'s ledger and chain views; alert on a difference (``record``).

        Raises:
            NotFoundError: the node does not follow ``chain``.
            UnavailableError: the chain's node could not be read (nothing was recorded).
        """
        target = self._targets.get(chain)
        if target is None:
            raise NotFoundError(f"the node does not follow a chain named {chain[:40]!r}",
                                details={"field": "chain"})
        with self._running[chain]:
            result = self._compare(chain, target)
            if record and result.state in (ReconcileState.MATCHED, ReconcileState.MISMATCH):
                result = replace(result, incident_id=self._record(result))
        self._remember(result)
        return result

    def _compare(self, chain: str, target: ReconcileTarget) -> Reconciliation:
        now = self._clock.now()
        cursor = self._store.cursor(chain)
        if cursor is None:
            return self._skipped(chain, now, "the watcher has not processed a block yet")
        if cursor.is_paused:
            return self._skipped(chain, now, f"the chain is paused: {cursor.paused}")
        if target.balances is None:
            return self._skipped(chain, now, "no balance reader is configured for this chain")
        finalized = target.client.finalized_height() if target.policy.finalized else None
        settled = settled_height(target.policy, cursor.height, finalized)
        if settled is None:
            return self._skipped(chain, now, "no block has reached the confirmation policy")
        remembered = self._store.blocks(chain, settled - 1).get(settled)
        if not self._same_block(target.client, settled, remembered):
            return self._moved(chain, now, settled)
        view = ledger_view(
            self._holdings.credits(chain), self._movements.movements(chain), settled,
            self._holdings.confirming(chain, settled),
        )
        keys = {*self._holdings.holdings(chain), *view.balances, *view.unsettled}
        held = self._chain_view(target.balances, keys - view.unsettled, settled)
        if not self._same_block(target.client, settled, remembered):
            return self._moved(chain, now, settled)  # a reorg while reading: try next block
        differences, totals = compare(keys, view, held)
        state = ReconcileState.MISMATCH if differences else ReconcileState.MATCHED
        return Reconciliation(chain, state, now, settled, differences=tuple(differences),
                              totals=tuple(totals), unsettled=tuple(sorted(view.unsettled)))

    @staticmethod
    def _same_block(client: ChainClient, height: int, remembered: str | None) -> bool:
        """Whether the node still has the block the watcher processed at ``height``."""
        return remembered is None or client.block_hash(height) == remembered

    @staticmethod
    def _chain_view(
        balances: ChainBalances, keys: set[Holding], settled: int
    ) -> dict[Holding, int]:
        by_asset: dict[str, list[str]] = {}
        for asset, address in keys:
            by_asset.setdefault(asset, []).append(address)
        held: dict[Holding, int] = {}
        for asset, addresses in sorted(by_asset.items()):
            found = balances.balances(asset, sorted(addresses), at_height=settled)
            held.update({(asset, a): found.get(a, 0) for a in addresses})
        return held

    def _skipped(self, chain: str, now: datetime, reason: str) -> Reconciliation:
        return Reconciliation(chain, ReconcileState.SKIPPED, now, reason=reason)

    def _moved(self, chain: str, now: datetime, settled: int) -> Reconciliation:
        return Reconciliation(
            chain, ReconcileState.SKIPPED, now, settled,
            reason=f"the node's chain changed at height {settled}: the watcher follows it "
                   "first; the next block reconciles again",
        )

    def _remember(self, result: Reconciliation) -> None:
        with self._lock:
            self._last[result.chain] = result

    # -- the alert -----------------------------------------------------------------------

    def _record(self, result: Reconciliation) -> int | None:
        now = self._clock.now()
        kind = IncidentKind.RECONCILIATION_MISMATCH
        if result.matched and not any(
            i.kind is kind for i in self._store.incidents(result.chain)
        ):
            return None  # nothing to close: no write for the common case
        digest = fingerprint(result.differences) if result.differences else ""

        def command(tx: Tx) -> int | None:
            open_now = self._incidents.open_incidents_in(tx, result.chain, kind)
            if result.matched:
                for incident in open_now:
                    self._close(tx, incident, now, result)
                return None
            for incident in open_now:
                if incident.details.get("fingerprint") == digest:
                    return incident.id  # announced already
            for incident in open_now:
                self._close(tx, incident, now, result)
            incident = Incident(result.chain, kind, _message(result), {
                "settledHeight": str(result.settled_height), "fingerprint": digest,
                "count": str(len(result.differences)),
                "differences": json.dumps(_listed(result.differences), sort_keys=True),
            }, now)
            incident_id = self._store.add_incident(tx, incident)
            tx.emit(DomainEvent(MISMATCH_EVENT, f"chain:{result.chain}",
                                mismatch_payload(result, incident_id)))
            return incident_id

        return self._writer.run(command)

    def _close(self, tx: Tx, incident: Incident, now: datetime, result: Reconciliation) -> None:
        if incident.id is None or not self._incidents.resolve_incident(tx, incident.id, now):
            return
        tx.emit(DomainEvent(RESOLVED_EVENT, f"chain:{result.chain}", {
            "chain": result.chain, "incidentId": incident.id,
            "settledHeight": result.settled_height, "matched": result.matched,
        }))


def _listed(differences: Sequence[Difference]) -> list[dict[str, str]]:
    return [
        {"asset": d.asset, "address": d.address, "kind": str(d.kind), "ledger": str(d.ledger),
         "chain": str(d.chain), "difference": str(d.delta), "detail": d.detail}
        for d in differences[:_LISTED]
    ]


def _message(result: Reconciliation) -> str:
    first = result.differences[0]
    more = len(result.differences) - 1
    return (
        f"{result.chain}: the ledger and the chain disagree at height {result.settled_height} "
        f"on {first.asset} at {first.address} (ledger {first.ledger}, chain {first.chain} "
        f"base units){f' and {more} more' if more else ''}; the ledger was not adjusted"
    )


def mismatch_payload(result: Reconciliation, incident_id: int) -> dict[str, JsonValue]:
    """The ``chain.reconciliation_mismatch`` event (amounts: decimal strings of base units)."""
    listed: list[JsonValue] = [dict(row) for row in _listed(result.differences)]
    totals: list[JsonValue] = [
        {"asset": t.asset, "ledger": str(t.ledger), "chain": str(t.chain),
         "difference": str(t.delta), "addresses": t.addresses, "unsettled": t.unsettled}
        for t in result.totals
    ]
    return {
        "chain": result.chain, "incidentId": incident_id,
        "settledHeight": result.settled_height, "count": len(result.differences),
        "truncated": len(result.differences) > _LISTED, "differences": listed,
        "totals": totals,
    }
