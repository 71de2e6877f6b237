"""Address pools: issue a fresh address per invoice, mark addresses used, report the gap.

The database is the record of every issued index: issuing takes the next index with one
atomic increment in the writer's transaction and records the address in the same
transaction, so concurrent callers get distinct, consecutive indexes and an index is never
handed out twice, even across restarts (R11: the watchers follow every issued index).

When issuing pushes the run of issued-but-unused receiving addresses past the configured
gap limit, the same transaction emits ``custody.gap_exceeded`` (once per crossing; a
payment to a later address resets the run). An external wallet restored from the xpub with
a smaller gap limit would miss payments; ``gap()`` tells the operator what limit it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dpgnode.domain.custody.extkeys import AccountKey, parse_account_key
from dpgnode.domain.custody.wallet import (
    CHANGE_BRANCH,
    EXTERNAL_BRANCH,
    GapReport,
    IssuedAddress,
    KeyAccount,
    crosses_gap_limit,
    gap_report,
)
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.ledger import AccountRef
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import AddressPool, KeychainStore
from dpgnode.ports.uow import Tx, Writer

GAP_EXCEEDED = "custody.gap_exceeded"
_MAX_REFERENCE = 200


@dataclass(frozen=True, slots=True)
class Issued:
    """A newly issued address, and whether it pushed the gap past the limit."""

    address: IssuedAddress
    gap_exceeded: bool
    trailing_unused: int


class AddressPoolStore(AddressPool, KeychainStore, Protocol):
    """What the address service needs from storage."""


class AddressService:
    """Issues receiving and change addresses and keeps the gap in view."""

    def __init__(
        self, store: AddressPoolStore, writer: Writer, clock: Clock, *, gap_limit: int
    ) -> None:
        if gap_limit < 1:
            raise ValidationError("gap limit must be at least 1", field="gap_limit")
        self._store = store
        self._writer = writer
        self._clock = clock
        self.gap_limit = gap_limit
        self._keys: dict[str, AccountKey] = {}
        self._keys_lock = threading.Lock()

    def issue(
        self, account_id: str, *, reference: str = "", branch: int = EXTERNAL_BRANCH,
        owner: str = "",
    ) -> Issued:
        """Issue the next address of ``branch`` (receiving by default) for ``reference``.

        Raises:
            NotFoundError: no such key account.
            ValidationError: a branch other than receive (0) or change (1), a reference
                longer than 200 characters, or an owner that is not ``owner_type:owner_id``.
        """
        _check_issue(reference, branch, owner)
        return self._writer.run(self._issue_command(account_id, reference, branch, owner))

    async def issue_async(
        self, account_id: str, *, reference: str = "", branch: int = EXTERNAL_BRANCH,
        owner: str = "",
    ) -> Issued:
        """``issue`` for event-loop callers."""
        _check_issue(reference, branch, owner)
        return await self._writer.run_async(
            self._issue_command(account_id, reference, branch, owner))

    def _issue_command(
        self, account_id: str, reference: str, branch: int, owner: str
    ) -> Callable[[Tx], Issued]:
        def command(tx: Tx) -> Issued:
            store = self._store
            index = store.reserve_index(tx, account_id, branch)
            account = store.account_in(tx, account_id)
            if account is None:  # reserve_index raised already; kept for the type checker
                raise NotFoundError(f"no key account {account_id[:64]}")
            text = self.account_key(account).address(branch, index)
            issued = IssuedAddress(
                account.id, branch, index, text, self._clock.now(), reference, owner=owner
            )
            store.save_address(tx, issued)
            trailing = index - account.last_used_index if branch == EXTERNAL_BRANCH else 0
            exceeded = crosses_gap_limit(trailing - 1, trailing, self.gap_limit)
            if exceeded:
                tx.emit(_gap_event(account, trailing, self.gap_limit, index))
            return Issued(issued, exceeded, trailing)

        return command

    def account_key(self, account: KeyAccount) -> AccountKey:
        """The parsed account key (cached: parsing checks the point on the curve)."""
        with self._keys_lock:
            key = self._keys.get(account.id)
        if key is None:
            key = parse_account_key(
                account.xpub, account.network, account.scheme.address_type, field="xpub"
            )
            with self._keys_lock:
                self._keys[account.id] = key
        return key

    def mark_used(self, address: str) -> IssuedAddress:
        """Record that a payment reached ``address`` (the chain watchers call this).

        Idempotent: marking again keeps the first time. Raises ``NotFoundError`` for an
        address the node never issued.
        """
        at = self._clock.now()

        def command(tx: Tx) -> IssuedAddress:
            marked = self._store.mark_used(tx, address, at)
            if marked is None:
                raise NotFoundError("the node never issued this address",
                                    details={"field": "address"})
            if marked.changed:
                tx.emit(DomainEvent(
                    "custody.address_used", f"key_account:{marked.address.account_id}",
                    {"accountId": marked.address.account_id, "address": address,
                     "branch": marked.address.branch, "index": marked.address.index},
                ))
            return marked.address

        return self._writer.run(command)

    def addresses(
        self, account_id: str, *, branch: int = EXTERNAL_BRANCH, used: bool | None = None,
        offset: int = 0, limit: int = 100,
    ) -> list[IssuedAddress]:
        """Issued addresses of a branch in index order (``limit`` 1..1000)."""
        self._require_account(account_id)
        return list(self._store.addresses(
            account_id, branch, used=used, offset=max(0, offset), limit=max(1, min(limit, 1000))
        ))

    def gap(self, account_id: str) -> GapReport:
        """The receiving branch's gap report (see ``domain.custody.wallet.gap_report``)."""
        account = self._require_account(account_id)
        return gap_report(account.next_index, self._store.used_indexes(account_id, 0))

    def _require_account(self, account_id: str) -> KeyAccount:
        account = self._store.account(account_id)
        if account is None:
            raise NotFoundError(f"no key account {account_id[:64]}", details={"field": "account"})
        return account


def _check_issue(reference: str, branch: int, owner: str) -> None:
    if branch not in (EXTERNAL_BRANCH, CHANGE_BRANCH):
        raise ValidationError("branch must be 0 (receive) or 1 (change)", field="branch")
    if len(reference) > _MAX_REFERENCE:
        raise ValidationError("reference is longer than 200 characters", field="reference")
    if owner:
        owner_type, _, owner_id = owner.partition(":")
        AccountRef.parse(f"{owner_type}:{owner_id}:X:available", field="owner")


def _gap_event(account: KeyAccount, trailing: int, limit: int, index: int) -> DomainEvent:
    return DomainEvent(
        GAP_EXCEEDED,
        f"key_account:{account.id}",
        {
            "accountId": account.id,
            "keychainId": account.keychain_id,
            "trailingUnused": trailing,
            "gapLimit": limit,
            "lastIssuedIndex": index,
        },
    )
