"""Build an approved payout's transaction from chain data and have the signer sign it.

Bitcoin: the source's spendable outputs (``PayoutFunding.bitcoin``) are selected largest
first (``btc_spend.plan_spend``), change goes to a fresh change address of the source
account (issued and recorded like any address, so it is never reused) or back to the hot
key's own P2WPKH address, and every input is signed by the key its ``key_id`` names.
EVM: one EIP-1559 transfer, native or ERC-20 (``PayoutFunding.evm`` gives nonce, fees, gas
and the token contract), from the source's sending address.

Sources: ``hot:<label>`` (an HSM hot key), ``<key account id>`` (a Bitcoin account of a
seed keychain; on EVM its address 0) or ``<key account id>/<index>`` (an EVM account's
address ``index``). Watch-only keychains cannot pay: the node holds no key for them.

Everything that can be refused is refused before the first signature (see
``tx_signing``); the hold the payout took covers the amount sent, while the network fee
is paid from the source's own outputs (the chains settle it in the ledger on confirmation).
"""

from __future__ import annotations

from dataclasses import dataclass

from dpgnode.domain.custody.addresses import parse_address, script_pubkey_from_public_key
from dpgnode.domain.custody.btc_spend import Payment, plan_spend
from dpgnode.domain.custody.evm import evm_address_from_public_key, parse_evm_address
from dpgnode.domain.custody.evm_tx import erc20_transfer, native_transfer
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.domain.custody.payout import HOT_PREFIX, Payout
from dpgnode.domain.custody.wallet import (
    CHANGE_BRANCH,
    EXTERNAL_BRANCH,
    MAX_ADDRESS_INDEX,
    Chain,
    KeyAccount,
    Keychain,
)
from dpgnode.domain.money import Asset, AssetKind, AssetRegistry
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.ports.custody import KeychainStore, PayoutFunding
from dpgnode.ports.signer import HdKeyRef, HotKeyRef, KeyRef, SealedSeed, Signer
from dpgnode.services.custody.addresses import AddressService
from dpgnode.services.custody.policy import is_bitcoin, normalize_destination
from dpgnode.services.custody.tx_signing import SignedTx, sign_bitcoin, sign_evm


@dataclass(frozen=True, slots=True)
class PayoutSource:
    """What pays: an HSM hot key, or an account of a seed keychain (and an EVM index)."""

    text: str
    hot_label: str | None = None
    account: KeyAccount | None = None
    keychain: Keychain | None = None
    evm_index: int = 0

    @property
    def network(self) -> Network | None:
        """The account's network (``None`` for a hot key: the node's network applies)."""
        return self.account.network if self.account is not None else None

    def hd_ref(self, branch: int, index: int) -> HdKeyRef:
        """The signer reference of the account's key at ``branch/index``."""
        if self.account is None or self.keychain is None or self.keychain.sealed_seed is None:
            raise ValidationError("this source has no HD seed", field="source")
        sealed = SealedSeed.from_json(self.keychain.sealed_seed)
        return HdKeyRef(sealed, f"{self.account.path}/{branch}/{index}")


def resolve_source(text: str, keychains: KeychainStore, asset: Asset) -> PayoutSource:
    """Check that ``text`` names something able to pay ``asset`` and say what it is.

    Raises:
        ValidationError: malformed source, a watch-only keychain, or an account of the
            other chain family.
        NotFoundError: no such key account.
    """
    if not isinstance(text, str) or not text or len(text) > 140:
        raise ValidationError("source must be a key account id or hot:<label>", field="source")
    if text.startswith(HOT_PREFIX):
        if len(text) == len(HOT_PREFIX):
            raise ValidationError("hot key label is empty", field="source")
        return PayoutSource(text, hot_label=text)
    account_id, _, index_text = text.partition("/")
    account = keychains.account(account_id)
    if account is None:
        raise NotFoundError(f"no key account {account_id[:64]}", details={"field": "source"})
    keychain = keychains.keychain(account.keychain_id)
    if keychain is None or not keychain.can_spend:
        raise ValidationError(
            "this wallet is watch-only: the node holds no key to pay from it", field="source"
        )
    wants = Chain.BITCOIN if is_bitcoin(asset) else Chain.EVM
    if account.chain is not wants:
        raise ValidationError(f"this account cannot pay {asset.code}", field="source")
    index = 0
    if index_text:
        if account.chain is not Chain.EVM or not index_text.isdigit() or len(index_text) > 10:
            raise ValidationError("only EVM sources take /<index>", field="source")
        index = int(index_text)
        if index > MAX_ADDRESS_INDEX:
            raise ValidationError("address index out of range", field="source")
    return PayoutSource(text, account=account, keychain=keychain, evm_index=index)


