"""The ledger for operators: balances, statements, posting, reversing, verifying."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.params import (
    FromPath,
    FromQuery,
    HeaderParameter,
    JSONBody,
    PathParameter,
    QueryParameter,
)

from dpgnode.api.errors import READ_ERRORS, WRITE_ERRORS, bad_request, problems
from dpgnode.api.policy import requires
from dpgnode.api.schemas.ledger import (
    AccountData,
    EntryData,
    PostEntryRequest,
    ReverseEntryRequest,
    StatementData,
    VerifyData,
)
from dpgnode.domain.access import LEDGER_POST, LEDGER_VIEW
from dpgnode.domain.ledger import AccountRef, EntryDraft, OwnerType, parse_posting
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.node import Node
from dpgnode.services.idempotency import is_valid_key

_TAGS = ["Ledger"]
IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", description="Retry-safe key (Stripe semantics)"),
]


def _entry_key(body_key: str | None, header_key: str | None, default: str | None) -> str:
    key = body_key or header_key or default
    if key is None:
        raise ValidationError(
            "an idempotency key is required: send idempotencyKey or the Idempotency-Key header",
            field="idempotencyKey",
        )
    if not is_valid_key(key):
        raise ValidationError(
            "idempotency key must be 1-255 printable ASCII characters", field="idempotencyKey"
        )
    return key


def _unix(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 11:
        raise bad_request(name, "must be unix seconds (a non-negative integer)")
    return datetime.fromtimestamp(int(value), UTC)


@get(
    "/ledger/accounts", opt=requires(LEDGER_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def list_accounts(
    node: NamedDependency[Node],
    owner_type: Annotated[OwnerType | None, QueryParameter(name="ownerType")] = None,
    owner_id: Annotated[str | None, QueryParameter(name="ownerId")] = None,
    asset: FromQuery[str | None] = None,
) -> list[AccountData]:
    """Accounts and their balances, optionally filtered."""
    accounts = node.queries.accounts(
        str(owner_type) if owner_type is not None else None, owner_id, asset
    )
    return [AccountData.of(a, node.assets) for a in accounts]


@get(
    "/ledger/accounts/{account:str}/statement", opt=requires(LEDGER_VIEW),
    sync_to_thread=True, tags=_TAGS, responses=problems(*READ_ERRORS, 404, 422),
)
def statement(
    node: NamedDependency[Node],
    account: FromPath[str],
    start: Annotated[str | None, QueryParameter(name="from", description="unix seconds")] = None,
    end: Annotated[str | None, QueryParameter(name="to", description="unix seconds")] = None,
) -> StatementData:
    """An account's postings in ``[from, to)`` with the running balance."""
    ref = AccountRef.parse(account, field="account")
    found = node.queries.account(ref)
    if found is None:
        raise NotFoundError(f"no account {ref.code}", details={"field": "account"})
    since, until = _unix(start, "from"), _unix(end, "to")
    opening, lines = node.queries.statement(ref, since, until)
    span = (
        int(since.timestamp()) if since else None, int(until.timestamp()) if until else None
    )
    return StatementData.of(found, span, opening, lines, node.assets)


@post("/ledger/entries", opt=requires(LEDGER_POST), tags=_TAGS, responses=problems(*WRITE_ERRORS))
async def post_entry(
    node: NamedDependency[Node],
    data: JSONBody[PostEntryRequest],
    idempotency_key: IdempotencyHeader = None,
) -> Response[EntryData]:
    """Post a balanced entry; 201 when new, 200 when its key replays an earlier one."""
    draft = EntryDraft(
        idempotency_key=_entry_key(data.idempotency_key, idempotency_key, None),
        postings=tuple(
            parse_posting(p.account, p.amount, node.assets, field=f"postings[{i}]")
            for i, p in enumerate(data.postings)
        ),
        memo=data.memo or "",
    )
    posted = await node.ledger.post_async(draft)
    return Response(
        EntryData.of(posted.entry, node.assets), status_code=201 if posted.created else 200
    )


@post(
    "/ledger/entries/{entryId:str}/reverse", opt=requires(LEDGER_POST), sync_to_thread=True,
    tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def reverse_entry(
    node: NamedDependency[Node],
    entry_id: Annotated[str, PathParameter(name="entryId")],
    data: JSONBody[ReverseEntryRequest | None] = None,
    idempotency_key: IdempotencyHeader = None,
) -> Response[EntryData]:
    """Post the reversing entry of ``entryId`` (once; a repeat returns it with 200)."""
    body = data or ReverseEntryRequest()
    key = _entry_key(body.idempotency_key, idempotency_key, f"reversal-of:{entry_id[:200]}")
    posted = node.ledger.reverse(entry_id, key, body.memo or "")
    return Response(
        EntryData.of(posted.entry, node.assets), status_code=201 if posted.created else 200
    )


@get(
    "/ledger/verify", opt=requires(LEDGER_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def verify(node: NamedDependency[Node]) -> VerifyData:
    """Recompute balances, sums and the hash chain from the journal."""
    report = node.verify_ledger()
    return VerifyData(
        ok=report.ok, entries=report.entries, accounts=report.accounts,
        totals={a: node.assets.format(u, a) for a, u in sorted(report.totals.items())},
        problems=list(report.problems),
    )


ROUTES = [list_accounts, statement, post_entry, reverse_entry, verify]
