"""Chain watchers: following chains, crediting payments, reconciling, sweeping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dpgnode.ports.chain_watch import ChainStore
from dpgnode.ports.chains import ChainClient
from dpgnode.services.chains.blockchain import BlockchainService
from dpgnode.services.chains.monitor import ChainMonitor
from dpgnode.services.chains.rebroadcast import OutgoingWork
from dpgnode.services.chains.reconcile import Reconciler
from dpgnode.services.chains.status import ChainStatusReader


@dataclass
class ChainServices:
    """The chains one node follows, wired by ``dpgnode.node``.

    ``clients`` are the configured chains' readers (the watchers' and the API's);
    ``intervals`` the poll interval of each, in seconds.
    """

    store: ChainStore
    monitor: ChainMonitor
    clients: Mapping[str, ChainClient] = field(default_factory=dict)
    intervals: Mapping[str, float] = field(default_factory=dict)
    outgoing: Mapping[str, OutgoingWork] = field(default_factory=dict)
    """Per chain: the node's own transactions (payout confirmation, fees, rebroadcast)."""
    reconciler: Reconciler | None = None
    """Ledger against chain, per chain and asset (``dpg chain reconcile``, after blocks)."""
    status: ChainStatusReader | None = None
    """Heights, lag, state and incidents per chain (``server/info``, ``dpg chain status``)."""
    blockchain: BlockchainService | None = None
    """The use cases of ``/api/v1/blockchain``."""

    def client(self, chain: str) -> ChainClient | None:
        """The reader of ``chain``, if the node follows it."""
        return self.clients.get(chain)
