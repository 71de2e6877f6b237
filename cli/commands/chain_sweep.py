"""``dpg chain sweep``: move deposits from the node's addresses to the operator's treasury.

Registered into the ``dpg chain`` group (``register``). Signing needs the HSM, so this runs
where the signer is, never in the API or watcher process (R22); ``--dry-run`` reads the
chains and signs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dpgnode.domain.chains.sweeps import Sweep
from dpgnode.node import Node, build_payout_chains, build_sweeps
from dpgnode.services.chains.sweep_plan import SweepPlan

from .. import output
from ..errors import EXIT_FAILED
from ..state import open_node, settings
from . import JSON_HELP
from .operator import TOKEN_FILE_HELP, current_operator

if TYPE_CHECKING:
    from dpgnode.signer import Pkcs11Signer


def register(app: typer.Typer) -> None:
    """Add ``sweep`` to the ``dpg chain`` group."""
    app.command("sweep")(sweep)


def _signer(ctx: typer.Context) -> Pkcs11Signer:
    # Imported here: only signing commands load the HSM code (R22, see `dpg hsm`).
    from dpgnode.signer import build_signer

    signer = build_signer(settings(ctx))
    ctx.call_on_close(signer.close)
    return signer


def sweep(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(help="A chain (bitcoin, ethereum, ...) or an asset code (ETH, "
                       "USDT-ETH); default: every chain with a treasury address.",
                       metavar="[CHAIN|ASSET]", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be swept; sign nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=1, max=3600,
                            help="Seconds to wait for gas top-ups (and token sweeps) to be "
                            "mined before the transfers that need them.")
    ] = 300.0,
    token_file: Annotated[Path | None, typer.Option("--token-file", help=TOKEN_FILE_HELP,
                                                    dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Sweep deposit addresses to the treasury address of their chain (HSM-signed).

    Bitcoin: every confirmed output of the node's deposit addresses in one transaction (many
    inputs, no change). EVM: each address that received a payment sends its whole token
    balance, then its coin less the gas; an address without gas for a token transfer first
    gets a top-up from the chain's gas hot key. Every sweep is recorded, audited, and
    followed by the watcher until its fee is booked. Asks for confirmation unless --yes;
    exit 1 when something was left out or refused (the reasons are printed).

    Examples:
    ```
    dpg chain sweep --dry-run
    DPG_OPERATOR_TOKEN=dpgop_... dpg chain sweep USDT-ETH --yes --json
    ```
    """
    node = open_node(ctx)
    operator = None if dry_run else current_operator(node, token_file)
    signer = None if dry_run else _signer(ctx)
    chains = build_payout_chains(node, public_keys=signer)
    ctx.call_on_close(chains.close)
    sweeping = build_sweeps(node, chains)
    sweeping.service.wait_seconds = wait
    plans = sweeping.service.plan(target, sweeping.chain)
    count = sum(len(p.sweeps) for p in plans)
    if dry_run or count == 0:
        _report_plans(plans, node, as_json, dry_run=dry_run)
        return
    if not as_json:
        _print_plans(plans, node)
    if not yes:
        typer.confirm(f"Sign and broadcast {count} sweep transaction(s)?", abort=True, err=True)
    if operator is None or signer is None:  # set unless --dry-run, which returned above
        raise typer.Exit(EXIT_FAILED)
    report = sweeping.service.sweep(plans, operator=operator, signer=signer,
                                    chain=sweeping.chain)
    if as_json:
        output.emit_json({"batch": report.batch, "plans": [_plan_json(p, node) for p in plans],
                          "sweeps": [_sweep_json(s, node) for s in report.sweeps],
                          "problems": list(report.problems)})
    else:
        for done in report.sweeps:
            output.result(f"{done.kind} {done.id}: {done.status}, "
                          f"{node.assets.format(done.units, done.asset)} {done.asset} to "
                          f"{done.to_address}, txid {done.txid}")
    for problem in report.problems:
        output.error(problem)
    if report.problems:
        raise typer.Exit(EXIT_FAILED)


def _report_plans(plans: list[SweepPlan], node: Node, as_json: bool, *, dry_run: bool) -> None:
    if as_json:
        output.emit_json({"dryRun": dry_run, "plans": [_plan_json(p, node) for p in plans],
                          "sweeps": []})
        return
    _print_plans(plans, node)
    if not any(p.sweeps for p in plans):
        output.result("nothing to sweep")


def _print_plans(plans: list[SweepPlan], node: Node) -> None:
    grid = output.table("Chain", "Asset", "From", "Amount", "Fee (max)", "Gas top-up",
                        title="Sweeps")
    for plan in plans:
        for planned in plan.sweeps:
            where = (planned.inputs[0].address if len(planned.inputs) == 1
                     else f"{len(planned.inputs)} outputs")
            grid.add_row(plan.chain, plan.asset, where,
                         node.assets.format(planned.units, plan.asset),
                         _fee(node, plan, planned.fee),
                         _fee(node, plan, planned.top_up) if planned.top_up else "")
        for skipped in plan.skipped:
            grid.add_row(plan.chain, plan.asset, skipped.address or "-", "skipped", "",
                         skipped.reason)
    output.print_table(grid)


def _fee(node: Node, plan: SweepPlan, units: int) -> str:
    return f"{node.assets.format(units, plan.fee_asset)} {plan.fee_asset}" if plan.fee_asset else ""


def _plan_json(plan: SweepPlan, node: Node) -> dict[str, Any]:
    fmt = node.assets.format
    return {
        "chain": plan.chain, "asset": plan.asset, "treasury": plan.treasury,
        "amount": fmt(plan.units, plan.asset),
        "feeAsset": plan.fee_asset,
        "sweeps": [{"from": [i.address for i in p.inputs], "amount": fmt(p.units, plan.asset),
                    "fee": fmt(p.fee, plan.fee_asset), "gas": p.gas,
                    "topUp": fmt(p.top_up, plan.fee_asset)}
                   for p in plan.sweeps],
        "skipped": [{"address": s.address, "units": str(s.units), "reason": s.reason}
                    for s in plan.skipped],
    }


def _sweep_json(sweep: Sweep, node: Node) -> dict[str, Any]:
    return {
        "id": sweep.id, "batch": sweep.batch, "chain": sweep.chain, "kind": str(sweep.kind),
        "asset": sweep.asset, "amount": node.assets.format(sweep.units, sweep.asset),
        "to": sweep.to_address, "from": list(sweep.source_addresses), "txid": sweep.txid,
        "status": str(sweep.status), "failure": sweep.failure,
        "fee": None if sweep.fee_units is None else node.assets.format(
            sweep.fee_units, sweep.fee_asset),
        "feeAsset": sweep.fee_asset,
    }

