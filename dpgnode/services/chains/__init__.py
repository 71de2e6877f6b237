"""Chain watchers: following chains, crediting payments, reconciling, sweeping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dpgnode.ports.chain_watch import ChainStore
from dpgnode.ports.chains import ChainClient
from dpgnode.services.chains.monitor import ChainMonitor


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

    def client(self, chain: str) -> ChainClient | None:
        """The reader of ``chain``, if the node follows it."""
        return self.clients.get(chain)
