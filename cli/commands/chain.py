"""``dpg chain``: the chain watchers of the node in --data-dir.

Status, rescans, resuming a paused chain, the payments and incidents the watchers recorded,
and reconciling the ledger against the chains. ``dpg chain sweep`` lives with the sweeps
(registered into this group by their module).

These commands run in their own process: ``status`` asks the chain nodes directly (no
watcher of this process has polled), and ``rescan`` / ``resume`` follow the chain from here
until the watcher has caught up, so the result is visible when the command returns (a
running node's watcher works on the same database; the cursor check in every block's
command keeps the two from applying a block twice).
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dpgnode.domain.chains.payments import PaymentStatus
from dpgnode.domain.chains.reconcile import ReconcileState
from dpgnode.errors import UnavailableError
from dpgnode.node import Node
from dpgnode.services.chains.monitor import ChainHealth

from .. import output
from ..errors import EXIT_FAILED
from ..state import open_node
from . import JSON_HELP, group
from .chain_views import (
    health_json,
    incident_json,
    payment_json,
    print_reconciliation,
    reconciliation_json,
    status_json,
    text,
)

app = group(
    "Chain watchers: status, rescan, resume, payments, incidents and reconciliation."
)

_CHAIN_HELP = "The chain, as [chains] names it (bitcoin, ethereum, ...); see `dpg chain status`."
_YES_HELP = "Do not ask for confirmation."
_RETRIES = 5
_RETRY_PAUSE = 0.5


class StatusFilter(StrEnum):
    PENDING = "pending"
    CONFIRMING = "confirming"
    CREDITED = "credited"
    UNACCOUNTED = "unaccounted"


def _chains(node: Node) -> list[str]:
    return node.chains.monitor.chains


def _require_chain(node: Node, chain: str) -> str:
    if chain not in _chains(node):
        followed = ", ".join(_chains(node)) or "none: configure [chains] in dpg.toml"
        raise typer.BadParameter(f"the node does not follow {chain!r} (followed: {followed})",
                                 param_hint="CHAIN")
    return chain


# -- status -------------------------------------------------------------------------------


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Each followed chain: node height, our height, lag, mempool, endpoints, incidents.

    Asks each chain's node for its tip (and mempool size and endpoint health where the
    client can tell); the watcher's height and the open incidents (pauses and
    reconciliation mismatches) come from the database. State is synced, syncing, paused
    (an incident to resolve: `dpg chain resume`), failing (the node could not be read) or
    starting.

    Examples:
    ```
    dpg chain status
    dpg chain status --json | jq '.[] | {chain, lag}'
    ```
    """
    node = open_node(ctx)
    reader = node.chains.status
    statuses = reader.status(probe=True) if reader is not None else []
    if as_json:
        output.emit_json([status_json(s, node) for s in statuses])
        return
    if not statuses:
        output.info("no chain is followed: configure [chains] in dpg.toml")
        return
    grid = output.table("chain", "state", "node height", "our height", "lag", "mempool",
                        "endpoints", "open incidents", "error")
    for s in statuses:
        endpoints = ", ".join(f"{e.name} {e.state}" for e in s.endpoints) or "-"
        incidents = ", ".join(sorted({str(i.kind) for i in s.incidents}))
        output.add_row(grid, s.chain, s.state, text(s.node_height), text(s.our_height),
                       text(s.lag), text(s.mempool_size), endpoints,
                       f"{len(s.incidents)} {incidents}".strip(), s.error or s.paused)
    output.print_table(grid)


# -- rescan and resume: follow the chain from this process -----------------------------------


