"""How each followed chain stands: heights, lag, state, incidents, endpoints, reconciliation.

Two readers of the same facts:

- the API (``server/info``) reads only what is in memory and in the database
  (``probe=False``): an unreachable chain node must never make the API wait;
- ``dpg chain status`` runs in its own process, where no watcher has polled, so it asks the
  chain nodes themselves (``probe=True``): the tip, the mempool size and the endpoints'
  health where the client can tell them.

Error texts come from chain nodes and their clients: they pass through
:func:`~dpgnode.services.chains.redaction.redact` before they leave the node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dpgnode.domain.chains.cursor import Incident
from dpgnode.domain.chains.reconcile import Reconciliation
from dpgnode.errors import DpgError
from dpgnode.ports.chain_probe import CountsMempool, ReportsEndpoints
from dpgnode.ports.chain_watch import ChainStore
from dpgnode.ports.chains import ChainClient
from dpgnode.services.chains.monitor import ChainHealth, ChainMonitor
from dpgnode.services.chains.reconcile import Reconciler
from dpgnode.services.chains.redaction import redact


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """One RPC endpoint of a chain."""

    name: str
    state: str
    head: int | None
    problem: str


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """One chain as ``server/info`` and ``dpg chain status`` show it."""

    chain: str
    state: str
    """``synced``, ``syncing``, ``paused``, ``failing`` or ``starting``."""
    node_height: int | None
    our_height: int | None
    mempool_size: int | None
    paused: str
    error: str
    """Why the last poll (or the probe) failed, redacted; empty when it succeeded."""
    failures: int
    last_poll_at: datetime | None
    last_success_at: datetime | None
    incidents: tuple[Incident, ...] = ()
    """Open incidents: pauses and reconciliation mismatches."""
    endpoints: tuple[EndpointStatus, ...] = ()
    reconciliation: Reconciliation | None = None

    @property
    def lag(self) -> int | None:
        """Blocks between the node's tip and the watcher's cursor, when both are known."""
        if self.node_height is None or self.our_height is None:
            return None
        return max(0, self.node_height - self.our_height)


class ChainStatusReader:
    """Assembles :class:`ChainStatus` per chain (see the module docstring)."""

    def __init__(
        self, monitor: ChainMonitor, store: ChainStore, clients: Mapping[str, ChainClient],
        reconciler: Reconciler | None = None,
    ) -> None:
        self._monitor = monitor
        self._store = store
        self._clients = clients
        self._reconciler = reconciler

    def status(self, *, probe: bool = False) -> list[ChainStatus]:
        """Every followed chain, by name; ``probe`` asks the chain nodes (slow when down)."""
        return [self._one(health, probe) for health in self._monitor.health()]

    def _one(self, health: ChainHealth, probe: bool) -> ChainStatus:
        chain = health.chain
        cursor = self._store.cursor(chain)
        if cursor is not None:
            health = replace(health, our_height=cursor.height, paused=cursor.paused)
        client = self._clients.get(chain)
        mempool = health.mempool_size
        endpoints: tuple[EndpointStatus, ...] = ()
        if client is not None and isinstance(client, ReportsEndpoints):
            endpoints = tuple(EndpointStatus(e.name, str(e.state), e.head, redact(e.problem))
                              for e in client.endpoint_health())
        if probe and client is not None:
            try:
                health = replace(health, node_height=client.tip().height, error="")
                if isinstance(client, CountsMempool):
                    mempool = client.mempool_size()
            except DpgError as exc:
                health = replace(health, error=f"{exc.code}: {exc.message}")
        return ChainStatus(
            chain=chain, state=health.state, node_height=health.node_height,
            our_height=health.our_height, mempool_size=mempool, paused=health.paused,
            error=redact(health.error), failures=health.failures,
            last_poll_at=health.last_poll_at, last_success_at=health.last_success_at,
            incidents=tuple(self._store.incidents(chain)), endpoints=endpoints,
            reconciliation=self._reconciler.last(chain) if self._reconciler else None,
        )


def all_synced(statuses: Sequence[ChainStatus]) -> bool:
    """Whether every chain is synced (no chains: nothing to wait for)."""
    return all(s.state == "synced" for s in statuses)
