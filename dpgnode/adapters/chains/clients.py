"""Which chains a node follows, and the client that reads each (from ``[chains]``).

A chain is followed when its node is configured: ``chains.bitcoin.rpc_url`` for Bitcoin, a
``[chains.evm.<name>]`` table for an EVM chain. Building connects to nothing; the first poll
does, so a node whose chain is down still starts and serves its API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.money import AssetRegistry
from dpgnode.ports.chains import ChainClient
from dpgnode.services.chains.watcher import WatchTarget
from dpgnode.settings import Settings


@dataclass(frozen=True, slots=True)
class FollowedChain:
    """One chain to follow: its reader, its rules, how often to poll it."""

    client: ChainClient
    target: WatchTarget
    poll_interval: float

    def close(self) -> None:
        """Close the client's connections, if it holds any."""
        close: Callable[[], None] | None = getattr(self.client, "close", None)
        if close is not None:
            close()


def bitcoin_target(settings: Settings, network: Network) -> WatchTarget:
    """The Bitcoin watcher's rules from ``[chains.bitcoin]``."""
    btc = settings.chains.bitcoin
    chain_network = Network(btc.network) if btc.network else network
    return WatchTarget(
        "bitcoin", "bitcoin", str(chain_network),
        ConfirmationPolicy(btc.confirmations, btc.reorg_limit),
    )


def followed_chains(
    settings: Settings, assets: AssetRegistry, network: Network
) -> dict[str, FollowedChain]:
    """The chains ``settings`` configure, each with a client (nothing is contacted)."""
    del assets
    chains: dict[str, FollowedChain] = {}
    return chains
