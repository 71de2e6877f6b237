"""API wallets over SQL (the ``WalletStore`` port): the wallets table and posting pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import RowMapping

from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.domain.ledger import AccountKind, AccountRef, OwnerType
from dpgnode.domain.wallets import Wallet
from dpgnode.errors import IntegrityError
from dpgnode.ports.uow import Tx
from dpgnode.ports.wallets import PostingFilter, WalletPosting

_W = tables.wallets


class SqlWalletStore:
    """The wallets table and wallet views of the journal, over one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def open_wallet(self, tx: Tx, wallet: Wallet) -> tuple[Wallet, bool]:
        if not isinstance(tx, SqlTx):
            raise IntegrityError("wallet storage runs only inside the SQL writer's transaction")
        found = tx.execute(
            select(_W).where(
                _W.c.owner_type == str(wallet.owner_type),
                _W.c.owner_id == wallet.owner_id,
                _W.c.asset == wallet.asset,
            )
        ).mappings().first()
        if found is not None:
            return _wallet(found), False
        tx.execute(insert(_W).values(
            id=wallet.id, owner_type=str(wallet.owner_type), owner_id=wallet.owner_id,
            asset=wallet.asset, label=wallet.label, created_at=wallet.created_at,
        ))
        return wallet, True

    def wallet(self, wallet_id: str) -> Wallet | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_W).where(_W.c.id == wallet_id)).mappings().first()
        return None if row is None else _wallet(row)

    def wallets(
        self, *, owner_type: OwnerType | None = None, owner_ids: frozenset[str] | None = None,
        asset: str | None = None, offset: int = 0, limit: int | None = None,
    ) -> Sequence[Wallet]:
        query = select(_W).order_by(_W.c.created_at, _W.c.id).offset(offset).limit(limit)
        if owner_type is not None:
            query = query.where(_W.c.owner_type == str(owner_type))
        if owner_ids is not None:
            query = query.where(_W.c.owner_id.in_(sorted(owner_ids)))
        if asset is not None:
            query = query.where(_W.c.asset == asset)
        with self._engine.connect() as conn:
            return [_wallet(r) for r in conn.execute(query).mappings()]

    def postings(self, query: PostingFilter) -> Sequence[WalletPosting]:
        # Pages by entry, never splitting one: a hold moves value between two accounts
        # of the same wallet, and both halves belong on the same page.
        p, j, a = tables.postings, tables.journal, tables.accounts
        codes = [ref.code for ref in query.accounts]
        entries: Any = (
            select(j.c.seq)
            .join(p, p.c.entry_seq == j.c.seq)
            .join(a, a.c.id == p.c.account_id)
            .where(a.c.code.in_(codes))
            .group_by(j.c.seq)
            .order_by(j.c.seq.desc())
            .limit(query.limit)
        )
        if query.kinds:
            entries = entries.where(j.c.kind.in_(query.kinds))
        if query.since is not None:
            entries = entries.where(j.c.created_at >= query.since)
        if query.until is not None:
            entries = entries.where(j.c.created_at < query.until)
        if query.before_seq is not None:
            entries = entries.where(j.c.seq < query.before_seq)
        with self._engine.connect() as conn:
            seqs = [int(r[0]) for r in conn.execute(entries)]
            if not seqs:
                return []
            rows = conn.execute(
                select(j.c.seq, j.c.id, j.c.created_at, j.c.kind, j.c.memo, p.c.units,
                       a.c.owner_type, a.c.owner_id, a.c.asset,
                       a.c.kind.label("account_kind"))
                .join(j, j.c.seq == p.c.entry_seq)
                .join(a, a.c.id == p.c.account_id)
                .where(p.c.entry_seq.in_(seqs), a.c.code.in_(codes))
                .order_by(j.c.seq.desc(), p.c.id)
            ).mappings()
            return [_posting(r) for r in rows]


def _wallet(row: RowMapping) -> Wallet:
    return Wallet(
        id=row["id"], owner_type=OwnerType(row["owner_type"]), owner_id=row["owner_id"],
        asset=row["asset"], label=row["label"], created_at=row["created_at"],
    )


def _posting(row: RowMapping) -> WalletPosting:
    ref = AccountRef(
        OwnerType(row["owner_type"]), row["owner_id"], row["asset"],
        AccountKind(row["account_kind"]),
    )
    return WalletPosting(
        seq=int(row["seq"]), entry_id=row["id"], created_at=row["created_at"],
        kind=row["kind"], memo=row["memo"], account=ref, units=int(row["units"]),
    )
