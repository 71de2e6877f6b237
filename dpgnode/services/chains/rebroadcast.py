"""Re-sending the node's own broadcast transactions that no block has mined yet.

Mempools forget transactions (a node restarts, a low fee is evicted, a peer never relayed
it); the chain watcher would then wait forever. Every ``interval``, each ``broadcast`` payout
and sweep of the chain whose transaction is not mined, and was last sent longer ago than
that, is handed to the chain again: the same signed bytes through the same
:class:`~dpgnode.ports.chains.TransactionBroadcaster` the operator's broadcast used, so it is
idempotent (a node that has it answers ``known``) and can never pay twice.

A refusal changes nothing but the time of the attempt: a transaction whose inputs (or
nonce) another transaction took is refused here, and the watcher fails it once that
conflict is final. An unreachable node ends the round (the next one tries again).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dpgnode.domain.chains.sweeps import SweepStatus
from dpgnode.domain.custody.payout import PayoutStatus
from dpgnode.errors import ConfigError, UnavailableError
from dpgnode.ports.chains import TransactionBroadcaster
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import PayoutStore
from dpgnode.ports.outgoing import OutgoingStore
from dpgnode.ports.uow import Tx, Writer
from dpgnode.services.chains.outgoing import OutgoingChain, OutgoingTracker

_BATCH = 100


@dataclass(frozen=True, slots=True)
class ResendReport:
    """What one round re-sent."""

    sent: int = 0
    """Transactions the node accepted (or already had)."""
    refused: tuple[str, ...] = ()
    """``txid: reason`` of each refusal."""
    error: str = ""
    """Why the round stopped early (node unreachable, not configured)."""


class Rebroadcaster:
    """Re-sends one chain's unmined own transactions (see the module docstring)."""

    def __init__(
        self, target: OutgoingChain, store: OutgoingStore, payouts: PayoutStore,
        writer: Writer, clock: Clock, broadcaster: TransactionBroadcaster,
        interval: timedelta,
    ) -> None:
        if interval <= timedelta(0):
            raise ConfigError("the rebroadcast interval must be positive")
        self.target = target
        self._store = store
        self._payouts = payouts
        self._writer = writer
        self._clock = clock
        self._broadcaster = broadcaster
        self.interval = interval

    def resend_due(self) -> ResendReport:
        """Re-send every transaction due; what happened."""
        before = self._clock.now() - self.interval
        due = [("payout", p.id, p.asset, p.raw_tx or "", p.txid or "")
               for p in self._store.payouts_to_resend(self.target.assets, before, _BATCH)]
        due += [("sweep", s.id, s.asset, s.raw_tx, s.txid)
                for s in self._store.sweeps_to_resend(self.target.chain, before, _BATCH)]
        sent = 0
        refused: list[str] = []
        for kind, subject, asset, raw_tx, txid in due:
            try:
                result = self._broadcaster.broadcast(asset, raw_tx, txid)
            except (UnavailableError, ConfigError) as exc:
                return ResendReport(sent, tuple(refused), f"{exc.code}: {exc.message}"[:300])
            self._sent(kind, subject, self._clock.now())
            if result.accepted:
                sent += 1
            else:
                refused.append(f"{txid}: {result.reason}"[:300])
        return ResendReport(sent, tuple(refused))

    def _sent(self, kind: str, subject: str, at: datetime) -> None:
        def command(tx: Tx) -> None:
            if kind == "payout":
                payout = self._payouts.payout_in(tx, subject)
                if payout is not None and payout.status is PayoutStatus.BROADCAST:
                    self._payouts.save_payout(tx, replace(payout, sent_at=at))
                return
            sweep = self._store.sweep_in(tx, subject)
            if sweep is not None and sweep.status is SweepStatus.BROADCAST:
                self._store.save_sweep(tx, replace(sweep, sent_at=at))

        self._writer.run(command)


@dataclass
class OutgoingWork:
    """What the node's worker does for one chain's own transactions after its polls."""

    tracker: OutgoingTracker
    rebroadcaster: Rebroadcaster | None = None

    def run_once(self) -> None:
        """Read missing fees and settle what is due, then re-send what is due."""
        self.tracker.refresh()
        if self.rebroadcaster is not None:
            self.rebroadcaster.resend_due()
