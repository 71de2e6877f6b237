"""API wallets: open, list, balances, transactions, statements and internal transfers.

A wallet is a view over one owner's ``available`` and ``held`` ledger accounts in one asset
(``dpgnode.domain.wallets``); it never holds value itself. A transfer between two wallets is
one ledger entry (available -> available) posted exactly once under its idempotency key, so
a retried request never moves money twice.

Visibility is decided by the caller's ``WalletScope``: ``None`` stores means every wallet;
otherwise only wallets of those stores. A wallet outside the scope is reported as not found,
never as forbidden (its existence is not revealed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dpgnode.domain.ledger import (
    AccountKind,
    AccountRef,
    EntryDraft,
    EntryKind,
    OwnerType,
    Posting,
)
from dpgnode.domain.money import AssetRegistry
from dpgnode.domain.wallets import Wallet, WalletBalance, transfer_key
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.ports.clock import Clock
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.queries import LedgerReader, StatementLine
from dpgnode.ports.uow import Hints, Tx, Writer
from dpgnode.ports.wallets import PostingFilter, WalletPosting, WalletStore
from dpgnode.services.ledger import Posted, post_command

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class WalletScope:
    """Which wallets a caller may see: ``stores=None`` means all of them."""

    stores: frozenset[str] | None = None

    def sees(self, wallet: Wallet) -> bool:
        """Whether the caller may see ``wallet``."""
        return self.stores is None or (
            wallet.owner_type is OwnerType.STORE and wallet.owner_id in self.stores
        )


@dataclass(frozen=True, slots=True)
class Opened:
    """A wallet and whether this call created it."""

    wallet: Wallet
    created: bool


@dataclass(frozen=True, slots=True)
class PostingPage:
    """A page of postings, newest first; ``next_before`` continues it (None: the end)."""

    postings: tuple[WalletPosting, ...]
    next_before: int | None


class WalletService:
    """API wallets over the wallet store, the ledger's read side and the writer."""

    def __init__(
        self, store: WalletStore, ledger: LedgerReader, writer: Writer, ids: IdGenerator,
        clock: Clock, assets: AssetRegistry,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._writer = writer
        self._ids = ids
        self._clock = clock
        self._assets = assets

    def open(
        self, owner_type: OwnerType, owner_id: str, asset: str, label: str = ""
    ) -> Opened:
        """The owner's wallet in ``asset``, created if it does not exist yet.

        Raises:
            NotFoundError: unknown asset.
            ValidationError: a malformed owner id or label.
        """
        self._assets.require(asset)
        if len(label) > 200:
            raise ValidationError("label is longer than 200 characters", field="label")
        candidate = Wallet(self._ids.new("wal"), owner_type, owner_id, asset, label,
                           self._clock.now())
        AccountRef.parse(candidate.available.code, field="ownerId")  # checks the owner id

        def command(tx: Tx) -> Opened:
            wallet, created = self._store.open_wallet(tx, candidate)
            return Opened(wallet, created)

        return self._writer.run(command)

    def wallets(
        self, scope: WalletScope, *, owner_type: OwnerType | None = None,
        owner_id: str | None = None, asset: str | None = None, offset: int = 0,
        limit: int = MAX_PAGE,
    ) -> list[Wallet]:
        """The wallets ``scope`` sees, optionally filtered, oldest first, a page at a time.

        Raises:
            ValidationError: ``limit`` outside 1..100 or a negative ``offset``.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be 1..{MAX_PAGE}", field="limit")
        if offset < 0:
            raise ValidationError("offset must not be negative", field="offset")
        owner_ids = None if owner_id is None else frozenset({owner_id})
        if scope.stores is not None:
            owner_type = OwnerType.STORE if owner_type in (None, OwnerType.STORE) else owner_type
            owner_ids = scope.stores if owner_ids is None else owner_ids & scope.stores
        found = self._store.wallets(
            owner_type=owner_type, owner_ids=owner_ids, asset=asset, offset=offset, limit=limit
        )
        return [w for w in found if scope.sees(w)]

    def wallet(self, wallet_id: str, scope: WalletScope) -> Wallet:
        """One wallet the scope sees, else ``NotFoundError``."""
        wallet = self._store.wallet(wallet_id)
        if wallet is None or not scope.sees(wallet):
            raise NotFoundError(f"no wallet {wallet_id[:64]}", details={"field": "walletId"})
        return wallet

    def balance(self, wallet: Wallet) -> WalletBalance:
        """Available and held balances (0 for accounts not opened yet)."""
        available = self._ledger.account(wallet.available)
        held = self._ledger.account(wallet.held)
        return WalletBalance(
            wallet,
            available.balance if available is not None else 0,
            held.balance if held is not None else 0,
        )

    def transactions(
        self, wallet: Wallet, *, kinds: Sequence[str] = (), account: AccountKind | None = None,
        since: datetime | None = None, until: datetime | None = None,
        before: int | None = None, limit: int = 50,
    ) -> PostingPage:
        """A page of the wallet's postings, newest first (``limit`` 1..100 entries).

        Raises:
            ValidationError: an unknown entry kind, an account kind other than available
                or held, or a limit outside 1..100.
        """
        known = {str(k) for k in EntryKind}
        for kind in kinds:
            if kind not in known:
                raise ValidationError(f"unknown kind {kind[:20]!r}", field="kind")
        if account not in (None, AccountKind.AVAILABLE, AccountKind.HELD):
            raise ValidationError("account must be available or held", field="account")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be 1..{MAX_PAGE}", field="limit")
        refs = (wallet.available, wallet.held) if account is None else (
            wallet.available.sibling(account),)
        found = self._store.postings(PostingFilter(
            accounts=refs, kinds=tuple(kinds), since=since, until=until, before_seq=before,
            limit=limit,
        ))
        entries = {p.seq for p in found}
        next_before = min(entries) if len(entries) == limit else None
        return PostingPage(tuple(found), next_before)

    def statement(
        self, wallet: Wallet, since: datetime | None, until: datetime | None
    ) -> tuple[int, Sequence[StatementLine]]:
        """Opening balance and the available account's postings in ``[since, until)``."""
        return self._ledger.statement(wallet.available, since, until)

    def transfer(
        self, source: Wallet, destination_id: str, units: int, idempotency_key: str,
        memo: str = "",
    ) -> tuple[Posted, Wallet]:
        """Move ``units`` from ``source`` to another wallet in one ledger entry, once.

        Raises:
            NotFoundError: no destination wallet.
            ValidationError: same wallet, other asset, or a non-positive amount.
            InsufficientFundsError: the source's available balance is too small.
            IdempotencyKeyReusedError: the key was used for a different transfer.
        """
        destination = self._store.wallet(destination_id)
        if destination is None:
            raise NotFoundError(f"no wallet {destination_id[:64]}",
                                details={"field": "toWalletId"})
        if destination.id == source.id:
            raise ValidationError("a wallet cannot transfer to itself", field="toWalletId")
        if destination.asset != source.asset:
            raise ValidationError(
                f"the destination holds {destination.asset}, not {source.asset}",
                field="toWalletId",
            )
        if type(units) is not int or units <= 0:
            raise ValidationError("amount must be positive", field="amount")
        draft = EntryDraft(
            idempotency_key=transfer_key(source.id, idempotency_key),
            postings=(Posting(source.available, -units), Posting(destination.available, units)),
            kind=EntryKind.TRANSFER,
            memo=memo or f"transfer {source.id} -> {destination.id}",
            metadata={"origin": "wallet_transfer", "from": source.id, "to": destination.id},
        )
        hints = Hints((draft.idempotency_key,), (source.available, destination.available))
        return self._writer.run(post_command(draft), hints), destination

