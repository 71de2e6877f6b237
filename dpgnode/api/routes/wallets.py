"""Wallets: balances of one owner in one asset, their history, statements and transfers.

A wallet (``wal_…``) is a view over the owner's ``available`` and ``held`` ledger accounts in
one asset; fiat and crypto wallets alike. Keys with ``dpg.wallets.view`` /
``dpg.wallets.transfer`` limited to a store see only that store's wallets; any other wallet
answers 404 (its existence is not revealed). ``dpg.ledger.canview`` implies viewing every
wallet, ``dpg.ledger.canpost`` transferring from any.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from dpgnode.api.errors import READ_ERRORS, WRITE_ERRORS, bad_request, problems
from dpgnode.api.policy import requires
from dpgnode.api.schemas.wallets import (
    BalanceData,
    OpenWalletRequest,
    TransactionPage,
    TransferData,
    TransferRequest,
    WalletData,
    WalletStatementData,
)
from dpgnode.domain.access import WALLETS_TRANSFER, WALLETS_VIEW, ApiKey
from dpgnode.domain.ledger import AccountKind, OwnerType
from dpgnode.domain.money import parse_units
from dpgnode.domain.wallets import Wallet
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.node import Node
from dpgnode.services.idempotency import is_valid_key
from dpgnode.services.wallets import MAX_PAGE, WalletScope

_TAGS = ["Wallets"]
WalletId = Annotated[str, PathParameter(name="walletId", max_length=64)]
IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", description="Retry-safe key (Stripe semantics)"),
]
Since = Annotated[str | None, QueryParameter(name="from", description="unix seconds")]
Until = Annotated[str | None, QueryParameter(name="to", description="unix seconds")]


def scope_of(api_key: ApiKey, permission: str) -> WalletScope:
    """The wallets ``api_key`` reaches with ``permission``: all, or those of some stores."""
    if api_key.allows(permission):
        return WalletScope(None)
    return WalletScope(frozenset(
        g.store_id for g in api_key.permissions
        if g.store_id is not None and api_key.allows(permission, g.store_id)
    ))


def _unix(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 11:
        raise bad_request(name, "must be unix seconds (a non-negative integer)")
    return datetime.fromtimestamp(int(value), UTC)


def _wallet(node: Node, api_key: ApiKey, wallet_id: str, permission: str) -> Wallet:
    return node.wallets.wallet(wallet_id, scope_of(api_key, permission))


@get(
    "/wallets", opt=requires(WALLETS_VIEW, any_store=True), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def list_wallets(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    owner_type: Annotated[OwnerType | None, QueryParameter(name="ownerType")] = None,
    owner_id: Annotated[str | None, QueryParameter(name="ownerId", max_length=64)] = None,
    asset: Annotated[str | None, QueryParameter(max_length=32)] = None,
    offset: Annotated[int, QueryParameter(ge=0, le=10**9, description="Skip this many")] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = MAX_PAGE,
) -> list[WalletData]:
    """The wallets this key may see, oldest first, optionally filtered; pages of ``limit``."""
    found = node.wallets.wallets(
        scope_of(api_key, WALLETS_VIEW), owner_type=owner_type, owner_id=owner_id, asset=asset,
        offset=offset, limit=limit,
    )
    return [WalletData.of(w) for w in found]


@post(
    "/wallets", opt=requires(WALLETS_TRANSFER, any_store=True), sync_to_thread=True,
    tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def open_wallet(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    data: JSONBody[OpenWalletRequest],
) -> Response[WalletData]:
    """Open the owner's wallet in an asset: 201 when new, 200 when it already exists."""
    scope = scope_of(api_key, WALLETS_TRANSFER)
    if scope.stores is not None and (
        data.owner_type is not OwnerType.STORE or data.owner_id not in scope.stores
    ):
        raise NotFoundError(f"no store {data.owner_id[:64]}", details={"field": "ownerId"})
    opened = node.wallets.open(data.owner_type, data.owner_id, data.asset, data.label or "")
    return Response(WalletData.of(opened.wallet), status_code=201 if opened.created else 200)


