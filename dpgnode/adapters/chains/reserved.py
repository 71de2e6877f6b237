"""What signed payouts that are not broadcast yet already use: Bitcoin outputs, EVM nonces.

A payout is signed first and broadcast later (``dpg payout broadcast``). Until then the
chain node knows nothing of its transaction, so a second payout funded in between would
spend the same outputs (Bitcoin) or take the same nonce (EVM), and only one of the two
could ever confirm. The funding adapter therefore leaves out what the stored raw
transactions of ``signed`` payouts spend, read back from those bytes themselves. Broadcast
payouts need no such care: the node's mempool accounts for them (``gettxout`` with the
mempool, the ``pending`` nonce).
"""

from __future__ import annotations

from collections.abc import Iterable

from dpgnode.adapters.chains.rawtx import bitcoin_outpoints, evm_fields
from dpgnode.domain.custody.evm import parse_evm_address
from dpgnode.domain.custody.payout import Payout


def spent_outpoints(payouts: Iterable[Payout]) -> set[tuple[str, int]]:
    """``(txid, vout)`` of every input of the payouts' raw Bitcoin transactions."""
    spent: set[tuple[str, int]] = set()
    for payout in payouts:
        if payout.raw_tx is not None:
            spent.update(bitcoin_outpoints(payout.raw_tx))
    return spent


def next_nonce_after(payouts: Iterable[Payout], *, chain_id: int, sender: str) -> int:
    """One past the highest nonce ``sender`` used in the payouts' raw EVM transactions, or 0."""
    wanted = parse_evm_address(sender, field="sender").raw
    following = 0
    for payout in payouts:
        if payout.raw_tx is None:
            continue
        fields = evm_fields(payout.raw_tx)
        if fields.chain_id == chain_id and fields.sender == wanted:
            following = max(following, fields.nonce + 1)
    return following
