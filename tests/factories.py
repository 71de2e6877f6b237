"""Builders of valid domain objects; every field can be overridden by keyword.

Each builder returns something the domain accepts as it is, so a test states only the
field it is about: ``transfer(units=0)`` reads as "a transfer, but of zero".
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from dpgnode.domain.access import ApiKey, Permission
from dpgnode.domain.hold import Hold, HoldStatus
from dpgnode.domain.ledger import (
    AccountKind,
    AccountRef,
    EntryDraft,
    EntryKind,
    JournalEntry,
    OwnerType,
    Posting,
    chain_hash,
)
from dpgnode.domain.money import Asset, AssetKind
from dpgnode.domain.store import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_counter = itertools.count(1)


def key(prefix: str = "key") -> str:
    """A fresh idempotency key (unique within the test process)."""
    return f"{prefix}-{next(_counter)}"


def asset(
    code: str = "BTC",
    decimals: int = 8,
    name: str = "",
    kind: AssetKind = AssetKind.CRYPTO,
    network: str = "",
) -> Asset:
    return Asset(code, decimals, name, kind, network)


def account(
    owner_id: str = "u1",
    asset: str = "BTC",
    kind: AccountKind = AccountKind.AVAILABLE,
    owner_type: OwnerType = OwnerType.USER,
) -> AccountRef:
    return AccountRef(owner_type, owner_id, asset, kind)


def world(asset: str = "BTC") -> AccountRef:
    """The operator's account standing for everything outside the node (may go negative)."""
    return AccountRef(OwnerType.OPERATOR, "op", asset, AccountKind.WORLD)


def operator(kind: AccountKind, asset: str = "BTC") -> AccountRef:
    return AccountRef(OwnerType.OPERATOR, "op", asset, kind)


def transfer(
    source: AccountRef | None = None,
    destination: AccountRef | None = None,
    units: int = 100,
    idempotency_key: str | None = None,
    kind: EntryKind = EntryKind.TRANSFER,
    memo: str = "",
    reverses: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> EntryDraft:
    """Two postings moving ``units`` from ``source`` to ``destination``."""
    source = source or world()
    destination = destination or account(asset=source.asset)
    return EntryDraft(
        idempotency_key=key("tr") if idempotency_key is None else idempotency_key,
        postings=(Posting(source, -units), Posting(destination, units)),
        kind=kind,
        memo=memo,
        reverses=reverses,
        metadata=dict(metadata or {}),
    )


def deposit(destination: AccountRef, units: int, idempotency_key: str | None = None) -> EntryDraft:
    """Value arriving from outside into ``destination``."""
    return transfer(world(destination.asset), destination, units, idempotency_key)


def journal_entry(
    draft: EntryDraft | None = None,
    *,
    id: str = "je_1",
    seq: int = 1,
    created_at: datetime = T0,
    prev_hash: str = "0" * 64,
) -> JournalEntry:
    """A committed entry for ``draft``, chained onto ``prev_hash``."""
    draft = draft or transfer()
    entry = JournalEntry(
        id=id,
        seq=seq,
        idempotency_key=draft.idempotency_key,
        kind=draft.kind,
        postings=draft.postings,
        memo=draft.memo,
        reverses=draft.reverses,
        metadata=dict(draft.metadata),
        created_at=created_at,
        content_hash=draft.content_hash(),
        hash="",
    )
    return replace(entry, hash=chain_hash(prev_hash, entry))


def hold(
    id: str = "hold_1",
    account_ref: AccountRef | None = None,
    amount: int = 100,
    captured: int = 0,
    released: int = 0,
    status: HoldStatus = HoldStatus.OPEN,
) -> Hold:
    return Hold(id, account_ref or account(), amount, captured, released, status)


def api_key(
    *permissions: str,
    id: str = "key_1",
    label: str = "test",
    key_hash: str = "0" * 64,
    created_at: datetime = T0,
    revoked_at: datetime | None = None,
) -> ApiKey:
    """A key granting ``permissions`` (``name`` or ``name:storeId`` strings)."""
    parsed = tuple(Permission.parse(p) for p in permissions)
    return ApiKey(id, label, parsed, key_hash, created_at, revoked_at)


def store(
    id: str = "st_1",
    name: str = "Shop",
    created_at: datetime = T0,
    archived: bool = False,
) -> Store:
    return Store(id=id, name=name, created_at=created_at, archived=archived)
