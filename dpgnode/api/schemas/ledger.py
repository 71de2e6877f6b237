"""Ledger bodies. Amounts are decimal strings with the asset's own number of decimals."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from dpgnode.api.schemas.base import Input, Output
from dpgnode.domain.ledger import Account, JournalEntry
from dpgnode.domain.money import AssetRegistry
from dpgnode.ports.queries import StatementLine


class PostingIn(Input):
    account: str
    """``owner_type:owner_id:ASSET:kind``; the asset of the amount is the account's."""
    amount: str
    """Signed decimal string: positive credits the account, negative debits it."""


class PostEntryRequest(Input):
    postings: list[PostingIn]
    idempotency_key: str | None = None
    """Identifies the entry for ever; defaults to the ``Idempotency-Key`` header."""
    memo: str | None = None


class ReverseEntryRequest(Input):
    idempotency_key: str | None = None
    """Defaults to the ``Idempotency-Key`` header, else ``reversal-of:<entryId>``."""
    memo: str | None = None


class PostingOut(Output):
    account: str
    asset: str
    amount: str


class EntryData(Output):
    id: str
    seq: int
    idempotency_key: str
    kind: str
    memo: str
    reverses: str | None
    created_time: int
    """Unix seconds."""
    postings: list[PostingOut]
    hash: str

    @classmethod
    def of(cls, entry: JournalEntry, assets: AssetRegistry) -> EntryData:
        return cls(
            id=entry.id, seq=entry.seq, idempotency_key=entry.idempotency_key,
            kind=str(entry.kind), memo=entry.memo, reverses=entry.reverses,
            created_time=int(entry.created_at.timestamp()),
            postings=[
                PostingOut(
                    account=p.account.code, asset=p.account.asset,
                    amount=assets.format(p.units, p.account.asset),
                )
                for p in entry.postings
            ],
            hash=entry.hash,
        )


class AccountData(Output):
    account: str
    owner_type: str
    owner_id: str
    asset: str
    kind: str
    balance: str
    allow_overdraft: bool

    @classmethod
    def of(cls, account: Account, assets: AssetRegistry) -> AccountData:
        ref = account.ref
        return cls(
            account=ref.code, owner_type=str(ref.owner_type), owner_id=ref.owner_id,
            asset=ref.asset, kind=str(ref.kind),
            balance=assets.format(account.balance, ref.asset),
            allow_overdraft=account.allow_overdraft,
        )


class StatementLineData(Output):
    entry_id: str
    seq: int
    created_time: int
    kind: str
    memo: str
    amount: str
    balance: str

    @classmethod
    def of(cls, line: StatementLine, text: Callable[[int], str]) -> StatementLineData:
        """One posting of a statement, amounts formatted by ``text`` in the account's asset."""
        return cls(
            entry_id=line.entry_id, seq=line.seq,
            created_time=int(line.created_at.timestamp()), kind=line.kind,
            memo=line.memo, amount=text(line.units), balance=text(line.balance_after),
        )


class StatementData(Output):
    account: str
    asset: str
    from_: int | None = msgspec.field(name="from")
    """Unix seconds, inclusive; null: from the first entry."""
    to: int | None
    """Unix seconds, exclusive; null: up to now."""
    opening_balance: str
    closing_balance: str
    lines: list[StatementLineData]

    @classmethod
    def of(
        cls, account: Account, span: tuple[int | None, int | None], opening: int,
        lines: Sequence[StatementLine], assets: AssetRegistry,
    ) -> StatementData:
        asset = account.ref.asset

        def text(units: int) -> str:
            return assets.format(units, asset)

        return cls(
            account=account.ref.code, asset=asset, from_=span[0], to=span[1],
            opening_balance=text(opening),
            closing_balance=text(lines[-1].balance_after if lines else opening),
            lines=[StatementLineData.of(line, text) for line in lines],
        )


class VerifyData(Output):
    ok: bool
    entries: int
    accounts: int
    totals: dict[str, str]
    problems: list[str]
