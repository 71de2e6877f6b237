"""The blockchain API's use cases: issue an address, look at one, send, find a transaction.

Everything here goes through the services that own the data: addresses through the custody
address pools (so the watchers follow every issued address, R11), sends through the payout
service and its spend policy, balances through the reconciler's reading rules. Nothing here
holds a key: a send is a payout *request* that waits for an operator's approval where the
signer is (``dpg payout approve``), whatever the policy's threshold (R22).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dpgnode.domain.chains.fees import FeeEstimate
from dpgnode.domain.chains.payments import Payment, confirmations
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout
from dpgnode.domain.custody.wallet import IssuedAddress, KeyAccount
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.ports.chain_fees import FeeEstimates
from dpgnode.ports.chain_watch import ChainStore
from dpgnode.ports.custody import AddressPool, KeychainStore
from dpgnode.services.chains.reconcile import AddressHolding, Reconciler
from dpgnode.services.chains.redaction import redact
from dpgnode.services.custody.addresses import AddressService, Issued
from dpgnode.services.custody.payout_records import PayoutRequest
from dpgnode.services.custody.payouts import PayoutService

_TXID = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
API_APPROVALS = 1
"""Approvals an API send needs at least: the API holds no signer, an operator's approval
at the signer (``dpg payout approve``) signs it."""


class PayoutsByTxid(Protocol):
    """Finds the node's own payouts by the id of their signed transaction."""

    def payouts_with_txid(self, txid: str) -> Sequence[Payout]:
        """Payouts whose transaction has this id (any state), oldest first."""
        ...


class CustodyReads(AddressPool, KeychainStore, Protocol):
    """What the blockchain API reads of custody: issued addresses and their accounts."""


@dataclass(frozen=True, slots=True)
class AddressBalance:
    """An issued address and what it holds per chain and asset."""

    address: IssuedAddress
    account: KeyAccount
    holdings: tuple[AddressHolding, ...]


@dataclass(frozen=True, slots=True)
class PaymentSeen:
    """A payment in a transaction, with its confirmations under the watcher's height."""

    payment: Payment
    confirmations: int


@dataclass(frozen=True, slots=True)
class TransactionView:
    """What the node knows of a transaction: payments to it, payouts it sent."""

    txid: str
    payments: tuple[PaymentSeen, ...]
    payouts: tuple[Payout, ...]


class BlockchainService:
    """The use cases behind ``/api/v1/blockchain`` (see the module docstring)."""

    def __init__(
        self, store: ChainStore, reconciler: Reconciler, addresses: AddressService,
        custody: CustodyReads, payouts: PayoutService, sent: PayoutsByTxid,
        fees: FeeEstimates | None,
    ) -> None:
        self._store = store
        self._reconciler = reconciler
        self._addresses = addresses
        self._custody = custody
        self._payouts = payouts
        self._sent = sent
        self._fees = fees

    def generate(self, account_id: str, *, owner: str = "", reference: str = "") -> Issued:
        """The next receiving address of a key account, recorded before it is returned.

        Raises:
            NotFoundError: no such key account.
            ValidationError: a malformed owner or a reference over 200 characters.
        """
        return self._addresses.issue(account_id, owner=owner, reference=reference)

    def address_balance(self, address: str) -> AddressBalance:
        """Ledger and chain view of an issued address on every chain that carries it.

        Raises:
            NotFoundError: the node never issued ``address``.
        """
        issued = self._custody.address(address.strip())
        account = None if issued is None else self._custody.account(issued.account_id)
        if issued is None or account is None:
            raise NotFoundError("the node never issued this address",
                                details={"field": "address"})
        chains = {p.chain for p in self._store.payments(address=issued.address, limit=1000)}
        for name, target in self._reconciler.targets().items():
            if target.family == str(account.chain) and (
                    target.family != "bitcoin" or target.network == str(account.network)):
                chains.add(name)
        holdings: list[AddressHolding] = []
        for chain in sorted(chains):
            if chain not in self._reconciler.targets():
                continue  # paid on a chain the node no longer follows: nothing to compare
            holdings.extend(self._redacted(h)
                            for h in self._reconciler.address_view(chain, issued.address))
        return AddressBalance(issued, account, tuple(holdings))

    @staticmethod
    def _redacted(holding: AddressHolding) -> AddressHolding:
        if not holding.error:
            return holding
        return AddressHolding(holding.chain, holding.asset, holding.ledger, holding.pending,
                              holding.on_chain, holding.settled_height, holding.unsettled,
                              redact(holding.error))

    def send(self, operator: Operator, request: PayoutRequest) -> Payout:
        """Request a payout through the spend policy; it waits for an approval to be signed.

        Raises:
            PolicyDeniedError, InsufficientFundsError, IdempotencyKeyReusedError,
            ValidationError, NotFoundError: as :meth:`PayoutService.request`.
        """
        return self._payouts.request(operator, request, min_approvals=API_APPROVALS)

    def transaction(self, txid: str) -> TransactionView:
        """Payments in ``txid`` (with confirmations) and payouts that sent it.

        Raises:
            ValidationError: not a transaction id (64 hex digits, ``0x`` optional).
            NotFoundError: the node has no record of it.
        """
        if not _TXID.fullmatch(txid):
            raise ValidationError("a transaction id is 64 hex digits (0x-prefixed on EVM "
                                  "chains)", field="txid")
        bare = txid.lower().removeprefix("0x")
        wanted = {bare, f"0x{bare}"}  # Bitcoin ids are bare, EVM ones 0x-prefixed
        payments: list[PaymentSeen] = []
        payouts: list[Payout] = []
        for candidate in sorted(wanted):
            for payment in self._store.payments(txid=candidate, limit=1000):
                cursor = self._store.cursor(payment.chain)
                depth = (0 if payment.block is None or cursor is None
                         else confirmations(payment.block.height, cursor.height))
                payments.append(PaymentSeen(payment, depth))
            payouts.extend(self._sent.payouts_with_txid(candidate))
        if not payments and not payouts:
            raise NotFoundError("the node has no record of this transaction",
                                details={"field": "txid"})
        return TransactionView(txid, tuple(payments), tuple(payouts))

    def estimate_fees(self, chain: str) -> FeeEstimate:
        """The chain's fee levels from its node (see ``FeeEstimates``).

        Raises:
            NotFoundError: no node is configured for ``chain``.
            UnavailableError: the node cannot be reached.
        """
        if self._fees is None:
            raise NotFoundError(f"no node is configured for a chain named {chain[:40]!r}",
                                details={"field": "chain"})
        return self._fees.estimate(chain)
