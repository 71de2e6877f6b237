"""Read side over SQL: balances, statements, entries in order, stores and API keys.

Reads use their own pooled connections (WAL lets them run beside the writer) and see only
committed data; ``snapshot()`` gives reads that all see the same committed state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from dpgnode.adapters.storage import mappers, tables
from dpgnode.domain.access import ApiKey
from dpgnode.domain.hold import Hold, HoldStatus
from dpgnode.domain.ledger import Account, AccountRef, JournalEntry, Posting
from dpgnode.domain.store import Store
from dpgnode.ports.queries import StatementLine

_BATCH = 2000


class SqlQueries:
    """``LedgerReader`` and ``AccessReader`` over one engine."""

    def __init__(self, engine: Engine, connection: Connection | None = None) -> None:
        self._engine = engine
        self._bound = connection

    @contextmanager
    def snapshot(self) -> Iterator[SqlQueries]:
        """Reads that all see one committed state, inside one read transaction.

        REPEATABLE READ on PostgreSQL; on SQLite (WAL) a read transaction is a snapshot.
        Verification needs it on a live node: entries and balances read a commit apart
        disagree.
        """
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield SqlQueries(self._engine, conn)

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        if self._bound is not None:
            yield self._bound
            return
        with self._engine.connect() as conn:
            yield conn

    # -- ledger ------------------------------------------------------------------------

    def accounts(
        self, owner_type: str | None = None, owner_id: str | None = None, asset: str | None = None
    ) -> Sequence[Account]:
        a = tables.accounts
        query = select(a).order_by(a.c.code)
        if owner_type:
            query = query.where(a.c.owner_type == owner_type)
        if owner_id:
            query = query.where(a.c.owner_id == owner_id)
        if asset:
            query = query.where(a.c.asset == asset)
        with self._connect() as conn:
            return [mappers.account(row) for row in conn.execute(query).mappings()]

    def account(self, ref: AccountRef) -> Account | None:
        with self._connect() as conn:
            row = conn.execute(
                select(tables.accounts).where(tables.accounts.c.code == ref.code)
            ).mappings().first()
        return None if row is None else mappers.account(row)

    def statement(
        self, ref: AccountRef, start: datetime | None, end: datetime | None
    ) -> tuple[int, Sequence[StatementLine]]:
        p, j, a = tables.postings, tables.journal, tables.accounts
        query = (
            select(j.c.id, j.c.seq, j.c.created_at, j.c.kind, j.c.memo, p.c.units)
            .join(j, j.c.seq == p.c.entry_seq)
            .join(a, a.c.id == p.c.account_id)
            .where(a.c.code == ref.code)
            .order_by(p.c.entry_seq)
        )
        if end is not None:
            query = query.where(j.c.created_at < end)
        opening = 0
        lines: list[StatementLine] = []
        with self._connect() as conn:
            for row in conn.execute(query).mappings():
                if start is not None and row["created_at"] < start:
                    opening += row["units"]
                    continue
                balance = (lines[-1].balance_after if lines else opening) + row["units"]
                lines.append(
                    StatementLine(
                        row["id"], row["seq"], row["created_at"], row["kind"], row["memo"],
                        row["units"], balance,
                    )
                )
        return opening, lines

    def entries(self, after: int = 0) -> Iterator[JournalEntry]:
        """Entries in sequence order, those with ``seq > after`` (all by default)."""
        j, p, a = tables.journal, tables.postings, tables.accounts
        with self._connect() as conn:
            while True:
                rows = list(
                    conn.execute(
                        select(j).where(j.c.seq > after).order_by(j.c.seq).limit(_BATCH)
                    ).mappings()
                )
                if not rows:
                    return
                postings: dict[int, list[Posting]] = defaultdict(list)
                for prow in conn.execute(
                    select(p.c.entry_seq, p.c.units, a.c.owner_type, a.c.owner_id, a.c.asset,
                           a.c.kind)
                    .join(a, a.c.id == p.c.account_id)
                    .where(p.c.entry_seq > after, p.c.entry_seq <= rows[-1]["seq"])
                    .order_by(p.c.id)
                ).mappings():
                    postings[prow["entry_seq"]].append(
                        Posting(mappers.account_ref(prow), prow["units"])
                    )
                for row in rows:
                    yield mappers.entry(row, postings[row["seq"]])
                after = rows[-1]["seq"]

    def entry(self, entry_id: str) -> JournalEntry | None:
        return self._one_entry(tables.journal.c.id == entry_id)

    def entry_by_key(self, idempotency_key: str) -> JournalEntry | None:
        return self._one_entry(tables.journal.c.idempotency_key == idempotency_key)

    def _one_entry(self, condition: Any) -> JournalEntry | None:
        j, p, a = tables.journal, tables.postings, tables.accounts
        with self._connect() as conn:
            row = conn.execute(select(j).where(condition)).mappings().first()
            if row is None:
                return None
            postings = [
                Posting(mappers.account_ref(prow), prow["units"])
                for prow in conn.execute(
                    select(p.c.units, a.c.owner_type, a.c.owner_id, a.c.asset, a.c.kind)
                    .join(a, a.c.id == p.c.account_id)
                    .where(p.c.entry_seq == row["seq"])
                    .order_by(p.c.id)
                ).mappings()
            ]
        return mappers.entry(row, postings)

    def head(self) -> tuple[int, str]:
        with self._connect() as conn:
            row = conn.execute(select(tables.ledger_head)).mappings().one()
        return int(row["seq"]), row["hash"]

    def open_holds(self) -> Sequence[Hold]:
        return self._holds(tables.holds.c.status == str(HoldStatus.OPEN))

    def hold(self, hold_id: str) -> Hold | None:
        found = self._holds(tables.holds.c.id == hold_id)
        return found[0] if found else None

    def _holds(self, condition: Any) -> list[Hold]:
        h, a = tables.holds, tables.accounts
        with self._connect() as conn:
            rows = conn.execute(
                select(h, a.c.owner_type, a.c.owner_id, a.c.asset, a.c.kind)
                .join(a, a.c.id == h.c.account_id)
                .where(condition)
                .order_by(h.c.id)
            ).mappings()
            return [mappers.hold(row, mappers.account_ref(row)) for row in rows]

    # -- stores and keys ---------------------------------------------------------------

    def store(self, store_id: str) -> Store | None:
        with self._connect() as conn:
            row = conn.execute(
                select(tables.stores).where(tables.stores.c.id == store_id)
            ).mappings().first()
        return None if row is None else mappers.store(row)

    def stores(self, ids: frozenset[str] | None = None) -> Sequence[Store]:
        query = select(tables.stores).order_by(tables.stores.c.created_at, tables.stores.c.id)
        if ids is not None:
            query = query.where(tables.stores.c.id.in_(sorted(ids)))
        with self._connect() as conn:
            return [mappers.store(row) for row in conn.execute(query).mappings()]

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self._connect() as conn:
            row = conn.execute(
                select(tables.api_keys).where(tables.api_keys.c.key_hash == key_hash)
            ).mappings().first()
        return None if row is None else mappers.api_key(row)

    def api_key(self, key_id: str) -> ApiKey | None:
        with self._connect() as conn:
            row = conn.execute(
                select(tables.api_keys).where(tables.api_keys.c.id == key_id)
            ).mappings().first()
        return None if row is None else mappers.api_key(row)

    def api_keys(self) -> Sequence[ApiKey]:
        with self._connect() as conn:
            rows = conn.execute(
                select(tables.api_keys).order_by(tables.api_keys.c.created_at)
            ).mappings()
            return [mappers.api_key(row) for row in rows]
