"""The configured chain nodes (``[chains]`` settings), and which one serves an asset.

Built once per process from settings; nothing connects until a payout needs a chain, so a
node without ``[chains]`` starts and receives normally. An asset with ``network =
"bitcoin"`` uses ``chains.bitcoin``; any other on-chain asset uses ``chains.evm.<network>``,
merged with the chain registry (``config/chains.toml``, :mod:`.evm_registry`) and served by
all of its endpoints with failover (:mod:`.evm_endpoints`). A missing node, token contract or
malformed setting is a ``ConfigError`` that names the setting to add or fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.adapters.chains.evm_client import EvmChainClient
from dpgnode.adapters.chains.evm_registry import EvmChainSpec, evm_chain_specs
from dpgnode.adapters.chains.evm_rpc import EvmRpc
from dpgnode.domain.custody.btc_spend import FeeRate
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.money import Asset, AssetKind, AssetRegistry
from dpgnode.errors import ConfigError, DpgError
from dpgnode.settings import BitcoinChainSettings, ChainsSettings

BITCOIN_NETWORK = "bitcoin"
"""``Asset.network`` of assets that move on the Bitcoin chain."""


@dataclass(frozen=True, slots=True)
class BitcoinChain:
    """The Bitcoin node and the fee bounds payouts use."""

    rpc: BitcoinRpc
    fee_target_blocks: int
    min_fee_rate: FeeRate
    max_fee_rate: FeeRate


@dataclass(frozen=True, slots=True)
class EvmChain:
    """One EVM chain's node, its token contracts and gas and fee bounds."""

    rpc: EvmRpc
    tokens: Mapping[str, str]
    """Asset code -> ERC-20 contract address (EIP-55)."""
    gas_margin_percent: int
    max_fee_per_gas: int | None
    client: EvmChainClient | None = None
    """The chain as the watcher reads it (over the same endpoints as ``rpc``)."""
    spec: EvmChainSpec | None = None


class ChainConnections:
    """The chain nodes of this process, by asset."""

    def __init__(
        self, assets: AssetRegistry, bitcoin: BitcoinChain | None,
        evm: Mapping[str, EvmChain],
    ) -> None:
        self._assets = assets
        self._bitcoin = bitcoin
        self._evm = dict(evm)

    @classmethod
    def from_settings(
        cls, settings: ChainsSettings, assets: AssetRegistry, default_network: Network
    ) -> ChainConnections:
        """Clients for every configured node (none is contacted yet).

        Raises:
            ConfigError: a malformed fee bound, token contract, URL, or a token of an
                asset that is not a token of that chain; the message names the setting.
        """
        bitcoin = None
        if settings.bitcoin.rpc_url:
            bitcoin = _bitcoin(settings.bitcoin, default_network)
        evm = {name: _evm(spec) for name, spec in evm_chain_specs(settings, assets).items()}
        return cls(assets, bitcoin, evm)

    def close(self) -> None:
        """Close every client's connections."""
        if self._bitcoin is not None:
            self._bitcoin.rpc.close()
        for chain in self._evm.values():
            chain.rpc.close()  # the client shares these endpoints

    def evm_clients(self) -> dict[str, EvmChainClient]:
        """The watcher's client of every configured EVM chain, by name."""
        return {name: chain.client for name, chain in self._evm.items()
                if chain.client is not None}

    def asset(self, code: str) -> Asset:
        """The asset, known to the registry and payable on a chain."""
        asset = self._assets.require(code)
        if asset.kind is AssetKind.FIAT or not asset.network:
            raise ConfigError(f"{code} does not move on a chain")
        return asset

    def assets_on(self, network: str) -> list[str]:
        """Codes of the registry's assets that move on ``network``."""
        return [code for code, asset in self._assets.items() if asset.network == network]

    def bitcoin(self) -> BitcoinChain:
        """The Bitcoin node (``ConfigError`` naming the setting when there is none)."""
        if self._bitcoin is None:
            raise ConfigError("no Bitcoin node configured: set chains.bitcoin.rpc_url",
                              details={"field": "chains.bitcoin.rpc_url"})
        return self._bitcoin

    def evm(self, network: str) -> EvmChain:
        """The node of EVM chain ``network`` (``ConfigError`` naming the setting if none)."""
        chain = self._evm.get(network)
        if chain is None:
            raise ConfigError(
                f"no EVM node configured for {network}: set chains.evm.{network}.rpc_url "
                "and chain_id", details={"field": f"chains.evm.{network}"},
            )
        return chain

    def token_contract(self, asset: Asset) -> str:
        """The ERC-20 contract of a token asset (``ConfigError`` when not configured)."""
        chain = self.evm(asset.network)
        contract = chain.tokens.get(asset.code)
        if contract is None:
            raise ConfigError(
                f"no contract configured for {asset.code}: set "
                f"chains.evm.{asset.network}.tokens.{asset.code}",
                details={"field": f"chains.evm.{asset.network}.tokens"},
            )
        return contract

    def configured(self, code: str) -> bool:
        """Whether a node (and, for a token, its contract) is configured for ``code``."""
        asset = self._assets.get(code)
        if asset is None or asset.kind is AssetKind.FIAT or not asset.network:
            return False
        if asset.network == BITCOIN_NETWORK:
            return self._bitcoin is not None
        chain = self._evm.get(asset.network)
        return chain is not None and (
            asset.kind is not AssetKind.TOKEN or asset.code in chain.tokens)

    def check(self, code: str) -> str:
        """Contact the node serving ``code`` and check its chain; a line saying what it is.

        Raises:
            ConfigError: nothing configured for the asset, or the node is on another chain.
            UnavailableError: the node cannot be reached.
        """
        asset = self.asset(code)
        if asset.network == BITCOIN_NETWORK:
            btc = self.bitcoin()
            height = btc.rpc.check_chain()
            return f"{btc.rpc.name}: {btc.rpc.network}, height {height}"
        if asset.kind is AssetKind.TOKEN:
            self.token_contract(asset)
        chain = self.evm(asset.network)
        height = chain.rpc.check_chain()
        return f"{chain.rpc.name}: chain id {chain.rpc.chain_id}, block {height}"


def _fee_rate(text: str, name: str) -> FeeRate:
    try:
        return FeeRate.from_sat_per_vb(text)
    except DpgError as exc:
        raise ConfigError(f"chains.bitcoin.{name}: {exc.message}") from exc


def _bitcoin(settings: BitcoinChainSettings, default_network: Network) -> BitcoinChain:
    floor = _fee_rate(settings.min_fee_rate, "min_fee_rate")
    ceiling = _fee_rate(settings.max_fee_rate, "max_fee_rate")
    if ceiling < floor:
        raise ConfigError("chains.bitcoin.max_fee_rate is below min_fee_rate")
    network = Network(settings.network) if settings.network else default_network
    rpc = BitcoinRpc.connect(
        settings.rpc_url, network=network, user=settings.rpc_user,
        password=settings.rpc_password, cookie_file=settings.cookie_file,
        timeout=settings.timeout_seconds, scan_timeout=settings.scan_timeout_seconds,
    )
    return BitcoinChain(rpc, settings.fee_target_blocks, floor, ceiling)


def _evm(spec: EvmChainSpec) -> EvmChain:
    client = EvmChainClient.connect(spec)
    return EvmChain(client.rpc, spec.token_contracts(), spec.gas_margin_percent,
                    spec.max_fee_per_gas, client, spec)
