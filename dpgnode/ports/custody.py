"""Storage of custody: keychains, address pools, operators, payouts, the audit log.

Write methods take the writer's :class:`~dpgnode.ports.uow.Tx` as their first argument:
they run inside the command's transaction and commit (or roll back) together with the
ledger entries and outbox events of the same command. Methods without a ``tx`` read
committed data on their own connection.

Contract for every implementation:
- ``reserve_index`` is atomic: concurrent commands (even from two nodes on one database)
  never get the same index of one account branch, and indexes are consecutive;
- ``append_audit`` continues the chain from the stored head inside the transaction, so
  concurrent appends serialise and the chain never forks;
- a unique-constraint violation surfaces as ``ConflictError`` (through the writer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dpgnode.domain.custody.audit import AuditEvent, AuditRecord
from dpgnode.domain.custody.btc_spend import FeeRate, Utxo
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.custody.policy import SpendHistory
from dpgnode.domain.custody.wallet import IssuedAddress, KeyAccount, Keychain
from dpgnode.ports.uow import Tx


@dataclass(frozen=True, slots=True)
class UsedMark:
    """Result of marking an address used: the address, and whether this call changed it."""

    address: IssuedAddress
    changed: bool


class KeychainStore(Protocol):
    """Keychains and their accounts."""

    def add_keychain(self, tx: Tx, keychain: Keychain, accounts: Sequence[KeyAccount]) -> None:
        """Insert a keychain with its accounts (``ConflictError`` if an xpub is known)."""
        ...

    def keychain(self, keychain_id: str) -> Keychain | None:
        """The keychain, if any."""
        ...

    def keychains(self) -> Sequence[Keychain]:
        """Every keychain, oldest first."""
        ...

    def account(self, account_id: str) -> KeyAccount | None:
        """The key account, if any."""
        ...

    def accounts(self, keychain_id: str | None = None) -> Sequence[KeyAccount]:
        """Key accounts (of one keychain when given), oldest first."""
        ...


class AddressPool(Protocol):
    """The record of every issued address index."""

    def account_in(self, tx: Tx, account_id: str) -> KeyAccount | None:
        """The key account as this transaction sees it."""
        ...

    def reserve_index(self, tx: Tx, account_id: str, branch: int) -> int:
        """Take the next unissued index of ``branch`` (atomic; see the module contract)."""
        ...

    def save_address(self, tx: Tx, address: IssuedAddress) -> None:
        """Record an issued address (``ConflictError`` if it was issued before)."""
        ...

    def mark_used(self, tx: Tx, address: str, at: datetime) -> UsedMark | None:
        """Set ``used_at`` once and raise the account's ``last_used_index``; None if unknown."""
        ...

    def address(self, address: str) -> IssuedAddress | None:
        """The issued address, if the node issued it."""
        ...

    def addresses(
        self, account_id: str, branch: int, *, used: bool | None, offset: int, limit: int
    ) -> Sequence[IssuedAddress]:
        """Issued addresses of a branch by index, optionally only (un)used ones."""
        ...

    def used_indexes(self, account_id: str, branch: int) -> Sequence[int]:
        """Indexes of the branch that saw a payment, ascending."""
        ...


class OperatorStore(Protocol):
    """Registered operators."""

    def save_operator(self, tx: Tx, operator: Operator) -> None:
        """Insert or update an operator (``ConflictError`` on a duplicate name)."""
        ...

    def operator_in(self, tx: Tx, *, name: str) -> Operator | None:
        """The operator with this name as this transaction sees it."""
        ...

    def operator_by_token_hash(self, token_hash: str) -> Operator | None:
        """The operator whose token has this digest, if any."""
        ...

    def operators(self) -> Sequence[Operator]:
        """Every operator, oldest first."""
        ...


