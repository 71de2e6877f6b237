"""``ChainBalances`` over real nodes and the simulator: the chain side of reconciliation.

- Bitcoin: one ``scantxoutset`` over ``addr()`` descriptors; an output counts when it was
  mined at or below the asked height (the UTXO set has no past: outputs spent since are
  gone, which is what a reconciliation must notice). The tip is read before and after the
  scan: a block arriving in between makes the heights ambiguous, so the answer is refused
  (``UnavailableError``) and the next run asks again.
- EVM: ``eth_getBalance`` and ERC-20 ``balanceOf`` at the asked block (a node that pruned
  that state answers an error, which becomes ``UnavailableError``).
- The simulator: the same rule as Bitcoin, computed from its best chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.adapters.chains.evm_rpc import EvmRpc
from dpgnode.adapters.chains.simulated import SimulatedChain
from dpgnode.domain.custody.addresses import parse_address
from dpgnode.errors import UnavailableError, ValidationError

LATEST = "latest"


def _require(asset: str, carried: Sequence[str], chain: str) -> None:
    if asset not in carried:
        raise ValidationError(f"{chain} does not carry {asset[:32]}", field="asset")


class BitcoinRpcBalances:
    """Confirmed unspent outputs per address, from the Bitcoin node's UTXO set."""

    def __init__(self, rpc: BitcoinRpc, *, asset: str = "BTC", chain: str = "bitcoin") -> None:
        self._rpc = rpc
        self._asset = asset
        self._chain = chain

    def balances(
        self, asset: str, addresses: Sequence[str], *, at_height: int | None = None
    ) -> Mapping[str, int]:
        _require(asset, [self._asset], self._chain)
        if not addresses:
            return {}
        scripts = {parse_address(a, self._rpc.network).script_pubkey: a for a in addresses}
        before, _ = self._rpc.best_block()
        outputs = self._rpc.scan(sorted(addresses))
        after, _ = self._rpc.best_block()
        if before != after:
            raise UnavailableError(f"{self._chain}: a block arrived during the UTXO scan",
                                   retry_after=5)
        limit = after if at_height is None else at_height
        held: dict[str, int] = {}
        for output in outputs:
            mined = after - output.confirmations + 1
            address = scripts.get(output.script_pubkey)
            if address is not None and mined <= limit:
                held[address] = held.get(address, 0) + output.value_sats
        return held


class EvmRpcBalances:
    """Native and ERC-20 balances per address at a block, from an EVM node."""

    def __init__(
        self, rpc: EvmRpc, *, native_asset: str, tokens: Mapping[str, str], chain: str
    ) -> None:
        self._rpc = rpc
        self._native = native_asset
        self._tokens = dict(tokens)
        self._chain = chain

    def balances(
        self, asset: str, addresses: Sequence[str], *, at_height: int | None = None
    ) -> Mapping[str, int]:
        _require(asset, [self._native, *self._tokens], self._chain)
        block = LATEST if at_height is None else hex(at_height)
        contract = self._tokens.get(asset)
        held: dict[str, int] = {}
        for address in addresses:
            units = (self._rpc.balance(address, block) if contract is None
                     else self._rpc.token_balance(contract, address, block))
            if units:
                held[address] = units
        return held


class SimulatedChainBalances:
    """The simulator's unspent outputs per address, by the Bitcoin rule above."""

    def __init__(self, chain: SimulatedChain) -> None:
        self._chain = chain

    def balances(
        self, asset: str, addresses: Sequence[str], *, at_height: int | None = None
    ) -> Mapping[str, int]:
        sim = self._chain
        _require(asset, [sim.asset], sim.name)
        wanted = set(addresses)
        tip = sim.tip.height
        limit = tip if at_height is None else min(at_height, tip)
        spent: set[str] = set()
        for height in range(tip + 1):
            block = sim.block_at(height)
            if block is not None:
                spent.update(op for tx in sim.block_txs(block) for op in tx.inputs)
        held: dict[str, int] = {}
        for height in range(limit + 1):
            block = sim.block_at(height)
            if block is None:
                continue
            for tx in sim.block_txs(block):
                for vout, out in enumerate(tx.outputs):
                    if out.address in wanted and tx.outpoint(vout) not in spent:
                        held[out.address] = held.get(out.address, 0) + out.units
        return held
