"""Which chains a node follows, and the client that reads each (from ``[chains]``).

A chain is followed when its node is configured: ``chains.bitcoin.rpc_url`` for Bitcoin, a
``[chains.evm.<name>]`` table for an EVM chain. Building connects to nothing; the first poll
does, so a node whose chain is down still starts and serves its API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dpgnode.adapters.chains.bitcoin_client import BitcoinChainClient
from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.adapters.chains.connections import BITCOIN_NETWORK
from dpgnode.adapters.chains.evm_client import EvmChainClient
from dpgnode.adapters.chains.evm_registry import evm_chain_specs
from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.money import AssetKind, AssetRegistry
from dpgnode.errors import ConfigError
from dpgnode.ports.chains import ChainBalances, ChainClient
from dpgnode.services.chains.watcher import WatchTarget
from dpgnode.settings import Settings


@dataclass(frozen=True, slots=True)
class FollowedChain:
    """One chain to follow: its reader, its rules, how often to poll it."""

    client: ChainClient
    target: WatchTarget
    poll_interval: float
    balances: ChainBalances | None = None
    """What reconciliation reads the chain's balances with; ``None``: the ``[chains]`` node
    of the same name (``dpgnode.adapters.chains.readers``)."""
    wait_for_news: Callable[[float], bool] | None = None
    """Blocks up to the given seconds for a push notification (ZMQ); ``None``: poll only."""
    closers: tuple[Callable[[], None], ...] = ()
    """What to close when the node stops (notification sockets, then RPC connections)."""

    def close(self) -> None:
        """Close the client's notification sockets and connections."""
        for close in self.closers:
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
    """The chains ``settings`` configure, each with a client (nothing is contacted).

    Raises:
        ConfigError: a malformed ``[chains]`` setting (the message names it).
    """
    chains: dict[str, FollowedChain] = {}
    btc = settings.chains.bitcoin
    if btc.rpc_url:
        target = bitcoin_target(settings, network)
        rpc = BitcoinRpc.connect(
            btc.rpc_url, network=Network(target.network), user=btc.rpc_user,
            password=btc.rpc_password, cookie_file=btc.cookie_file,
            timeout=btc.timeout_seconds, scan_timeout=btc.scan_timeout_seconds,
        )
        client = BitcoinChainClient(rpc, asset=_bitcoin_asset(assets), zmq_url=btc.zmq_url)
        chains["bitcoin"] = FollowedChain(
            client, target, btc.poll_interval_seconds,
            wait_for_news=client.wait_for_news if btc.zmq_url else None,
            closers=(client.close, rpc.close),
        )
    for name, spec in evm_chain_specs(settings.chains, assets).items():
        evm = EvmChainClient.connect(spec)
        chains[name] = FollowedChain(
            evm, WatchTarget(name, "evm", "", spec.policy), spec.poll_interval_seconds,
            closers=(evm.close,),
        )
    return chains


def _bitcoin_asset(assets: AssetRegistry) -> str:
    codes = [code for code, asset in assets.items()
             if asset.network == BITCOIN_NETWORK and asset.kind is AssetKind.CRYPTO]
    if len(codes) != 1:
        raise ConfigError(f"the asset registry needs exactly one Bitcoin asset, found {codes}")
    return codes[0]