class PayoutStore(Protocol):
    """Payouts and their approvals."""

    def save_payout(self, tx: Tx, payout: Payout) -> None:
        """Insert or update a payout."""
        ...

    def payout_in(self, tx: Tx, payout_id: str) -> Payout | None:
        """The payout as this transaction sees it."""
        ...

    def payout_by_request_key(self, tx: Tx, request_key: str) -> Payout | None:
        """The payout a request with this key created, if any."""
        ...

    def spend_history(
        self, tx: Tx, asset: str, *, day_since: datetime, hour_since: datetime,
        exclude: str | None = None,
    ) -> SpendHistory:
        """Σ units after ``day_since`` and count after ``hour_since`` of payouts that count.

        Counts payouts whose status ``counts_against_limits``, except ``exclude``.
        """
        ...

    def add_approval(self, tx: Tx, payout_id: str, operator_id: str, at: datetime) -> bool:
        """Record an approval; False when this operator had approved already."""
        ...

    def approvers(self, tx: Tx, payout_id: str) -> frozenset[str]:
        """Operator ids that approved the payout."""
        ...

    def payout(self, payout_id: str) -> Payout | None:
        """The payout, if any."""
        ...

    def payouts(
        self, *, status: PayoutStatus | None = None, asset: str | None = None, limit: int = 100
    ) -> Sequence[Payout]:
        """Payouts, newest first, optionally filtered."""
        ...

    def approvals(self, payout_id: str) -> Sequence[tuple[str, datetime]]:
        """``(operator_id, approved_at)`` of the payout's approvals, oldest first."""
        ...


class AuditLog(Protocol):
    """The append-only, hash-chained custody audit log."""

    def append_audit(
        self, tx: Tx, event: AuditEvent, *, record_id: str, at: datetime
    ) -> AuditRecord:
        """Append ``event`` after the stored head and move the head to it.

        Raises:
            IntegrityError: the head row is missing (the log was tampered with).
        """
        ...

    def audit_records(
        self, *, after_seq: int = 0, limit: int | None = None, subject: str | None = None
    ) -> Sequence[AuditRecord]:
        """Records with ``seq > after_seq`` in sequence order (of one subject when given)."""
        ...

    def audit_head(self) -> tuple[int, str]:
        """The sequence number and hash of the last appended record."""
        ...

    def audit_snapshot(
        self,
    ) -> AbstractContextManager[tuple[tuple[int, str] | None, Iterator[AuditRecord]]]:
        """The head and every record in ``seq`` order, read in one consistent snapshot.

        The head is ``None`` when its row is missing (tampering: verification reports it).
        """
        ...


@dataclass(frozen=True, slots=True)
class BitcoinFunding:
    """What a Bitcoin payout can spend: outputs of its source and the fee rate to pay.

    Each ``Utxo.key_id`` names the key that spends it: ``<key account id>/<branch>/<index>``
    for an HD source, ``hot:<label>`` for an HSM hot key.
    """

    utxos: tuple[Utxo, ...]
    fee_rate: FeeRate


@dataclass(frozen=True, slots=True)
class EvmFunding:
    """What an EVM payout needs from its chain: nonce, fees, gas and (for a token) its contract."""

    chain_id: int
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas: int
    token_contract: str | None = None
    """ERC-20 contract address for tokens; ``None`` for the chain's native coin."""


class PayoutFunding(Protocol):
    """Chain data a payout's transaction is built from (the chains' watchers and RPC).

    Contract: read-only; raises ``UnavailableError`` when the chain cannot be reached and
    ``NotFoundError`` for a source it knows nothing about. Never returns a secret.
    """

    def bitcoin(self, source: str, network: Network) -> BitcoinFunding:
        """Spendable outputs of ``source`` (a key account id or ``hot:<label>``)."""
        ...

    def evm(self, asset: str, sender: str) -> EvmFunding:
        """The sender's next nonce and current fees for a transfer of ``asset``."""
        ...


class CustodyStore(KeychainStore, AddressPool, OperatorStore, PayoutStore, AuditLog, Protocol):
    """Everything custody keeps, as one adapter implements it."""
