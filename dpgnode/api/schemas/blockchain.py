"""Blockchain bodies: issued addresses, their balances, sends, transactions, fees, incidents.

Amounts are decimal strings in the asset's unit (``"0.00050000"`` BTC); fee rates are decimal
strings too (sat/vB, or wei per gas as an integer string): never floats.
"""

from __future__ import annotations

from datetime import datetime

from dpgnode.api.schemas.base import Input, Output
from dpgnode.domain.chains.cursor import Incident
from dpgnode.domain.chains.fees import FeeEstimate, FeeKind
from dpgnode.domain.chains.payments import Payment
from dpgnode.domain.custody.payout import Payout
from dpgnode.domain.custody.wallet import IssuedAddress, KeyAccount
from dpgnode.domain.money import AssetRegistry, format_units
from dpgnode.services.chains.blockchain import AddressBalance, PaymentSeen
from dpgnode.services.chains.reconcile import AddressHolding


def _unix(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


class GenerateAddressRequest(Input):
    account_id: str
    """The key account (``ka_…``) whose next receiving address to issue."""
    owner: str | None = None
    """``owner_type:owner_id`` a payment to the address credits (``store:st_1``); empty:
    the operator's unassigned deposits."""
    reference: str | None = None
    """What the address is for (an order id), up to 200 characters."""


class AddressData(Output):
    address: str
    account_id: str
    chain: str
    """``bitcoin`` or ``evm`` (an EVM address serves every EVM chain)."""
    network: str
    branch: int
    index: int
    owner: str
    reference: str
    issued_time: int
    used: bool
    gap_exceeded: bool = False
    """Issuing it pushed the run of unused addresses past the gap limit."""

    @classmethod
    def of(cls, issued: IssuedAddress, account: KeyAccount, *,
           gap_exceeded: bool = False) -> AddressData:
        return cls(
            address=issued.address, account_id=issued.account_id, chain=str(account.chain),
            network=str(account.network), branch=issued.branch, index=issued.index,
            owner=issued.owner, reference=issued.reference,
            issued_time=int(issued.issued_at.timestamp()), used=issued.used,
            gap_exceeded=gap_exceeded,
        )


class HoldingData(Output):
    chain: str
    asset: str
    ledger: str
    """What the ledger credited to the address (live credits, minus the settled movements
    of the node's own transactions)."""
    pending: str
    """Payments seen and not credited yet."""
    on_chain: str | None
    """What the chain holds at ``settledHeight`` (null: the chain could not be read)."""
    settled_height: int | None
    """The block both views are taken at: the newest one the confirmation policy credited."""
    unsettled: bool
    """The node's own transaction is on its way: the views may differ until it is final."""
    error: str

    @classmethod
    def of(cls, holding: AddressHolding, assets: AssetRegistry) -> HoldingData:
        def amount(units: int) -> str:
            return assets.format(units, holding.asset)

        return cls(
            chain=holding.chain, asset=holding.asset, ledger=amount(holding.ledger),
            pending=amount(holding.pending),
            on_chain=None if holding.on_chain is None else amount(holding.on_chain),
            settled_height=holding.settled_height, unsettled=holding.unsettled,
            error=holding.error,
        )


class AddressBalanceData(Output):
    address: AddressData
    balances: list[HoldingData]

    @classmethod
    def of(cls, balance: AddressBalance, assets: AssetRegistry) -> AddressBalanceData:
        return cls(address=AddressData.of(balance.address, balance.account),
                   balances=[HoldingData.of(h, assets) for h in balance.holdings])


class SendRequest(Input):
    asset: str
    amount: str
    """Decimal string in the asset's unit."""
    destination: str
    source: str
    """What pays: a key account id (``ka_…``, ``ka_…/<index>`` for EVM) or ``hot:<label>``."""
    debit_account: str
    """The ledger account the amount is held on and paid from
    (``store:st_1:BTC:available``)."""
    memo: str | None = None
    idempotency_key: str | None = None
    """Retry-safe request key; the ``Idempotency-Key`` header is used when this is absent."""


class SendData(Output):
    payout_id: str
    status: str
    """``pending_approval``: an operator approves it where the signer runs."""
    asset: str
    amount: str
    destination: str
    debit_account: str
    source: str
    approvals_required: int
    txid: str | None
    next_step: str

    @classmethod
    def of(cls, payout: Payout, assets: AssetRegistry) -> SendData:
        return cls(
            payout_id=payout.id, status=str(payout.status), asset=payout.asset,
            amount=assets.format(payout.units, payout.asset), destination=payout.destination,
            debit_account=payout.debit_account.code, source=payout.source,
            approvals_required=payout.approvals_required, txid=payout.txid,
            next_step=f"an operator other than the requester approves it with "
                      f"`dpg payout approve {payout.id}` where the signer runs; it is then "
                      f"signed and broadcast with `dpg payout broadcast {payout.id}`",
        )


class PaymentData(Output):
    chain: str
    payment_key: str
    txid: str
    address: str
    asset: str
    amount: str
    status: str
    confirmations: int
    block_height: int | None
    block_hash: str | None
    owner: str
    reference: str
    conflict_txid: str | None
    first_seen_time: int

    @classmethod
    def of(cls, seen: PaymentSeen, assets: AssetRegistry) -> PaymentData:
        payment: Payment = seen.payment
        return cls(
            chain=payment.chain, payment_key=payment.key, txid=payment.txid,
            address=payment.address, asset=payment.asset,
            amount=assets.format(payment.units, payment.asset), status=str(payment.status),
            confirmations=seen.confirmations,
            block_height=None if payment.block is None else payment.block.height,
            block_hash=None if payment.block is None else payment.block.hash,
            owner=payment.owner, reference=payment.reference,
            conflict_txid=payment.conflict_txid,
            first_seen_time=int(payment.first_seen_at.timestamp()),
        )


class SentPayoutData(Output):
    payout_id: str
    status: str
    asset: str
    amount: str
    destination: str
    txid: str | None


class TransactionData(Output):
    txid: str
    payments: list[PaymentData]
    """Payments to the node's addresses in this transaction."""
    payouts: list[SentPayoutData]
    """The node's own payouts this transaction sends."""


class FeeLevelData(Output):
    name: str
    target_blocks: int | None
    sat_per_vbyte: str | None
    """Bitcoin: satoshis per virtual byte (decimal string, up to 3 decimals)."""
    max_fee_per_gas: str | None
    """EVM: wei per gas (integer string)."""
    max_priority_fee_per_gas: str | None


class FeeEstimateData(Output):
    chain: str
    kind: str
    """``bitcoin`` (estimatesmartfee) or ``eip1559`` (eth_feeHistory)."""
    base_fee_per_gas: str | None
    based_on_block: int | None
    levels: list[FeeLevelData]

    @classmethod
    def of(cls, estimate: FeeEstimate) -> FeeEstimateData:
        def text(value: int | None) -> str | None:
            return None if value is None else str(value)

        return cls(
            chain=estimate.chain, kind=str(estimate.kind),
            base_fee_per_gas=text(estimate.base_fee_per_gas),
            based_on_block=estimate.based_on_block,
            levels=[FeeLevelData(
                name=level.name, target_blocks=level.target_blocks,
                sat_per_vbyte=(None if level.sat_per_kvb is None or estimate.kind
                               is not FeeKind.BITCOIN else format_units(level.sat_per_kvb, 3)),
                max_fee_per_gas=text(level.max_fee_per_gas),
                max_priority_fee_per_gas=text(level.max_priority_fee_per_gas),
            ) for level in estimate.levels],
        )


class IncidentData(Output):
    id: int | None
    chain: str
    kind: str
    message: str
    details: dict[str, str]
    created_time: int
    resolved_time: int | None

    @classmethod
    def of(cls, incident: Incident) -> IncidentData:
        return cls(
            id=incident.id, chain=incident.chain, kind=str(incident.kind),
            message=incident.message, details=dict(incident.details),
            created_time=int(incident.created_at.timestamp()),
            resolved_time=_unix(incident.resolved_at),
        )