def _catch_up(node: Node, chain: str, start: int) -> ChainHealth:
    """Poll until the watcher reaches the node's tip, drawing progress on stderr."""
    monitor = node.chains.monitor
    console = output.err_console()
    failures = stalled = 0
    last = start
    with Progress(TextColumn(f"{chain}: following blocks"), BarColumn(), MofNCompleteColumn(),
                  console=console, disable=not console.is_terminal, transient=True) as bar:
        task = bar.add_task(chain, total=None)
        while True:
            health = monitor.poll(chain, force=True)
            if health.paused:
                return health
            if health.error:
                failures += 1
                if failures > _RETRIES:
                    raise UnavailableError(f"{chain}: {health.error}", retry_after=30)
                time.sleep(_RETRY_PAUSE)
                continue
            failures = 0
            node_height, our_height = health.node_height or 0, health.our_height or 0
            bar.update(task, total=max(node_height - start, 1), completed=our_height - start)
            if health.lag == 0:
                return health
            stalled = stalled + 1 if our_height <= last else 0
            last = max(last, our_height)
            if stalled > _RETRIES:
                raise UnavailableError(
                    f"{chain}: the watcher makes no progress at height {our_height} "
                    f"(node at {node_height}); see `dpg chain status`", retry_after=30)


def _report_health(health: ChainHealth, as_json: bool, done: str) -> None:
    if as_json:
        output.emit_json(health_json(health))
    elif health.paused:
        output.error(f"{health.chain} is paused: {health.paused}")
    else:
        output.result(f"{done}; {health.chain} at height {text(health.our_height)} "
                      f"(node {text(health.node_height)})")
    if health.paused:
        raise typer.Exit(EXIT_FAILED)