class PayoutTransactions:
    """Builds and signs payout transactions."""

    def __init__(
        self, keychains: KeychainStore, addresses: AddressService, assets: AssetRegistry,
        network: Network,
    ) -> None:
        self._keychains = keychains
        self._addresses = addresses
        self._assets = assets
        self._network = network

    def check_request(self, source: str, asset_code: str, destination: str) -> str:
        """The normalised destination, after refusing a source that could never pay.

        Runs before anything is held. The destination is parsed for the source's network
        (the node's for a hot key) and returned in the form allow-lists hold.

        Raises:
            ValidationError: a malformed destination or one of another network, a fiat
                asset, a watch-only or wrong-chain source.
            NotFoundError: unknown asset or key account.
        """
        asset = self._assets.require(asset_code)
        found = resolve_source(source, self._keychains, asset)
        return normalize_destination(destination, asset, found.network or self._network)

    def sign(self, payout: Payout, signer: Signer, funding: PayoutFunding) -> SignedTx:
        """The signed transaction paying ``payout`` (nothing is broadcast)."""
        asset = self._assets.require(payout.asset)
        source = resolve_source(payout.source, self._keychains, asset)
        if is_bitcoin(asset):
            return self._bitcoin(payout, source, signer, funding)
        return self._evm(payout, asset, source, signer, funding)

    def _bitcoin(
        self, payout: Payout, source: PayoutSource, signer: Signer, funding: PayoutFunding
    ) -> SignedTx:
        network = source.network or self._network
        destination = parse_address(payout.destination, network, field="destination")
        funds = funding.bitcoin(source.account.id if source.account else source.text, network)
        if source.account is not None:
            change = self._addresses.issue(
                source.account.id, branch=CHANGE_BRANCH, reference=payout.id
            )
            change_script = parse_address(change.address.address, network).script_pubkey
        else:
            hot_key = signer.public_key(HotKeyRef(source.text))
            change_script = script_pubkey_from_public_key(hot_key, AddressType.P2WPKH)
        plan = plan_spend(
            funds.utxos, [Payment(destination.script_pubkey, payout.units)],
            change_script=change_script, fee_rate=funds.fee_rate,
        )
        refs = {u.key_id: self._key_ref(u.key_id, source) for u in plan.spent}
        return sign_bitcoin(signer, plan, refs)

    def _key_ref(self, key_id: str, source: PayoutSource) -> KeyRef:
        if source.hot_label is not None:
            if key_id != source.hot_label:
                raise ValidationError("an output of another key was offered", field="utxos")
            return HotKeyRef(key_id)
        parts = key_id.split("/")
        if (
            source.account is None
            or len(parts) != 3
            or parts[0] != source.account.id
            or not all(p.isdigit() and len(p) <= 10 for p in parts[1:])
        ):
            raise ValidationError("an output of another key was offered", field="utxos")
        return source.hd_ref(int(parts[1]), int(parts[2]))

    def _evm(
        self, payout: Payout, asset: Asset, source: PayoutSource, signer: Signer,
        funding: PayoutFunding,
    ) -> SignedTx:
        ref: KeyRef
        if source.account is not None:
            ref = source.hd_ref(EXTERNAL_BRANCH, source.evm_index)
            key = self._addresses.account_key(source.account)
            sender = key.address(EXTERNAL_BRANCH, source.evm_index)
        else:
            ref = HotKeyRef(source.text)
            sender = evm_address_from_public_key(signer.public_key(ref))
        funds = funding.evm(asset.code, sender)
        recipient = parse_evm_address(payout.destination, field="destination").raw
        if asset.kind is AssetKind.TOKEN:
            if funds.token_contract is None:
                raise NotFoundError(f"no token contract known for {asset.code}")
            tx = erc20_transfer(
                chain_id=funds.chain_id, nonce=funds.nonce,
                token=parse_evm_address(funds.token_contract, field="token").raw,
                recipient=recipient, units=payout.units,
                max_priority_fee_per_gas=funds.max_priority_fee_per_gas,
                max_fee_per_gas=funds.max_fee_per_gas, gas=funds.gas,
            )
        else:
            tx = native_transfer(
                chain_id=funds.chain_id, nonce=funds.nonce, to=recipient,
                value_wei=payout.units,
                max_priority_fee_per_gas=funds.max_priority_fee_per_gas,
                max_fee_per_gas=funds.max_fee_per_gas, gas=funds.gas,
            )
        return sign_evm(signer, tx, ref, sender=sender)
