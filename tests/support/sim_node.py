"""A real node (SQLite in a temp directory) following the in-process simulated chain.

Used by the reconciliation, blockchain API and ``dpg chain`` tests: the node is built by
``build_node`` exactly as production builds it, with the ``bitcoin`` chain replaced by a
:class:`SimulatedChain` (and its balances read by ``SimulatedChainBalances``). Addresses come
from a watch-only BIP84 account (the published test vector's key: not a secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpgnode.adapters.chains.balances import SimulatedChainBalances
from dpgnode.adapters.chains.clients import FollowedChain
from dpgnode.adapters.chains.simulated import SimulatedChain
from dpgnode.adapters.chains.simulated_client import SimulatedChainClient
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.custody.networks import Network
from dpgnode.node import Node, build_node
from dpgnode.services.chains.monitor import ChainHealth
from dpgnode.services.chains.watcher import WatchTarget
from dpgnode.settings import Settings, load_settings

BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDK"
    "f31mGDtKsAYz2oz2AGutZYs"
)
CHAIN = "bitcoin"


def sim_chains(
    chain: SimulatedChain, *, confirmations: int = 1, reorg_limit: int = 6,
    network: str = "mainnet",
) -> dict[str, FollowedChain]:
    """The ``chains=`` argument of ``build_node`` for one simulated Bitcoin chain."""
    target = WatchTarget(CHAIN, "bitcoin", network,
                         ConfirmationPolicy(confirmations, reorg_limit))
    return {CHAIN: FollowedChain(SimulatedChainClient(chain), target, 0.05,
                                 balances=SimulatedChainBalances(chain))}


def sim_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a node whose custody network matches the test vector (mainnet)."""
    custody = {"network": "mainnet", **overrides.pop("custody", {})}
    return load_settings(data_dir, overrides={"custody": custody, **overrides})


def watch_only_account(node: Node) -> str:
    """The id of the node's watch-only BIP84 account, added if missing."""
    for keychain in node.custody.keychains.keychains():
        for account in keychain.accounts:
            if account.network is Network.MAINNET:
                return account.id
    view = node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.MAINNET)
    return view.accounts[0].id


@dataclass
class SimNode:
    """A node over a simulated chain, and the helpers the tests share."""

    node: Node
    chain: SimulatedChain
    account_id: str

    def address(self, owner: str = "store:st_1", reference: str = "") -> str:
        issued = self.node.custody.addresses.issue(self.account_id, owner=owner,
                                                   reference=reference)
        return issued.address.address

    def poll(self) -> ChainHealth:
        """One watcher poll, through the monitor (so its listeners run, as in production)."""
        health = self.node.chains.monitor.poll(CHAIN, force=True)
        assert not health.error, health.error
        return health


def open_sim_node(
    data_dir: Path, chain: SimulatedChain, *, confirmations: int = 1, reorg_limit: int = 6,
    upgrade: bool = True, network: str = "mainnet", **settings: Any,
) -> SimNode:
    """A migrated node following ``chain`` (``settings``: more overrides); close ``.node``.

    ``network``: the Bitcoin network whose key accounts the watcher follows.
    """
    node = build_node(sim_settings(data_dir, **settings), clock=FixedClock(), upgrade=upgrade,
                      chains=sim_chains(chain, confirmations=confirmations,
                                        reorg_limit=reorg_limit, network=network))
    return SimNode(node, chain, watch_only_account(node))
