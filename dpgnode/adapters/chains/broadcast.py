"""``TransactionBroadcaster`` over the configured chain nodes (contract: ``ports/chains.py``).

Bitcoin: ``testmempoolaccept`` first; only a transaction the mempool would take goes to
``sendrawtransaction``. A refusal that means "I have it already" (the transaction is in the
mempool, or its outputs are in the UTXO set because it confirmed) is a success: the payout
was broadcast before and its answer was lost.

EVM nodes have no dry run: ``eth_sendRawTransaction`` validates and refuses with a reason
(nonce too low, insufficient funds, fee too low...). The node is first asked whether it
knows the hash, so a repeated broadcast is recognised rather than refused as "nonce too
low" / "already known".

Never replace: payout transactions signal RBF (Bitcoin) and any EVM transaction with a
higher fee can take an earlier one's nonce, so a payout whose inputs (or nonce) another
pending transaction already uses would *replace* that transaction, perhaps another payout
recorded as broadcast, which would then never confirm. Such a payout is refused here, before
anything is relayed: an input already spent in the node's mempool, or a nonce below the
sender's ``pending`` count.
"""

from __future__ import annotations

from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.adapters.chains.connections import BITCOIN_NETWORK, ChainConnections
from dpgnode.adapters.chains.jsonrpc import RpcError
from dpgnode.adapters.chains.rawtx import bitcoin_outpoints, evm_fields
from dpgnode.errors import IntegrityError
from dpgnode.ports.chains import BroadcastResult

_ALREADY_KNOWN = (
    "txn-already-in-mempool",
    "txn-already-known",
    "txn-same-nonwitness-data-in-mempool",
)
"""``testmempoolaccept`` reasons that mean the node has this transaction already."""


class ChainBroadcaster:
    """Relays signed payout transactions to the node of their asset's chain."""

    def __init__(self, connections: ChainConnections) -> None:
        self._chains = connections

    def broadcast(self, asset: str, raw_tx: str, txid: str) -> BroadcastResult:
        """Check, then relay (see ``dpgnode.ports.chains`` for the contract)."""
        found = self._chains.asset(asset)
        if found.network == BITCOIN_NETWORK:
            return self._bitcoin(raw_tx, txid)
        return self._evm(found.network, raw_tx, txid)

    def _bitcoin(self, raw_tx: str, txid: str) -> BroadcastResult:
        return broadcast_bitcoin(self._chains.bitcoin().rpc, raw_tx, txid)

    def _evm(self, network: str, raw_tx: str, txid: str) -> BroadcastResult:
        rpc = self._chains.evm(network).rpc
        if rpc.transaction(txid) is not None:
            return BroadcastResult(True, txid, known=True)
        fields = evm_fields(raw_tx)
        if fields.chain_id != rpc.chain_id:
            return BroadcastResult(False, txid, reason=(
                f"the transaction is for chain id {fields.chain_id}, the node serves "
                f"{rpc.chain_id}"))
        pending = rpc.nonce(fields.sender_hex)
        if fields.nonce < pending:
            return BroadcastResult(False, txid, reason=(
                f"nonce {fields.nonce} of {fields.sender_hex} is already used by a mined or "
                f"pending transaction (next is {pending}); broadcasting would replace it"))
        try:
            sent = rpc.send_raw(raw_tx)
        except RpcError as exc:
            if rpc.transaction(txid) is not None:  # it arrived meanwhile ("already known")
                return BroadcastResult(True, txid, known=True)
            return BroadcastResult(False, txid, reason=exc.rpc_message)
        _same_txid(sent, txid, rpc.name)
        return BroadcastResult(True, txid)


def broadcast_bitcoin(rpc: BitcoinRpc, raw_tx: str, txid: str) -> BroadcastResult:
    """Check, then relay a Bitcoin transaction (the module docstring says how).

    Also the watcher's rebroadcast of our own unconfirmed transactions.
    """
    verdict = rpc.test_accept(raw_tx)
    _same_txid(verdict.txid, txid, rpc.name)
    if not verdict.allowed:
        if verdict.reason.split(":")[0] in _ALREADY_KNOWN:
            return BroadcastResult(True, txid, known=True)
        return BroadcastResult(False, txid, reason=verdict.reason)
    for prev_txid, vout in bitcoin_outpoints(raw_tx):
        if not rpc.is_unspent(prev_txid, vout):
            return BroadcastResult(False, txid, reason=(
                f"input {prev_txid}:{vout} is already spent by a transaction in the "
                "node's mempool; broadcasting would replace it"))
    try:
        sent = rpc.send_raw(raw_tx)
    except RpcError as exc:  # the mempool changed between the test and the send
        return BroadcastResult(False, txid, reason=exc.rpc_message)
    _same_txid(sent, txid, rpc.name)
    return BroadcastResult(True, txid)


def _same_txid(reported: str, recorded: str, node: str) -> None:
    if reported.lower() != recorded.lower():
        raise IntegrityError(
            f"{node} computed txid {reported[:80]} for the payout's raw transaction, which "
            f"is recorded as {recorded[:80]}"
        )
