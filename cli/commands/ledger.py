"""``dpg ledger``: verify, balances, statements, operator adjustments and reversals.

Amounts are decimal strings with the asset's decimals, both ways: parsed exactly (more
fractional digits than the asset has are refused, never rounded) and printed in full.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from dpgnode.domain.ledger import (
    AccountRef,
    EntryDraft,
    JournalEntry,
    OwnerType,
    Posting,
    parse_posting,
)
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import NotFoundError
from dpgnode.ports.queries import StatementLine
from dpgnode.services.ledger import Posted

from .. import output
from ..errors import EXIT_FAILED, usage_errors
from ..state import open_node
from . import JSON_HELP, group

app = group("Inspect and adjust the double-entry ledger.")

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ACCOUNT_HELP = "Account as owner_type:owner_id:ASSET:kind, e.g. store:st_1:BTC:available."


class StatementFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


@app.command("verify")
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Recompute the ledger from its journal and check every invariant.

    Checks the hash chain over entries (any edited, deleted or reordered entry breaks it),
    contiguous sequence numbers, that every entry and the whole journal sum to zero per
    asset, that every balance equals the sum of its postings, that no account is overdrawn
    and that held balances match open holds. Exit status 0 only when all hold, else 1.

    Examples:
    ```
    dpg ledger verify
    dpg ledger verify --json
    ```
    """
    node = open_node(ctx)
    report = node.verify_ledger()
    if as_json:
        output.emit_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "accounts": report.accounts,
                "totals": output.totals(report.totals, node.assets),
                "problems": list(report.problems),
            }
        )
    elif report.ok:
        output.result(
            f"ledger ok: {report.entries} entries, {report.accounts} accounts, every check holds"
        )
    else:
        for problem in report.problems:
            output.result(f"- {problem}")
    if not report.ok:
        output.error(f"ledger verification failed: {len(report.problems)} problem(s)")
        raise typer.Exit(EXIT_FAILED)


