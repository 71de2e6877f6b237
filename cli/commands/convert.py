"""``dpg convert``: rates, quotes and conversions for users, and their limits.

The operator acts for a user here (``--user``): a quote is made for that user and executes
as one journal entry between the user's available accounts and the operator's inventory.
The ``--json`` output has the same shape as the HTTP API's bodies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec
import typer

from dpgnode.api.schemas.conversion import (
    ConversionData,
    LimitStatusData,
    QuoteData,
    RatesData,
)
from dpgnode.domain.conversion.limits import LimitKind, Period
from dpgnode.domain.conversion.quote import Route
from dpgnode.services.conversion import QuoteRequest

from .. import output
from ..state import open_node
from . import JSON_HELP, group

app = group("Convert between assets for users: rates, quotes, execution, limits.")

_USER_HELP = "The user (ledger owner user:<id>)."


class KindOption(StrEnum):
    ASSET = "asset"
    VALUE = "value"


class RouteOption(StrEnum):
    INVENTORY = "inventory"
    BOOK = "book"


class PeriodOption(StrEnum):
    DAY = "day"
    MONTH = "month"


def _builtins(data: msgspec.Struct) -> Any:
    return msgspec.to_builtins(data)


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


@app.command("rates")
def rates(
    ctx: typer.Context,
    base: Annotated[
        str | None, typer.Option("--from", help="Only this asset (default: every asset).")
    ] = None,
    quote: Annotated[
        str | None,
        typer.Option("--to", help="Asset to price in (default: the reference currency)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show aggregated rates: the median of the fresh sources, never a default.

    Examples:
    ```
    dpg convert rates
    dpg convert rates --from BTC --to EUR --json
    ```
    """
    node = open_node(ctx)
    target = quote or node.conversion.policy.reference_asset
    if target is None:
        raise typer.BadParameter("no reference currency is configured: name one", param_hint="--to")
    board = RatesData.of(node.conversion.board(target, [base] if base else None))
    if as_json:
        output.emit_json(_builtins(board))
        return
    grid = output.table("Pair", "Rate", "Source", "Observed", title=f"Rates in {target}")
    for line in board.rates:
        output.add_row(
            grid, f"{line.base}/{line.quote}", line.rate, line.source, _iso(line.observed_time)
        )
    output.print_table(grid)
    for missing in board.unavailable:
        output.info(f"{missing.base}/{missing.quote}: {missing.reason}")


