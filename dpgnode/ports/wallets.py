"""Storage of API wallets (``wal_…``) and the posting history shown through them.

Contract: ``open_wallet`` is insert-or-get by ``(owner_type, owner_id, asset)`` inside the
command's transaction, so two concurrent opens of one owner's asset return one wallet;
reads see committed data only; ``postings`` pages newest first by journal sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dpgnode.domain.ledger import AccountRef, OwnerType
from dpgnode.domain.wallets import Wallet
from dpgnode.ports.uow import Tx


@dataclass(frozen=True, slots=True)
class WalletPosting:
    """One posting on one of a wallet's accounts."""

    seq: int
    entry_id: str
    created_at: datetime
    kind: str
    memo: str
    account: AccountRef
    units: int


@dataclass(frozen=True, slots=True)
class PostingFilter:
    """Which postings to list: accounts, journal kinds, a time span, and a page."""

    accounts: tuple[AccountRef, ...]
    kinds: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    before_seq: int | None = None
    limit: int = 50


class WalletStore(Protocol):
    """The wallets table and the wallet views of the journal."""

    def open_wallet(self, tx: Tx, wallet: Wallet) -> tuple[Wallet, bool]:
        """The owner's wallet in the asset: ``wallet`` inserted now (True) or the existing one."""
        ...

    def wallet(self, wallet_id: str) -> Wallet | None:
        """The wallet, if any."""
        ...

    def wallets(
        self, *, owner_type: OwnerType | None = None, owner_ids: frozenset[str] | None = None,
        asset: str | None = None, offset: int = 0, limit: int | None = None,
    ) -> Sequence[Wallet]:
        """Wallets matching every given filter, oldest first: ``limit`` after ``offset``."""
        ...

    def postings(self, query: PostingFilter) -> Sequence[WalletPosting]:
        """Postings on ``query.accounts`` newest first, at most ``query.limit``."""
        ...