@get(
    "/wallets/{walletId:str}", opt=requires(WALLETS_VIEW, any_store=True),
    sync_to_thread=True, tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def get_wallet(
    node: NamedDependency[Node], api_key: NamedDependency[ApiKey], wallet_id: WalletId
) -> WalletData:
    return WalletData.of(_wallet(node, api_key, wallet_id, WALLETS_VIEW))


@get(
    "/wallets/{walletId:str}/balance", opt=requires(WALLETS_VIEW, any_store=True),
    sync_to_thread=True, tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def balance(
    node: NamedDependency[Node], api_key: NamedDependency[ApiKey], wallet_id: WalletId
) -> BalanceData:
    """Available and held amounts (holds: open orders, pending payouts) and their total."""
    wallet = _wallet(node, api_key, wallet_id, WALLETS_VIEW)
    return BalanceData.of(node.wallets.balance(wallet), node.assets)


@get(
    "/wallets/{walletId:str}/transactions", opt=requires(WALLETS_VIEW, any_store=True),
    sync_to_thread=True, tags=_TAGS, responses=problems(*READ_ERRORS, 404, 422),
)
def transactions(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    wallet_id: WalletId,
    kind: Annotated[
        list[str] | None,
        QueryParameter(description="Entry kinds: transfer, hold, capture, release, reversal"),
    ] = None,
    account: Annotated[AccountKind | None, QueryParameter(description="available or held")]
    = None,
    start: Since = None,
    end: Until = None,
    before: Annotated[str | None, QueryParameter(description="Cursor: a page's `next`")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
) -> TransactionPage:
    """The wallet's postings, newest first, in pages of whole entries."""
    wallet = _wallet(node, api_key, wallet_id, WALLETS_VIEW)
    if before is not None and (not before.isdigit() or len(before) > 19):
        raise bad_request("before", "must be a cursor from a previous page")
    page = node.wallets.transactions(
        wallet, kinds=kind or [], account=account, since=_unix(start, "from"),
        until=_unix(end, "to"), before=int(before) if before else None, limit=limit,
    )
    return TransactionPage.of(wallet, page.postings, page.next_before, node.assets)


@post(
    "/wallets/{walletId:str}/transfer", opt=requires(WALLETS_TRANSFER, any_store=True),
    sync_to_thread=True, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def transfer(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    wallet_id: WalletId,
    data: JSONBody[TransferRequest],
    idempotency_key: IdempotencyHeader = None,
) -> Response[TransferData]:
    """Move an amount to another wallet of the same asset: one ledger entry, exactly once.

    The key must reach the source wallet; the destination may be any wallet of the asset
    (paying another owner on the node). 201 when posted, 200 when the idempotency key
    replays an earlier transfer.
    """
    source = _wallet(node, api_key, wallet_id, WALLETS_TRANSFER)
    key = data.idempotency_key or idempotency_key
    if key is None or not is_valid_key(key):
        raise ValidationError(
            "an idempotency key (1-255 printable ASCII) is required: send idempotencyKey "
            "or the Idempotency-Key header", field="idempotencyKey",
        )
    units = parse_units(data.amount, node.assets.require(source.asset).decimals, field="amount")
    posted, destination = node.wallets.transfer(
        source, data.to_wallet_id, units, key, data.memo or ""
    )
    entry = posted.entry
    body = TransferData(
        entry_id=entry.id, seq=entry.seq, from_wallet_id=source.id,
        to_wallet_id=destination.id, asset=source.asset,
        amount=node.assets.format(units, source.asset), memo=entry.memo, idempotency_key=key,
        created_time=int(entry.created_at.timestamp()),
    )
    return Response(body, status_code=201 if posted.created else 200)


@get(
    "/wallets/{walletId:str}/statement", opt=requires(WALLETS_VIEW, any_store=True),
    sync_to_thread=True, tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def statement(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    wallet_id: WalletId,
    start: Since = None,
    end: Until = None,
    fmt: Annotated[
        str, QueryParameter(name="format", pattern="^(json|csv)$", description="json or csv")
    ] = "json",
) -> Response[WalletStatementData | str]:
    """The available balance's postings in ``[from, to)`` with the running balance."""
    wallet = _wallet(node, api_key, wallet_id, WALLETS_VIEW)
    since, until = _unix(start, "from"), _unix(end, "to")
    opening, lines = node.wallets.statement(wallet, since, until)
    span = (int(since.timestamp()) if since else None, int(until.timestamp()) if until else None)
    data = WalletStatementData.of(wallet, span, opening, lines, node.assets)
    if fmt == "json":
        return Response(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["created_time", "seq", "entry_id", "kind", "memo", "amount", "balance"])
    for line in data.lines:
        writer.writerow([line.created_time, line.seq, line.entry_id, line.kind, line.memo,
                         line.amount, line.balance])
    return Response(
        buffer.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{wallet.id}.csv"'},
    )


ROUTES = [list_wallets, open_wallet, get_wallet, balance, transactions, transfer, statement]
