"""Fee estimates and balance readers over the ``[chains]`` nodes, connected on first use.

A node whose ``[chains]`` settings are malformed, or whose chain is down, still starts and
serves its API: nothing here is built or contacted until a request needs it, and each
failure is that request's error (``NotFoundError`` for a chain that is not configured,
``ConfigError``/``UnavailableError`` for a bad setting or an unreachable node).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from dpgnode.adapters.chains.balances import BitcoinRpcBalances, EvmRpcBalances
from dpgnode.adapters.chains.connections import BITCOIN_NETWORK, ChainConnections
from dpgnode.domain.chains.fees import FeeEstimate, FeeKind, FeeLevel
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.money import AssetKind, AssetRegistry
from dpgnode.errors import ConfigError, NotFoundError
from dpgnode.ports.chains import ChainBalances
from dpgnode.settings import ChainsSettings

_FAST_TARGET = 2
_SLOW_TARGET = 24


class ConfiguredChainReaders:
    """``FeeEstimates`` and per-chain ``ChainBalances`` over lazily built connections."""

    def __init__(self, settings: ChainsSettings, assets: AssetRegistry, network: Network) -> None:
        self._settings = settings
        self._assets = assets
        self._network = network
        self._connections: ChainConnections | None = None
        self._lock = threading.Lock()

    def _open(self) -> ChainConnections:
        with self._lock:
            if self._connections is None:
                self._connections = ChainConnections.from_settings(
                    self._settings, self._assets, self._network)
            return self._connections

    def close(self) -> None:
        """Close the connections, if any were opened."""
        with self._lock:
            if self._connections is not None:
                self._connections.close()
                self._connections = None

    def _unknown(self, chain: str) -> NotFoundError:
        return NotFoundError(f"no node is configured for a chain named {chain[:40]!r}",
                             details={"field": "chain"})

    # -- FeeEstimates ---------------------------------------------------------------------

    def estimate(self, chain: str) -> FeeEstimate:
        connections = self._open()
        try:
            if chain == BITCOIN_NETWORK:
                return self._bitcoin_fees(connections)
            evm = connections.evm(chain)
        except ConfigError as exc:
            raise self._unknown(chain) if _missing(exc, chain) else exc from exc
        levels = evm.rpc.fee_levels()
        return FeeEstimate(
            chain, FeeKind.EIP1559,
            tuple(FeeLevel(name, max_fee_per_gas=fees.max_fee_per_gas,
                           max_priority_fee_per_gas=fees.max_priority_fee_per_gas)
                  for name, fees in (("slow", levels.slow), ("normal", levels.normal),
                                     ("fast", levels.fast))),
            base_fee_per_gas=levels.base_fee_per_gas, based_on_block=levels.oldest_block,
        )

    @staticmethod
    def _bitcoin_fees(connections: ChainConnections) -> FeeEstimate:
        btc = connections.bitcoin()
        targets = (("slow", max(_SLOW_TARGET, btc.fee_target_blocks)),
                   ("normal", btc.fee_target_blocks),
                   ("fast", min(_FAST_TARGET, btc.fee_target_blocks)))
        levels = tuple(
            FeeLevel(name, target_blocks=target, sat_per_kvb=btc.rpc.fee_rate(
                target_blocks=target, floor=btc.min_fee_rate, ceiling=btc.max_fee_rate,
            ).sat_per_kvb)
            for name, target in targets
        )
        return FeeEstimate(BITCOIN_NETWORK, FeeKind.BITCOIN, levels)

    # -- ChainBalances --------------------------------------------------------------------

    def balances_for(self, chain: str) -> ChainBalances:
        """A reader of ``chain``'s balances that connects when first asked."""
        return _LazyBalances(self, chain)

    def reader(self, chain: str) -> ChainBalances:
        """``chain``'s balance reader, connecting now."""
        connections = self._open()
        try:
            if chain == BITCOIN_NETWORK:
                btc = connections.bitcoin()
                native = self._native(chain) or "BTC"
                return BitcoinRpcBalances(btc.rpc, asset=native, chain=chain)
            evm = connections.evm(chain)
        except ConfigError as exc:
            raise self._unknown(chain) if _missing(exc, chain) else exc from exc
        coin = evm.spec.native_asset if evm.spec is not None else self._native(chain)
        if coin is None:
            raise ConfigError(f"no native asset is known for chain {chain}")
        return EvmRpcBalances(evm.rpc, native_asset=coin, tokens=evm.tokens, chain=chain)

    def _native(self, chain: str) -> str | None:
        for code, asset in self._assets.items():
            if asset.network == chain and asset.kind is AssetKind.CRYPTO:
                return code
        return None


def _missing(exc: ConfigError, chain: str) -> bool:
    """Whether ``exc`` says no node is configured for ``chain`` (not a malformed one)."""
    return exc.details.get("field") in ("chains.bitcoin.rpc_url", f"chains.evm.{chain}")


class _LazyBalances:
    def __init__(self, readers: ConfiguredChainReaders, chain: str) -> None:
        self._readers = readers
        self._chain = chain
        self._reader: ChainBalances | None = None

    def balances(
        self, asset: str, addresses: Sequence[str], *, at_height: int | None = None
    ) -> Mapping[str, int]:
        if self._reader is None:
            self._reader = self._readers.reader(self._chain)
        return self._reader.balances(asset, addresses, at_height=at_height)