@app.command("quote")
def quote(
    ctx: typer.Context,
    owner: Annotated[str, typer.Option("--user", help=_USER_HELP, show_default=False)],
    base: Annotated[
        str, typer.Option("--from", help="Asset the user sells.", show_default=False)
    ],
    target: Annotated[
        str, typer.Option("--to", help="Asset the user receives.", show_default=False)
    ],
    from_amount: Annotated[
        str | None,
        typer.Option("--from-amount", help="What the user sells, fee included (decimal)."),
    ] = None,
    to_amount: Annotated[
        str | None,
        typer.Option("--to-amount", help="What the user receives, exactly (decimal)."),
    ] = None,
    route: Annotated[
        RouteOption,
        typer.Option(
            "--route",
            help="inventory: against the operator's inventory at the quoted amounts; "
            "book: one market order within the slippage bound (--from-amount only).",
        ),
    ] = RouteOption.INVENTORY,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Quote a conversion for a user: rate, spread, fee and both amounts, and its expiry.

    Give exactly one of --from-amount and --to-amount. Accept the quote with
    `dpg convert execute QUOTE_ID` before it expires.

    Examples:
    ```
    dpg convert quote --user alice --from BTC --to USD --from-amount 0.5
    dpg convert quote --user alice --from USD --to ETH --to-amount 1.25 --json
    dpg convert quote --user alice --from BTC --to USD --from-amount 0.5 --route book
    ```
    """
    if (from_amount is None) == (to_amount is None):
        raise typer.BadParameter(
            "give exactly one of --from-amount and --to-amount", param_hint="--from-amount"
        )
    node = open_node(ctx)
    made = QuoteData.of(
        node.conversion.quote(
            QuoteRequest(
                owner, base, target, from_amount=from_amount, to_amount=to_amount,
                route=Route(route.value),
            )
        ),
        node.clock.now(),
    )
    if as_json:
        output.emit_json(_builtins(made))
        return
    output.result(f"quote {made.id} for {made.user_id}, valid until {_iso(made.expires_time)}")
    grid = output.table("Item", "Value")
    for label, value in (
        ("sells", f"{made.from_amount} {made.from_}"),
        ("fee", f"{made.fee} {made.from_} ({made.fee_bps} bp)"),
        ("receives", f"{made.to_amount} {made.to}"),
        ("mid rate", f"{made.mid_rate} ({made.rate_source})"),
        ("client rate", f"{made.rate} (spread {made.spread_bps} bp: {made.spread} {made.to})"),
        ("effective rate", made.effective_rate),
        ("receives at least", f"{made.min_to_amount} {made.to} (route {made.route})"),
    ):
        output.add_row(grid, label, value)
    output.print_table(grid)


@app.command("execute")
def execute(
    ctx: typer.Context,
    quote_id: Annotated[str, typer.Argument(help="The quote to accept.", metavar="QUOTE_ID")],
    owner: Annotated[
        str | None, typer.Option("--user", help="Refuse unless the quote is this user's.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Accept a quote before it expires: one journal entry against the inventory.

    A quote executes at most once; running this again shows the same conversion.

    Examples:
    ```
    dpg convert execute cq_0190f2c4a1b27000a1b2c3d4e5f60718
    dpg convert execute cq_0190f2c4a1b27000a1b2c3d4e5f60718 --user alice --json
    ```
    """
    node = open_node(ctx)
    executed = node.conversion.execute(owner, quote_id)
    data = ConversionData.of(executed.conversion)
    if as_json:
        output.emit_json({**_builtins(data), "created": executed.created})
        return
    verb = "converted" if executed.created else "already converted"
    through = f"entry {data.entry_id}" if data.entry_id else f"order {data.order_id}"
    output.result(
        f"{verb}: {data.from_amount} {data.from_} -> {data.to_amount} {data.to} "
        f"(fee {data.fee} {data.from_}) as {data.id}, {through}"
    )


@app.command("limits")
def limits(
    ctx: typer.Context,
    owner: Annotated[
        str | None,
        typer.Option("--user", help="Show this user's limits in force, with usage."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show conversion limits: every limit set, or one user's with what is used and left.

    Examples:
    ```
    dpg convert limits
    dpg convert limits --user alice --json
    ```
    """
    node = open_node(ctx)
    if owner is None:
        rows = [
            {
                "userId": limit.owner_id, "kind": str(limit.kind), "asset": limit.asset,
                "period": str(limit.period),
                "limit": node.assets.format(limit.units, limit.asset),
            }
            for limit in node.conversion.limits.all()
        ]
        if as_json:
            output.emit_json(rows)
            return
        grid = output.table("User", "Kind", "Asset", "Period", "Limit", title="Conversion limits")
        for row in rows:
            output.add_row(grid, *(str(value) for value in row.values()))
        output.print_table(grid)
        if not rows:
            output.info("no limits set: add one with `dpg convert set-limit`")
        return
    statuses = [LimitStatusData.of(s, node.assets) for s in node.conversion.limits.status(owner)]
    if as_json:
        output.emit_json({"userId": owner, "limits": [_builtins(s) for s in statuses]})
        return
    grid = output.table(
        "Kind", "Asset", "Period", "Limit", "Used", "Remaining", "Default",
        title=f"Limits of {owner}",
    )
    for s in statuses:
        output.add_row(
            grid, s.kind, s.asset, s.period, s.limit, s.used, s.remaining,
            "yes" if s.is_default else "no",
        )
    output.print_table(grid)


@app.command("set-limit")
def set_limit(
    ctx: typer.Context,
    asset: Annotated[
        str,
        typer.Option(
            "--asset", help="Asset limited (for --kind value: the reference currency).",
            show_default=False,
        ),
    ],
    period: Annotated[
        PeriodOption, typer.Option("--period", help="Calendar period in UTC.", show_default=False)
    ],
    owner: Annotated[
        str | None, typer.Option("--user", help="The user (omit with --default).")
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Set the default of every user without their own.")
    ] = False,
    kind: Annotated[
        KindOption,
        typer.Option(
            "--kind",
            help="asset: volume of ASSET converted; value: value of all conversions in ASSET.",
        ),
    ] = KindOption.ASSET,
    amount: Annotated[
        str | None, typer.Option("--limit", help="Most per period (decimal in ASSET).")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the limit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Set or remove a conversion limit for a user, or the default for every user.

    Examples:
    ```
    dpg convert set-limit --user alice --asset BTC --period day --limit 0.5
    dpg convert set-limit --default --kind value --asset USD --period month --limit 10000
    dpg convert set-limit --user alice --asset BTC --period day --remove
    ```
    """
    if (owner is None) == (not default):
        raise typer.BadParameter("give exactly one of --user and --default", param_hint="--user")
    if (amount is None) == (not remove):
        raise typer.BadParameter("give exactly one of --limit and --remove", param_hint="--limit")
    node = open_node(ctx)
    limit = node.conversion.limits.set(
        owner, LimitKind(kind.value), asset, Period(period.value), amount
    )
    who = owner or "*"
    shown = None if limit is None else node.assets.format(limit.units, limit.asset)
    if as_json:
        output.emit_json(
            {"userId": who, "kind": kind.value, "asset": asset, "period": period.value,
             "limit": shown}
        )
        return
    if shown is None:
        adjective = Period(period.value).adjective
        output.result(f"removed the {adjective} {kind.value} limit on {asset} for {who}")
    else:
        output.result(f"{who}: {kind.value} limit {shown} {asset} per {period.value}")

