"""Rows to domain objects and back, explicitly (no ORM mapping of frozen value objects)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import RowMapping

from dpgnode.domain.access import ApiKey, Permission
from dpgnode.domain.hold import Hold, HoldStatus
from dpgnode.domain.ledger import (
    Account,
    AccountKind,
    AccountRef,
    EntryKind,
    JournalEntry,
    OwnerType,
    Posting,
)
from dpgnode.domain.store import SpeedPolicy, Store

Row = RowMapping


def account_ref(row: Row) -> AccountRef:
    return AccountRef(
        OwnerType(row["owner_type"]), row["owner_id"], row["asset"], AccountKind(row["kind"])
    )


def account(row: Row) -> Account:
    return Account(
        account_ref(row), row["id"], bool(row["allow_overdraft"]), row["balance"], row["version"]
    )


def entry(row: Row, postings: Sequence[Posting]) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        seq=row["seq"],
        idempotency_key=row["idempotency_key"],
        kind=EntryKind(row["kind"]),
        postings=tuple(postings),
        memo=row["memo"],
        reverses=row["reverses"],
        metadata=json.loads(row["metadata"]),
        created_at=row["created_at"],
        content_hash=row["content_hash"],
        hash=row["hash"],
    )


JOURNAL_COLUMNS = (
    "seq", "id", "idempotency_key", "kind", "memo", "reverses", "metadata", "created_at",
    "content_hash", "hash",
)


def entry_values(e: JournalEntry) -> tuple[Any, ...]:
    """A journal row in ``JOURNAL_COLUMNS`` order (the writer inserts tuples in bulk)."""
    return (
        e.seq, e.id, e.idempotency_key, str(e.kind), e.memo, e.reverses,
        json.dumps(dict(e.metadata), sort_keys=True) if e.metadata else "{}",
        e.created_at, e.content_hash, e.hash,
    )


def hold(row: Row, ref: AccountRef) -> Hold:
    return Hold(
        id=row["id"],
        account=ref,
        amount=row["amount"],
        captured=row["captured"],
        released=row["released"],
        status=HoldStatus(row["status"]),
    )


def store(row: Row) -> Store:
    return Store(
        id=row["id"],
        name=row["name"],
        created_at=row["created_at"],
        website=row["website"],
        default_currency=row["default_currency"],
        invoice_expiration=row["invoice_expiration"],
        monitoring_expiration=row["monitoring_expiration"],
        speed_policy=SpeedPolicy(row["speed_policy"]),
        payment_tolerance=row["payment_tolerance"],
        archived=bool(row["archived"]),
    )


def store_row(s: Store) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "website": s.website,
        "default_currency": s.default_currency,
        "invoice_expiration": s.invoice_expiration,
        "monitoring_expiration": s.monitoring_expiration,
        "speed_policy": str(s.speed_policy),
        "payment_tolerance": s.payment_tolerance,
        "archived": s.archived,
        "created_at": s.created_at,
    }


def api_key(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        label=row["label"],
        permissions=tuple(Permission.parse(p) for p in json.loads(row["permissions"])),
        key_hash=row["key_hash"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def api_key_row(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "label": k.label,
        "key_hash": k.key_hash,
        "permissions": json.dumps([str(p) for p in k.permissions]),
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    }
