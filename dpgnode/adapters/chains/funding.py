"""``PayoutFunding`` over real chain nodes: what a payout's transaction is built from.

Bitcoin: the source's addresses come from the custody stores (every address the node
issued on the account's receiving and change branches, or the hot key's own P2WPKH
address), the node's UTXO set says which of them hold confirmed outputs
(:meth:`BitcoinRpc.scan`), and what is already being spent is left out (outputs spent in the
node's mempool, and outputs the raw transaction of a ``signed``, not yet broadcast payout
spends: :mod:`~dpgnode.adapters.chains.reserved`). Each output carries the ``key_id`` the
signing service maps to a key: ``<account id>/<branch>/<index>`` or ``hot:<label>``.

EVM: the sender's ``pending`` nonce (past any nonce a signed, unbroadcast payout of the same
sender took), EIP-1559 fees and a gas limit. The port does not pass the payout's recipient
or amount, so the gas is estimated for the same kind of transfer to a fresh random address
(for an ERC-20, one base unit: the costliest case of a standard token, a zero balance
becoming non-zero) plus ``gas_margin_percent``; unused gas is refunded.

Read-only: nothing here writes, signs or broadcasts.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Protocol

from dpgnode.adapters.chains.connections import BITCOIN_NETWORK, ChainConnections
from dpgnode.adapters.chains.reserved import next_nonce_after, spent_outpoints
from dpgnode.domain.custody.addresses import address_from_public_key, parse_address
from dpgnode.domain.custody.btc_spend import Utxo
from dpgnode.domain.custody.evm_tx import erc20_transfer_data
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.domain.custody.payout import HOT_PREFIX, Payout, PayoutStatus
from dpgnode.domain.custody.wallet import CHANGE_BRANCH, EXTERNAL_BRANCH, Chain
from dpgnode.domain.money import AssetKind
from dpgnode.errors import ConfigError, NotFoundError, ValidationError
from dpgnode.ports.custody import BitcoinFunding, CustodyStore, EvmFunding
from dpgnode.ports.signer import HotKeyRef, KeyRef

_PAGE = 1000
_SIGNED_SCAN_LIMIT = 1000
_SPENDABLE = (AddressType.P2WPKH, AddressType.P2TR)


class PublicKeys(Protocol):
    """Where hot keys' public keys come from (the signer; no secret crosses)."""

    def public_key(self, ref: KeyRef) -> bytes:
        """The compressed public key of ``ref``."""
        ...


class ChainPayoutFunding:
    """:class:`~dpgnode.ports.custody.PayoutFunding` over the configured chain nodes."""

    def __init__(
        self, store: CustodyStore, connections: ChainConnections,
        public_keys: PublicKeys | None = None,
    ) -> None:
        self._store = store
        self._chains = connections
        self._public_keys = public_keys

    # -- Bitcoin ---------------------------------------------------------------------------

    def bitcoin(self, source: str, network: Network) -> BitcoinFunding:
        """Confirmed, unreserved outputs of ``source`` and the fee rate to pay."""
        chain = self._chains.bitcoin()
        if chain.rpc.network is not network:
            raise ConfigError(
                f"the payout is on {network} but the Bitcoin node is configured for "
                f"{chain.rpc.network} (chains.bitcoin.network)"
            )
        addresses = dict(self._addresses(source, network))
        keys = {parse_address(a, network).script_pubkey: k for a, k in addresses.items()}
        reserved = spent_outpoints(self._signed_payouts(BITCOIN_NETWORK))
        utxos: list[Utxo] = []
        for output in chain.rpc.scan(sorted(addresses)):
            key_id = keys.get(output.script_pubkey)
            if key_id is None or not output.mature:
                continue
            if (output.txid, output.vout) in reserved:
                continue
            if not chain.rpc.is_unspent(output.txid, output.vout):
                continue  # a transaction in the node's mempool spends it already
            utxos.append(Utxo(output.txid, output.vout, output.value_sats,
                              output.script_pubkey, key_id))
        fee_rate = chain.rpc.fee_rate(target_blocks=chain.fee_target_blocks,
                                      floor=chain.min_fee_rate, ceiling=chain.max_fee_rate)
        return BitcoinFunding(tuple(utxos), fee_rate)

    def _addresses(self, source: str, network: Network) -> Iterator[tuple[str, str]]:
        """``(address, key_id)`` of every address ``source`` can spend from."""
        if source.startswith(HOT_PREFIX):
            if self._public_keys is None:
                raise ConfigError("hot key sources need the signer to know their address")
            public_key = self._public_keys.public_key(HotKeyRef(source))
            yield address_from_public_key(public_key, AddressType.P2WPKH, network), source
            return
        account = self._store.account(source)
        if account is None:
            raise NotFoundError(f"no key account {source[:64]}", details={"field": "source"})
        if account.chain is not Chain.BITCOIN or account.network is not network:
            raise ValidationError(f"key account {account.id} is not a {network} account",
                                  field="source")
        if account.scheme.address_type not in _SPENDABLE:
            raise ValidationError(
                f"key account {account.id} ({account.scheme}) cannot pay: payouts spend "
                "P2WPKH (bip84) and P2TR (bip86) outputs", field="source",
            )
        for branch in (EXTERNAL_BRANCH, CHANGE_BRANCH):
            offset = 0
            while True:
                page = self._store.addresses(account.id, branch, used=None, offset=offset,
                                             limit=_PAGE)
                for issued in page:
                    yield issued.address, f"{account.id}/{issued.branch}/{issued.index}"
                if len(page) < _PAGE:
                    break
                offset += _PAGE

    def _signed_payouts(self, network: str) -> list[Payout]:
        """Signed, unbroadcast payouts of every asset on ``network``."""
        found: list[Payout] = []
        for code in self._chains.assets_on(network):
            found.extend(self._store.payouts(status=PayoutStatus.SIGNED, asset=code,
                                             limit=_SIGNED_SCAN_LIMIT))
        return found

    # -- EVM -------------------------------------------------------------------------------

    def evm(self, asset: str, sender: str) -> EvmFunding:
        """Nonce, fees, gas and token contract for a transfer of ``asset`` from ``sender``."""
        found = self._chains.asset(asset)
        if found.network == BITCOIN_NETWORK:
            raise ValidationError(f"{asset} does not move on an EVM chain", field="asset")
        chain = self._chains.evm(found.network)
        rpc = chain.rpc
        # A fresh address (the costliest storage case) with no zero byte (zero calldata bytes
        # cost less gas): the estimate then bounds any recipient's from above.
        probe = bytes(byte or 1 for byte in secrets.token_bytes(20))
        probe_text = "0x" + probe.hex()
        contract: str | None = None
        if found.kind is AssetKind.TOKEN:
            contract = self._chains.token_contract(found)
            estimate = rpc.estimate_gas(sender=sender, to=contract,
                                        data=erc20_transfer_data(probe, 1))
        else:
            estimate = rpc.estimate_gas(sender=sender, to=probe_text)
        nonce = max(
            rpc.nonce(sender),
            next_nonce_after(self._signed_payouts(found.network), chain_id=rpc.chain_id,
                             sender=sender),
        )
        fees = rpc.fees(ceiling=chain.max_fee_per_gas)
        return EvmFunding(
            chain_id=rpc.chain_id, nonce=nonce, max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            gas=-(-estimate * (100 + chain.gas_margin_percent) // 100),
            token_contract=contract,
        )