@app.command("rescan")
def rescan(
    ctx: typer.Context,
    chain: Annotated[str, typer.Argument(help=_CHAIN_HELP, metavar="CHAIN")],
    from_height: Annotated[
        int, typer.Option("--from", min=0, help="First block height to read again.")
    ],
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Only move the cursor; the running node's "
                                             "watcher reads the blocks.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help=_YES_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Read a chain again from a height, then follow it to the tip (with a progress bar).

    Payments to addresses the watcher did not know then are found and credited; payments it
    knew keep their state (nothing is credited twice). Asks for confirmation unless --yes.

    Examples:
    ```
    dpg chain rescan bitcoin --from 840000
    dpg chain rescan ethereum --from 19000000 --yes --no-wait
    ```
    """
    node = open_node(ctx)
    _require_chain(node, chain)
    cursor = node.chains.store.cursor(chain)
    if not yes:
        at = f" (the watcher is at {cursor.height})" if cursor is not None else ""
        typer.confirm(f"Read {chain} again from height {from_height}{at}?", abort=True,
                      err=True)
    moved = node.chains.monitor.watcher(chain).rescan(from_height)
    if no_wait:
        if as_json:
            output.emit_json({"chain": chain, "ourHeight": moved.height, "waited": False})
        else:
            output.result(f"{chain}: the watcher reads again from height {moved.height + 1}")
        return
    health = _catch_up(node, chain, moved.height)
    _report_health(health, as_json, f"rescanned {chain} from height {from_height}")


@app.command("resume")
def resume(
    ctx: typer.Context,
    chain: Annotated[str, typer.Argument(help=_CHAIN_HELP, metavar="CHAIN")],
    accept_reorg: Annotated[
        bool, typer.Option("--accept-reorg", help="Follow the node's chain through a "
                                                  "reorganisation deeper than the limit.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help=_YES_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Resume a paused chain after looking at its incident; then follow it to the tip.

    With --accept-reorg the deep reorganisation is undone here, now: payments in the dropped
    blocks are reversed in the ledger (reversing entries, events) and the new branch is
    read. The chain's open incidents are closed. Asks for confirmation unless --yes.

    Examples:
    ```
    dpg chain resume bitcoin
    dpg chain resume bitcoin --accept-reorg --yes
    ```
    """
    node = open_node(ctx)
    _require_chain(node, chain)
    cursor = node.chains.store.cursor(chain)
    if cursor is None or not cursor.is_paused:
        output.info(f"{chain} is not paused: nothing to resume")
        if as_json:
            output.emit_json({"chain": chain, "resumed": False})
        return
    if not yes:
        extra = (" Payments in blocks the reorganisation dropped will be reversed."
                 if accept_reorg else "")
        typer.confirm(f"{chain} is paused: {cursor.paused}\nResume it?{extra}", abort=True,
                      err=True)
    node.chains.monitor.watcher(chain).resume(accept_reorg=accept_reorg)
    health = _catch_up(node, chain, cursor.height)
    _report_health(health, as_json, f"resumed {chain}")


# -- payments and incidents ----------------------------------------------------------------


@app.command("payments")
def payments(
    ctx: typer.Context,
    chain: Annotated[str | None, typer.Argument(help=_CHAIN_HELP, metavar="[CHAIN]")] = None,
    status_filter: Annotated[
        StatusFilter | None, typer.Option("--status", help="Only payments in this state.")
    ] = None,
    address: Annotated[str | None, typer.Option("--address", help="Only payments to it.")]
    = None,
    txid: Annotated[str | None, typer.Option("--txid", help="Only this transaction's.")]
    = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")]
    = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Payments to the node's addresses, newest first: pending, confirming, credited, lost.

    Examples:
    ```
    dpg chain payments
    dpg chain payments bitcoin --status credited --json
    dpg chain payments --address bc1q...
    ```
    """
    node = open_node(ctx)
    if chain is not None:
        _require_chain(node, chain)
    found = node.chains.store.payments(
        chain, status=PaymentStatus(status_filter) if status_filter else None,
        address=address, txid=txid, limit=limit)
    if as_json:
        output.emit_json([payment_json(p, node) for p in found])
        return
    grid = output.table("chain", "status", "amount", "asset", "address", "block", "txid",
                        "owner", "reference")
    for p in found:
        output.add_row(grid, p.chain, str(p.status), node.assets.format(p.units, p.asset),
                       p.asset, p.address, "" if p.block is None else str(p.block.height),
                       p.txid, p.owner, p.reference)
    output.print_table(grid)


@app.command("incidents")
def incidents(
    ctx: typer.Context,
    chain: Annotated[str | None, typer.Argument(help=_CHAIN_HELP, metavar="[CHAIN]")] = None,
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Resolved incidents too.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Chain incidents, newest first: pauses and reconciliation mismatches.

    A deep reorganisation or lost history pauses the chain until `dpg chain resume`; a
    reconciliation mismatch does not pause it and closes itself once the ledger and the
    chain agree again (the ledger is never adjusted to make them agree).

    Examples:
    ```
    dpg chain incidents
    dpg chain incidents bitcoin --all --json
    ```
    """
    node = open_node(ctx)
    if chain is not None:
        _require_chain(node, chain)
    found = node.chains.store.incidents(chain, open_only=not include_resolved)
    if as_json:
        output.emit_json([incident_json(i) for i in found])
        return
    grid = output.table("id", "chain", "kind", "opened", "resolved", "message")
    for i in found:
        output.add_row(grid, str(i.id), i.chain, str(i.kind), output.when(i.created_at),
                       output.when(i.resolved_at), i.message)
    output.print_table(grid)


# -- reconcile -----------------------------------------------------------------------------


@app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    chain: Annotated[str | None, typer.Argument(help=_CHAIN_HELP, metavar="[CHAIN]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Compare the ledger with the chain, per chain, asset and address; alert on a difference.

    Both views are taken at the settled height (the newest block the confirmation policy
    credited): the ledger's live credits plus the node's own settled transactions, against
    what the chain holds (Bitcoin UTXOs, EVM balances). Every address that ever received a
    payment is compared, and the totals per asset. A difference is recorded as an incident
    and a chain.reconciliation_mismatch event; the ledger is never adjusted. Exit status 1
    when anything disagrees, 4 when a chain node could not be read.

    Examples:
    ```
    dpg chain reconcile
    dpg chain reconcile bitcoin --json
    ```
    """
    node = open_node(ctx)
    reconciler = node.chains.reconciler
    names = [_require_chain(node, chain)] if chain is not None else _chains(node)
    if reconciler is None or not names:
        output.info("no chain is followed: configure [chains] in dpg.toml")
        if as_json:
            output.emit_json([])
        return
    runs = [reconciler.reconcile(name) for name in names]
    if as_json:
        output.emit_json([reconciliation_json(run, node) for run in runs])
    else:
        for run in runs:
            print_reconciliation(run, node)
    if any(run.state is ReconcileState.MISMATCH for run in runs):
        raise typer.Exit(EXIT_FAILED)
