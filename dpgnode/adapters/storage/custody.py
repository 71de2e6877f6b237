"""Custody storage over SQL (the ``CustodyStore`` port).

Writes run through the command's :class:`SqlTx` (``tx.execute``: inside the command's
savepoint, committed with the batch). Reads without a transaction use pooled connections
and see committed data only.

Atomicity: ``reserve_index`` is one ``UPDATE … SET next_index = next_index + 1 RETURNING``;
the audit append reads and moves its head row inside the writer's transaction, which on
PostgreSQL already holds ``ledger_head FOR UPDATE`` (so two nodes serialise) and here also
locks the audit head itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select, update
from sqlalchemy.engine import RowMapping

from dpgnode.adapters.storage import custody_rows as mapped
from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.domain.custody.audit import AuditEvent, AuditRecord, seal
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.custody.policy import SpendHistory
from dpgnode.domain.custody.wallet import (
    EXTERNAL_BRANCH,
    IssuedAddress,
    KeyAccount,
    Keychain,
)
from dpgnode.errors import IntegrityError, NotFoundError
from dpgnode.ports.custody import UsedMark
from dpgnode.ports.uow import Tx

_K, _A, _ADDR = tables.custody_keychains, tables.custody_accounts, tables.custody_addresses
_OP, _P, _APPR = tables.custody_operators, tables.custody_payouts, tables.custody_approvals
_AUD, _HEAD = tables.custody_audit, tables.custody_audit_head
_PAGE = 2000


def _sql(tx: Tx) -> SqlTx:
    if not isinstance(tx, SqlTx):
        raise IntegrityError("custody storage runs only inside the SQL writer's transaction")
    return tx


class SqlCustodyStore:
    """Keychains, address pools, operators, payouts and the audit log over one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, query: Any) -> list[RowMapping]:
        with self._engine.connect() as conn:
            return list(conn.execute(query).mappings())

    def _row(self, query: Any) -> RowMapping | None:
        rows = self._rows(query.limit(1))
        return rows[0] if rows else None

    # -- keychains ---------------------------------------------------------------------

    def add_keychain(self, tx: Tx, keychain: Keychain, accounts: Sequence[KeyAccount]) -> None:
        sql = _sql(tx)
        sql.execute(insert(_K).values(mapped.keychain_row(keychain)))
        for account in accounts:
            sql.execute(insert(_A).values(mapped.account_row(account)))

    def keychain(self, keychain_id: str) -> Keychain | None:
        row = self._row(select(_K).where(_K.c.id == keychain_id))
        return None if row is None else mapped.keychain(row)

    def keychains(self) -> Sequence[Keychain]:
        query = select(_K).order_by(_K.c.created_at, _K.c.id)
        return [mapped.keychain(r) for r in self._rows(query)]

    def account(self, account_id: str) -> KeyAccount | None:
        row = self._row(select(_A).where(_A.c.id == account_id))
        return None if row is None else mapped.account(row)

    def accounts(self, keychain_id: str | None = None) -> Sequence[KeyAccount]:
        query = select(_A).order_by(_A.c.created_at, _A.c.id)
        if keychain_id is not None:
            query = query.where(_A.c.keychain_id == keychain_id)
        return [mapped.account(r) for r in self._rows(query)]

    # -- address pool ------------------------------------------------------------------

    def account_in(self, tx: Tx, account_id: str) -> KeyAccount | None:
        row = _sql(tx).execute(select(_A).where(_A.c.id == account_id)).mappings().first()
        return None if row is None else mapped.account(row)

    def reserve_index(self, tx: Tx, account_id: str, branch: int) -> int:
        column = _A.c.next_index if branch == EXTERNAL_BRANCH else _A.c.next_change_index
        row = _sql(tx).execute(
            update(_A)
            .where(_A.c.id == account_id)
            .values({column: column + 1})
            .returning(column)
        ).first()
        if row is None:
            raise NotFoundError(f"no key account {account_id[:64]}", details={"field": "account"})
        return int(row[0]) - 1

    def save_address(self, tx: Tx, address: IssuedAddress) -> None:
        _sql(tx).execute(
            insert(_ADDR).values(
                account_id=address.account_id, branch=address.branch,
                address_index=address.index, address=address.address,
                reference=address.reference, issued_at=address.issued_at,
                used_at=address.used_at, owner=address.owner,
            )
        )

    def mark_used(self, tx: Tx, address: str, at: datetime) -> UsedMark | None:
        sql = _sql(tx)
        row = sql.execute(select(_ADDR).where(_ADDR.c.address == address)).mappings().first()
        if row is None:
            return None
        found = mapped.address(row)
        if found.used_at is not None:
            return UsedMark(found, changed=False)
        sql.execute(update(_ADDR).where(_ADDR.c.id == row["id"]).values(used_at=at))
        if found.branch == EXTERNAL_BRANCH:
            sql.execute(
                update(_A)
                .where(and_(_A.c.id == found.account_id, _A.c.last_used_index < found.index))
                .values(last_used_index=found.index)
            )
        return UsedMark(mapped.replace_used(found, at), changed=True)

    def address(self, address: str) -> IssuedAddress | None:
        row = self._row(select(_ADDR).where(_ADDR.c.address == address))
        return None if row is None else mapped.address(row)

    def addresses(
        self, account_id: str, branch: int, *, used: bool | None, offset: int, limit: int
    ) -> Sequence[IssuedAddress]:
        query = (
            select(_ADDR)
            .where(_ADDR.c.account_id == account_id, _ADDR.c.branch == branch)
            .order_by(_ADDR.c.address_index)
            .offset(offset)
            .limit(limit)
        )
        if used is not None:
            query = query.where(
                _ADDR.c.used_at.is_not(None) if used else _ADDR.c.used_at.is_(None)
            )
        return [mapped.address(r) for r in self._rows(query)]

    def used_indexes(self, account_id: str, branch: int) -> Sequence[int]:
        query = (
            select(_ADDR.c.address_index)
            .where(
                _ADDR.c.account_id == account_id,
                _ADDR.c.branch == branch,
                _ADDR.c.used_at.is_not(None),
            )
            .order_by(_ADDR.c.address_index)
        )
        return [int(r["address_index"]) for r in self._rows(query)]

    # -- operators ---------------------------------------------------------------------

    def save_operator(self, tx: Tx, operator: Operator) -> None:
        values = {
            "id": operator.id, "name": operator.name, "token_hash": operator.token_hash,
            "created_at": operator.created_at, "disabled_at": operator.disabled_at,
        }
        sql = _sql(tx)
        done = sql.execute(update(_OP).where(_OP.c.id == operator.id).values(values))
        if done.rowcount == 0:
            sql.execute(insert(_OP).values(values))

    def operator_in(self, tx: Tx, *, name: str) -> Operator | None:
        row = _sql(tx).execute(select(_OP).where(_OP.c.name == name)).mappings().first()
        return None if row is None else mapped.operator(row)

    def operator_by_token_hash(self, token_hash: str) -> Operator | None:
        row = self._row(select(_OP).where(_OP.c.token_hash == token_hash))
        return None if row is None else mapped.operator(row)

    def operators(self) -> Sequence[Operator]:
        rows = self._rows(select(_OP).order_by(_OP.c.created_at, _OP.c.id))
        return [mapped.operator(r) for r in rows]

    # -- payouts -----------------------------------------------------------------------

    def save_payout(self, tx: Tx, payout: Payout) -> None:
        values = mapped.payout_row(payout)
        sql = _sql(tx)
        done = sql.execute(update(_P).where(_P.c.id == payout.id).values(values))
        if done.rowcount == 0:
            sql.execute(insert(_P).values(values))

    def payout_in(self, tx: Tx, payout_id: str) -> Payout | None:
        row = _sql(tx).execute(select(_P).where(_P.c.id == payout_id)).mappings().first()
        return None if row is None else mapped.payout(row)

    def payout_by_request_key(self, tx: Tx, request_key: str) -> Payout | None:
        row = _sql(tx).execute(
            select(_P).where(_P.c.request_key == request_key)
        ).mappings().first()
        return None if row is None else mapped.payout(row)

    def spend_history(
        self, tx: Tx, asset: str, *, day_since: datetime, hour_since: datetime,
        exclude: str | None = None,
    ) -> SpendHistory:
        counting = [str(s) for s in PayoutStatus if s.counts_against_limits]
        query = select(_P.c.id, _P.c.units, _P.c.created_at).where(
            _P.c.asset == asset, _P.c.created_at > day_since, _P.c.status.in_(counting)
        )
        units = count = 0
        # Amounts are summed in Python: SQLite would add TEXT amounts as floats.
        for row in _sql(tx).execute(query).mappings():
            if row["id"] == exclude:
                continue
            units += int(row["units"])
            count += row["created_at"] > hour_since
        return SpendHistory(units_last_day=units, payouts_last_hour=count)

    def add_approval(self, tx: Tx, payout_id: str, operator_id: str, at: datetime) -> bool:
        sql = _sql(tx)
        exists = sql.execute(
            select(_APPR.c.id).where(
                _APPR.c.payout_id == payout_id, _APPR.c.operator_id == operator_id
            )
        ).first()
        if exists is not None:
            return False
        sql.execute(
            insert(_APPR).values(payout_id=payout_id, operator_id=operator_id, approved_at=at)
        )
        return True

    def approvers(self, tx: Tx, payout_id: str) -> frozenset[str]:
        rows = _sql(tx).execute(
            select(_APPR.c.operator_id).where(_APPR.c.payout_id == payout_id)
        )
        return frozenset(str(r[0]) for r in rows)

    def payout(self, payout_id: str) -> Payout | None:
        row = self._row(select(_P).where(_P.c.id == payout_id))
        return None if row is None else mapped.payout(row)

    def payouts(
        self, *, status: PayoutStatus | None = None, asset: str | None = None, limit: int = 100
    ) -> Sequence[Payout]:
        query = select(_P).order_by(_P.c.created_at.desc(), _P.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(_P.c.status == str(status))
        if asset is not None:
            query = query.where(_P.c.asset == asset)
        return [mapped.payout(r) for r in self._rows(query)]

    def approvals(self, payout_id: str) -> Sequence[tuple[str, datetime]]:
        rows = self._rows(
            select(_APPR.c.operator_id, _APPR.c.approved_at)
            .where(_APPR.c.payout_id == payout_id)
            .order_by(_APPR.c.id)
        )
        return [(str(r["operator_id"]), r["approved_at"]) for r in rows]

    # -- audit log ---------------------------------------------------------------------

    def append_audit(
        self, tx: Tx, event: AuditEvent, *, record_id: str, at: datetime
    ) -> AuditRecord:
        sql = _sql(tx)
        head = sql.execute(
            select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
        ).first()
        if head is None:
            raise IntegrityError(
                "the custody audit head row is missing: the log was tampered with "
                "(`dpg audit verify`); nothing more is appended"
            )
        record = seal(event, seq=int(head.seq) + 1, record_id=record_id, at=at,
                      prev_hash=head.hash)
        sql.execute(
            insert(_AUD).values(
                seq=record.seq, id=record.id, at=record.at, actor=record.actor,
                action=record.action, subject=record.subject, result=record.result,
                rule=record.rule, details=json.dumps(dict(record.details), sort_keys=True),
                prev_hash=record.prev_hash, hash=record.hash,
            )
        )
        sql.execute(update(_HEAD).where(_HEAD.c.id == 1).values(seq=record.seq, hash=record.hash))
        return record

    def audit_records(
        self, *, after_seq: int = 0, limit: int | None = None, subject: str | None = None
    ) -> Sequence[AuditRecord]:
        query = select(_AUD).where(_AUD.c.seq > after_seq).order_by(_AUD.c.seq)
        if subject is not None:
            query = query.where(_AUD.c.subject == subject)
        if limit is not None:
            query = query.limit(limit)
        return [mapped.audit(r) for r in self._rows(query)]

    @contextmanager
    def audit_snapshot(
        self,
    ) -> Iterator[tuple[tuple[int, str] | None, Iterator[AuditRecord]]]:
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                head = conn.execute(
                    select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
                ).first()
                found = None if head is None else (int(head.seq), str(head.hash))
                yield found, _paged_audit(conn)

    def audit_head(self) -> tuple[int, str]:
        row = self._row(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1))
        if row is None:
            raise IntegrityError("the custody audit head row is missing")
        return int(row["seq"]), str(row["hash"])


def _paged_audit(conn: Connection) -> Iterator[AuditRecord]:
    after = 0
    while True:
        rows = list(
            conn.execute(
                select(_AUD).where(_AUD.c.seq > after).order_by(_AUD.c.seq).limit(_PAGE)
            ).mappings()
        )
        yield from (mapped.audit(r) for r in rows)
        if len(rows) < _PAGE:
            return
        after = int(rows[-1]["seq"])
