from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dpgnode.domain.access import ApiKey
from dpgnode.domain.hold import Hold
from dpgnode.domain.ledger import Account, AccountRef, JournalEntry
from dpgnode.domain.store import Store


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One posting on an account with the balance right after it."""

    entry_id: str
    seq: int
    created_at: datetime
    kind: str
    memo: str
    units: int
    balance_after: int


class LedgerReader(Protocol):
    """Read side of the ledger. Contract: reads see only committed data."""

    def accounts(
        self, owner_type: str | None = None, owner_id: str | None = None, asset: str | None = None
    ) -> Sequence[Account]:
        """Accounts matching every given filter, by code."""
        ...

    def account(self, ref: AccountRef) -> Account | None:
        """The account, or ``None`` if it was never opened."""
        ...

    def statement(
        self, ref: AccountRef, start: datetime | None, end: datetime | None
    ) -> tuple[int, Sequence[StatementLine]]:
        """Opening balance at ``start`` and the postings in ``[start, end)``."""
        ...

    def entries(self) -> Iterator[JournalEntry]:
        """Every entry in sequence order (for verification)."""
        ...

    def entry(self, entry_id: str) -> JournalEntry | None:
        """The entry with this id, if any."""
        ...

    def entry_by_key(self, idempotency_key: str) -> JournalEntry | None:
        """The entry posted under this idempotency key, if any."""
        ...

    def head(self) -> tuple[int, str]:
        """Sequence number and hash of the last committed entry."""
        ...

    def open_holds(self) -> Sequence[Hold]:
        """Every hold that still reserves value."""
        ...

    def hold(self, hold_id: str) -> Hold | None:
        """The hold with this id, if any."""
        ...


class AccessReader(Protocol):
    """Read side of stores and API keys."""

    def store(self, store_id: str) -> Store | None:
        """The store with this id (archived ones included), if any."""
        ...

    def stores(self, ids: frozenset[str] | None = None) -> Sequence[Store]:
        """Stores, limited to ``ids`` when given."""
        ...

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key whose secret has this SHA-256 digest, if any."""
        ...

    def api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, if any."""
        ...

    def api_keys(self) -> Sequence[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        ...