@app.command("balances")
def balances(
    ctx: typer.Context,
    owner_type: Annotated[
        OwnerType | None, typer.Option("--owner-type", help="Only accounts of this owner type.")
    ] = None,
    owner_id: Annotated[
        str | None,
        typer.Option("--owner-id", help="Only accounts of this owner (e.g. a store id)."),
    ] = None,
    asset: Annotated[
        str | None, typer.Option("--asset", help="Only accounts in this asset.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List account balances, as decimal strings with each asset's decimals.

    Examples:
    ```
    dpg ledger balances
    dpg ledger balances --owner-type store --owner-id st_1 --asset BTC --json
    ```
    """
    node = open_node(ctx)
    if asset is not None:
        with usage_errors("--asset"):
            node.assets.require(asset)
    accounts = node.queries.accounts(
        str(owner_type) if owner_type is not None else None, owner_id, asset
    )
    rows = [
        {
            "account": account.ref.code,
            "ownerType": str(account.ref.owner_type),
            "ownerId": account.ref.owner_id,
            "asset": account.ref.asset,
            "kind": str(account.ref.kind),
            "balance": node.assets.format(account.balance, account.ref.asset),
        }
        for account in accounts
    ]
    if as_json:
        output.emit_json(rows)
        return
    grid = output.table("Account", "Asset", "Balance", title="Balances")
    for row in rows:
        output.add_row(grid, row["account"], row["asset"], row["balance"])
    output.print_table(grid)
    if not rows:
        output.info("no accounts match")


@app.command("statement")
def statement(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help=_ACCOUNT_HELP, metavar="ACCOUNT")],
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First day or instant included: YYYY-MM-DD or ISO 8601 (UTC if no offset).",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Last day included (YYYY-MM-DD), or the instant the statement stops before "
            "(ISO 8601, UTC if no offset).",
        ),
    ] = None,
    fmt: Annotated[
        StatementFormat, typer.Option("--format", help="Output format.")
    ] = StatementFormat.TABLE,
) -> None:
    """Print an account's postings in a date range with the running balance after each.

    The opening balance is the balance just before --from.

    Examples:
    ```
    dpg ledger statement store:st_1:BTC:available
    dpg ledger statement store:st_1:BTC:available --from 2025-01-01 --to 2025-01-31 --format csv
    ```
    """
    with usage_errors("ACCOUNT"):
        ref = AccountRef.parse(account)
    since = _instant(start, "--from", end_of_day=False) if start is not None else None
    until = _instant(end, "--to", end_of_day=True) if end is not None else None
    if since is not None and until is not None and since >= until:
        raise typer.BadParameter("must be later than --from", param_hint="--to")
    node = open_node(ctx)
    if node.queries.account(ref) is None:
        raise NotFoundError(f"no account {ref.code}", details={"field": "account"})
    opening, lines = node.queries.statement(ref, since, until)
    closing = lines[-1].balance_after if lines else opening

    def fmt_units(units: int) -> str:
        return node.assets.format(units, ref.asset)

    if fmt is StatementFormat.CSV:
        _write_csv(lines, fmt_units)
    elif fmt is StatementFormat.JSON:
        output.emit_json(
            {
                "account": ref.code,
                "asset": ref.asset,
                "from": since,
                "to": until,
                "openingBalance": fmt_units(opening),
                "closingBalance": fmt_units(closing),
                "lines": [_line_json(line, fmt_units) for line in lines],
            }
        )
    else:
        _print_statement(ref, (since, until), (opening, closing), lines, fmt_units)


def _print_statement(
    ref: AccountRef,
    period: tuple[datetime | None, datetime | None],
    balances: tuple[int, int],
    lines: Sequence[StatementLine],
    fmt_units: Callable[[int], str],
) -> None:
    grid = output.table(
        "Time (UTC)", "Seq", "Entry", "Kind", "Memo", "Amount", "Balance",
        title=f"Statement of {ref.code}",
    )
    since, until = period
    opening, closing = balances
    output.add_row(grid, output.when(since), "", "", "opening", "", "", fmt_units(opening))
    for line in lines:
        output.add_row(
            grid, output.when(line.created_at), str(line.seq), line.entry_id, line.kind,
            line.memo, fmt_units(line.units), fmt_units(line.balance_after),
        )
    output.add_row(grid, output.when(until), "", "", "closing", "", "", fmt_units(closing))
    output.print_table(grid)


def _instant(text: str, param: str, *, end_of_day: bool) -> datetime:
    try:
        if _DATE_ONLY.match(text):
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 time", param_hint=param
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _line_json(line: StatementLine, fmt_units: Callable[[int], str]) -> dict[str, Any]:
    return {
        "createdAt": line.created_at,
        "seq": line.seq,
        "entryId": line.entry_id,
        "kind": line.kind,
        "memo": line.memo,
        "amount": fmt_units(line.units),
        "balance": fmt_units(line.balance_after),
    }


def _write_csv(lines: Sequence[StatementLine], fmt_units: Callable[[int], str]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["created_at", "seq", "entry_id", "kind", "memo", "amount", "balance"])
    for line in lines:
        writer.writerow(
            [
                line.created_at.isoformat(), line.seq, line.entry_id, line.kind, line.memo,
                fmt_units(line.units), fmt_units(line.balance_after),
            ]
        )


@app.command("post")
def post(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Option(
            "--key",
            help="Idempotency key: re-running with the same key and postings changes nothing.",
            show_default=False,
        ),
    ],
    memo: Annotated[str, typer.Option("--memo", help="Why (kept with the entry).")],
    postings: Annotated[
        list[str],
        typer.Option(
            "--posting",
            help="ACCOUNT=AMOUNT, a signed decimal (negative debits, positive credits); "
            "repeat for each posting. They must sum to zero per asset.",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    r"""Post an operator adjustment: one balanced journal entry, exactly once per key.

    Only `world` accounts may go negative: value enters the node from there.

    Examples:
    ```
    dpg ledger post --key adj-2025-001 --memo "opening float" \
      --posting operator:op:BTC:world=-0.5 --posting operator:op:BTC:inventory=0.5
    ```
    """
    node = open_node(ctx)
    parsed = tuple(_posting(text, node.assets) for text in postings)
    draft = EntryDraft(
        idempotency_key=key, postings=parsed, memo=memo, metadata={"origin": "cli"}
    )
    _report_posted(node.ledger.post(draft), node.assets, as_json)


@app.command("reverse")
def reverse(
    ctx: typer.Context,
    entry_id: Annotated[
        str, typer.Argument(help="Id of the entry to reverse.", metavar="ENTRY_ID")
    ],
    key: Annotated[
        str,
        typer.Option(
            "--key",
            help="Idempotency key: re-running with the same key changes nothing.",
            show_default=False,
        ),
    ],
    memo: Annotated[str, typer.Option("--memo", help="Why (default: 'reversal of ID').")] = "",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Post the reversal of an entry: same accounts, opposite amounts, linked to it.

    Entries are immutable; this is how a mistake is corrected. An entry is reversed at most
    once, and a reversal cannot itself be reversed.

    Examples:
    ```
    dpg ledger reverse ent_0123 --key fix-2025-001
    ```
    """
    node = open_node(ctx)
    _report_posted(node.ledger.reverse(entry_id, key, memo), node.assets, as_json)


def _posting(text: str, assets: AssetRegistry) -> Posting:
    account, sep, amount = text.rpartition("=")
    if not sep or not account:
        raise typer.BadParameter(f"{text!r} is not ACCOUNT=AMOUNT", param_hint="--posting")
    with usage_errors("--posting"):
        return parse_posting(account, amount, assets, field="posting")


def entry_json(entry: JournalEntry, assets: AssetRegistry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "seq": entry.seq,
        "kind": str(entry.kind),
        "idempotencyKey": entry.idempotency_key,
        "memo": entry.memo,
        "reverses": entry.reverses,
        "createdAt": entry.created_at,
        "postings": [
            {
                "account": p.account.code,
                "amount": assets.format(p.units, p.account.asset),
            }
            for p in entry.postings
        ],
    }


def _report_posted(posted: Posted, assets: AssetRegistry, as_json: bool) -> None:
    entry = posted.entry
    if as_json:
        output.emit_json({**entry_json(entry, assets), "created": posted.created})
        return
    if posted.created:
        output.result(f"posted entry {entry.id} (seq {entry.seq})")
    else:
        output.result(
            f"entry {entry.id} (seq {entry.seq}) was already posted under key "
            f"{entry.idempotency_key}; nothing changed"
        )
    grid = output.table("Account", "Amount")
    for p in entry.postings:
        output.add_row(grid, p.account.code, assets.format(p.units, p.account.asset))
    output.print_table(grid)
