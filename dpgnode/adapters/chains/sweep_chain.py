"""``SweepChain`` over the ``[chains]`` nodes: what ``dpg chain sweep`` reads and sends.

Built on what payouts already use: Bitcoin outputs come from
:class:`~dpgnode.adapters.chains.funding.ChainPayoutFunding` (confirmed, not spent in the
mempool, not reserved by a signed payout), broadcasting from
:class:`~dpgnode.adapters.chains.broadcast.ChainBroadcaster`, and nonces from the EVM
client's :class:`~dpgnode.adapters.chains.evm_nonces.NonceReservations` (one per chain in
this process, floored past the nonces signed payouts of the same sender hold).

Gas: a plain coin transfer to an address without code costs exactly 21,000, which is what
the estimate says and what is signed (a margin would only leave more dust behind); any
other call gets the chain's ``gas_margin_percent`` on top of the estimate.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from dpgnode.adapters.chains.broadcast import ChainBroadcaster
from dpgnode.adapters.chains.connections import BITCOIN_NETWORK, ChainConnections
from dpgnode.adapters.chains.evm_nonces import NonceReservations, Reservation
from dpgnode.adapters.chains.funding import ChainPayoutFunding
from dpgnode.adapters.chains.reserved import next_nonce_after
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.payout import PayoutStatus
from dpgnode.domain.money import AssetKind
from dpgnode.errors import ValidationError
from dpgnode.ports.chains import BroadcastResult
from dpgnode.ports.custody import BitcoinFunding, PayoutStore
from dpgnode.ports.sweeps import EvmFees

_PLAIN_TRANSFER_GAS = 21_000
_POLL_SECONDS = 0.25
_SIGNED_SCAN_LIMIT = 1000


class ChainSweepAccess:
    """:class:`~dpgnode.ports.sweeps.SweepChain` over configured chain nodes."""

    def __init__(
        self, connections: ChainConnections, funding: ChainPayoutFunding,
        broadcaster: ChainBroadcaster, payouts: PayoutStore,
    ) -> None:
        self._chains = connections
        self._funding = funding
        self._broadcaster = broadcaster
        self._payouts = payouts
        self._nonces: dict[str, NonceReservations] = {}

    def bitcoin_funds(self, account_id: str, network: Network) -> BitcoinFunding:
        """Spendable outputs of the account (as a payout from it would be funded)."""
        return self._funding.bitcoin(account_id, network)

    def balance(self, asset: str, address: str) -> int:
        """Coin or token balance of ``address`` at the latest block."""
        found = self._chains.asset(asset)
        if found.network == BITCOIN_NETWORK:
            raise ValidationError("Bitcoin balances are outputs: use bitcoin_funds",
                                  field="asset")
        rpc = self._chains.evm(found.network).rpc
        if found.kind is AssetKind.TOKEN:
            return rpc.token_balance(self._chains.token_contract(found), address)
        return rpc.balance(address)

    def token_contract(self, asset: str) -> str:
        """The configured ERC-20 contract of ``asset``."""
        return self._chains.token_contract(self._chains.asset(asset))

    def fees(self, chain: str) -> EvmFees:
        """EIP-1559 fees now, capped by ``max_fee_per_gas_gwei``."""
        evm = self._chains.evm(chain)
        fees = evm.rpc.fees(ceiling=evm.max_fee_per_gas)
        return EvmFees(evm.rpc.chain_id, fees.max_fee_per_gas, fees.max_priority_fee_per_gas)

    def estimate_gas(
        self, chain: str, *, sender: str, to: str, value: int = 0, data: bytes = b""
    ) -> int:
        """The gas limit to sign with (see the module docstring)."""
        evm = self._chains.evm(chain)
        estimate = evm.rpc.estimate_gas(sender=sender, to=to, value=value, data=data)
        if not data and estimate == _PLAIN_TRANSFER_GAS:
            return estimate
        return -(-estimate * (100 + evm.gas_margin_percent) // 100)

    def reserve_nonce(self, chain: str, sender: str) -> Reservation:
        """The sender's next nonce no other send of this process holds."""
        evm = self._chains.evm(chain)
        reservations = self._nonces.get(chain)
        if reservations is None:
            reservations = self._nonces[chain] = NonceReservations(evm.rpc.nonce)
        signed = [p for code in self._chains.assets_on(chain)
                  for p in self._payouts.payouts(status=PayoutStatus.SIGNED, asset=code,
                                                 limit=_SIGNED_SCAN_LIMIT)]
        floor = next_nonce_after(signed, chain_id=evm.rpc.chain_id, sender=sender)
        return reservations.reserve(sender, floor=floor)

    def broadcast(self, asset: str, raw_tx: str, txid: str) -> BroadcastResult:
        """Check, then relay (the broadcaster's contract)."""
        return self._broadcaster.broadcast(asset, raw_tx, txid)

    def wait_mined(self, chain: str, txids: Sequence[str], timeout: float) -> set[str]:
        """Those of ``txids`` with a receipt, polling until all have one or time is up."""
        rpc = self._chains.evm(chain).rpc
        mined: set[str] = set()
        deadline = time.monotonic() + timeout
        while True:
            for txid in txids:
                if txid not in mined and rpc.receipt(txid) is not None:
                    mined.add(txid)
            if len(mined) == len(set(txids)) or time.monotonic() >= deadline:
                return mined
            time.sleep(_POLL_SECONDS)
