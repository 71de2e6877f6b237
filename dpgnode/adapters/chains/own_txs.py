"""The node's own transactions over the ``[chains]`` nodes: re-sending them, reading their fees.

:class:`ChainOwnTxAccess` is the :class:`~dpgnode.ports.chains.TransactionBroadcaster` and
:class:`~dpgnode.ports.outgoing.OwnTxFees` of the chain watchers' process. It connects on
first use (a node whose chain settings are wrong or whose chain is down still starts), and
holds no key: it only sends bytes signed elsewhere and reads receipts.

Fees:

- EVM: ``gasUsed * effectiveGasPrice`` of the receipt, with the receipt's block hash (a
  transaction mined again in another block after a reorganisation pays another base fee);
- Bitcoin: inputs minus outputs, from the transaction and the ones it spends
  (``getrawtransaction``: needs ``-txindex`` for confirmed parents). Only payouts signed
  before fees were recorded at signing need it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from bitcoin.core import CTransaction, b2lx  # type: ignore[import-untyped]

from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.adapters.chains.broadcast import ChainBroadcaster
from dpgnode.adapters.chains.connections import BITCOIN_NETWORK, ChainConnections
from dpgnode.adapters.chains.evm_rpc import EvmRpc, quantity
from dpgnode.domain.chains.outgoing import bitcoin_fee, evm_fee
from dpgnode.errors import DpgError, IntegrityError, UnavailableError
from dpgnode.ports.chains import BroadcastResult
from dpgnode.ports.outgoing import PaidFee


class ChainOwnTxAccess:
    """Broadcasting and fee reading over lazily built chain connections."""

    def __init__(self, connect: Callable[[], ChainConnections]) -> None:
        self._connect = connect
        self._connections: ChainConnections | None = None
        self._lock = threading.Lock()

    def _chains(self) -> ChainConnections:
        with self._lock:
            if self._connections is None:
                self._connections = self._connect()
            return self._connections

    def close(self) -> None:
        """Close the connections, if any were made."""
        with self._lock:
            if self._connections is not None:
                self._connections.close()
                self._connections = None

    def broadcast(self, asset: str, raw_tx: str, txid: str) -> BroadcastResult:
        """Check, then relay ``raw_tx`` (:class:`ChainBroadcaster`'s contract)."""
        return ChainBroadcaster(self._chains()).broadcast(asset, raw_tx, txid)

    def fee_paid(self, chain: str, txid: str) -> PaidFee | None:
        """The fee ``txid`` paid, once mined (see the module docstring)."""
        chains = self._chains()
        if chain == BITCOIN_NETWORK:
            return _bitcoin_fee(chains.bitcoin().rpc, txid)
        return _evm_fee(chains.evm(chain).rpc, txid)


def _evm_fee(rpc: EvmRpc, txid: str) -> PaidFee | None:
    receipt = rpc.receipt(txid)
    if receipt is None or not receipt.get("blockHash"):
        return None
    block_hash = receipt["blockHash"]
    if not isinstance(block_hash, str) or len(block_hash) != 66:
        raise UnavailableError(f"{rpc.name} sent a malformed receipt for {txid}")
    try:
        units = evm_fee(quantity(receipt.get("gasUsed"), "gas used"),
                        quantity(receipt.get("effectiveGasPrice"), "effective gas price"))
    except DpgError as exc:
        raise UnavailableError(f"{rpc.name} sent a malformed receipt for {txid}: "
                               f"{exc.message}") from exc
    return PaidFee(block_hash.lower(), units)


def _bitcoin_fee(rpc: BitcoinRpc, txid: str) -> PaidFee | None:
    raw = rpc.raw_transactions([txid]).get(txid)
    if raw is None:
        return None
    tx = _parse(raw, txid)
    parents = sorted({b2lx(i.prevout.hash) for i in tx.vin})
    found = rpc.raw_transactions(parents)
    values: list[int] = []
    for txin in tx.vin:
        parent_id = b2lx(txin.prevout.hash)
        parent_raw = found.get(parent_id)
        if parent_raw is None:
            raise UnavailableError(
                f"{rpc.name} does not have {parent_id}, spent by {txid}: the fee needs the "
                "node's transaction index (-txindex=1)", retry_after=600)
        parent = _parse(parent_raw, parent_id)
        values.append(int(parent.vout[txin.prevout.n].nValue))
    return PaidFee(None, bitcoin_fee(values, [int(o.nValue) for o in tx.vout]))


def _parse(raw: bytes, txid: str) -> CTransaction:
    try:
        tx = CTransaction.deserialize(raw)
    except Exception as exc:  # python-bitcoinlib raises assorted types on bad bytes
        raise UnavailableError(f"transaction {txid} from the node does not parse") from exc
    if b2lx(tx.GetTxid()) != txid:
        raise IntegrityError(f"the node answered another transaction for {txid}")
    return tx
