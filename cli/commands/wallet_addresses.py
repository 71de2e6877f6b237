"""``dpg wallet`` address-pool commands: issue addresses, list them, report the gap.

Registered on the ``dpg wallet`` group by :mod:`.wallet`. The database records every issued
index (never reused); the gap report tells what gap limit an external wallet restored from
the xpub needs, and issuing warns once the unused run passes ``custody.gap_limit``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dpgnode.domain.custody.wallet import CHANGE_BRANCH, EXTERNAL_BRANCH, GapReport, IssuedAddress

from .. import output
from ..state import open_node
from . import JSON_HELP

_ACCOUNT_HELP = "Key account id (ka_..., see `dpg wallet show`)."


def address_json(address: IssuedAddress) -> dict[str, Any]:
    return {
        "address": address.address,
        "branch": address.branch,
        "index": address.index,
        "reference": address.reference,
        "issuedAt": address.issued_at,
        "usedAt": address.used_at,
    }


def new_address(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help=_ACCOUNT_HELP, metavar="ACCOUNT_ID")],
    reference: Annotated[
        str, typer.Option("--reference", help="What the address is for (an invoice id).")
    ] = "",
    change: Annotated[bool, typer.Option("--change", help="Issue a change address.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Issue the account's next unused address (recorded: never issued again).

    Warns when the run of issued-but-unused addresses passes custody.gap_limit.

    Examples:
    ```
    dpg wallet new-address ka_0123 --reference inv_42
    ```
    """
    node = open_node(ctx)
    issued = node.custody.addresses.issue(
        account_id, reference=reference, branch=CHANGE_BRANCH if change else EXTERNAL_BRANCH
    )
    if issued.gap_exceeded:
        _warn_gap(issued.trailing_unused, node.custody.addresses.gap_limit)
    if as_json:
        output.emit_json({**address_json(issued.address), "gapExceeded": issued.gap_exceeded})
        return
    output.result(f"{issued.address.address} (index {issued.address.index})")


def addresses(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help=_ACCOUNT_HELP, metavar="ACCOUNT_ID")],
    change: Annotated[bool, typer.Option("--change", help="The change branch.")] = False,
    used: Annotated[
        bool | None, typer.Option("--used/--unused", help="Only used or only unused ones.")
    ] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many.")] = 0,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most this many.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the addresses an account has issued, by index.

    Examples:
    ```
    dpg wallet addresses ka_0123
    dpg wallet addresses ka_0123 --unused --limit 20 --json
    ```
    """
    found = open_node(ctx).custody.addresses.addresses(
        account_id, branch=CHANGE_BRANCH if change else EXTERNAL_BRANCH, used=used,
        offset=offset, limit=limit,
    )
    if as_json:
        output.emit_json([address_json(a) for a in found])
        return
    grid = output.table("Index", "Address", "Reference", "Issued", "Used")
    for a in found:
        output.add_row(grid, str(a.index), a.address, a.reference, output.when(a.issued_at),
                       output.when(a.used_at))
    output.print_table(grid)


def gap(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(help=_ACCOUNT_HELP, metavar="ACCOUNT_ID")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Report the gap limit an external wallet needs to see every payment to this account.

    The gap is the longest run of issued-but-unused receiving addresses; a wallet restored
    from the xpub finds every payment (even a late one to the last address issued) with a
    gap limit of at least `gapLimitNeeded`.

    Examples:
    ```
    dpg wallet gap ka_0123
    dpg wallet gap ka_0123 --json
    ```
    """
    node = open_node(ctx)
    report = node.custody.addresses.gap(account_id)
    limit = node.custody.addresses.gap_limit
    if report.trailing_unused > limit:
        _warn_gap(report.trailing_unused, limit)
    if as_json:
        output.emit_json({**_gap_json(report), "configuredLimit": limit})
        return
    output.result(
        f"issued {report.issued}, used {report.used}, last used index {report.last_used_index}"
    )
    output.result(f"unused after the last used: {report.trailing_unused}; longest gap: "
                  f"{report.gap}")
    output.result(f"an external wallet needs a gap limit of at least {report.gap_limit_needed}")


def _gap_json(report: GapReport) -> dict[str, Any]:
    return {
        "issued": report.issued,
        "used": report.used,
        "lastUsedIndex": report.last_used_index,
        "trailingUnused": report.trailing_unused,
        "gap": report.gap,
        "gapLimitNeeded": report.gap_limit_needed,
    }


def _warn_gap(trailing: int, limit: int) -> None:
    output.warn(
        f"{trailing} issued addresses past the last used one exceed the gap limit {limit}: "
        "an external wallet restored from the xpub needs a larger gap limit (`dpg wallet gap`)"
    )


def mark_used(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="An address the node issued.", metavar="ADDRESS")],
) -> None:
    """Record that a payment reached an address (the chain watchers do this themselves).

    Examples:
    ```
    dpg wallet mark-used bcrt1q...
    ```
    """
    marked = open_node(ctx).custody.addresses.mark_used(address)
    output.result(f"{marked.address} (index {marked.index}) used since "
                  f"{output.when(marked.used_at)}")
