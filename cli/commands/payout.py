"""``dpg payout``: request, approve, cancel and inspect payouts.

Every payout passes the spend policy of its asset (``[custody.payout_policies.<ASSET>]``:
limits, allow-list, approvals) before anything is held or signed; a refusal names its rule
and exits 1. Requesting and approving need an operator token (``DPG_OPERATOR_TOKEN`` or
``--token-file``); the requester's own approval never counts. The approval that completes
a payout's set signs it with the HSM in that same command, which therefore must reach the
signer and the asset's chain node (``[chains]`` settings: outputs, fees, nonce). Signed
payouts wait in state ``signed`` until ``dpg payout broadcast`` hands them to the chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.ledger import AccountKind, AccountRef
from dpgnode.domain.money import parse_units
from dpgnode.node import Node, PayoutChains, build_payout_chains
from dpgnode.services.custody.payouts import PayoutRequest

from .. import output
from ..errors import EXIT_FAILED, usage_errors
from ..state import open_node, settings
from . import JSON_HELP, group
from .operator import TOKEN_FILE_HELP, current_operator

if TYPE_CHECKING:
    from dpgnode.signer import Pkcs11Signer

app = group("Request, approve and inspect payouts (policy-checked, HSM-signed).")

TokenFile = Annotated[Path | None, typer.Option("--token-file", help=TOKEN_FILE_HELP,
                                                dir_okay=False)]
_ID_HELP = "Payout id (po_...)."


def _signer(ctx: typer.Context) -> Pkcs11Signer:
    # Imported here: only signing commands load the HSM code (R22, see `dpg hsm`).
    from dpgnode.signer import build_signer

    signer = build_signer(settings(ctx))
    ctx.call_on_close(signer.close)
    return signer


def _chains(
    ctx: typer.Context, node: Node, signer: Pkcs11Signer | None = None
) -> PayoutChains:
    """The chain nodes of ``[chains]`` (no connection yet), closed when the command ends."""
    chains = build_payout_chains(node, public_keys=signer)
    ctx.call_on_close(chains.close)
    return chains


def _reachable(chains: PayoutChains, asset: str) -> None:
    """Before a command that may sign: the configured node answers and is on the right chain.

    A node that is down or on another chain stops the command here (exit 4 / 3) instead of
    failing the payout at signing. With no node configured at all the payout still fails at
    signing, releasing its hold, and the failure names the setting to add.
    """
    if chains.configured(asset):
        chains.check(asset)


def payout_json(payout: Payout, node: Node) -> dict[str, Any]:
    return {
        "id": payout.id,
        "status": str(payout.status),
        "asset": payout.asset,
        "amount": node.assets.format(payout.units, payout.asset),
        "destination": payout.destination,
        "debit": payout.debit_account.code,
        "source": payout.source,
        "requestedBy": payout.requested_by,
        "approvalsRequired": payout.approvals_required,
        "approvals": [
            {"operatorId": op, "at": at} for op, at in node.custody.payouts.approvals(payout.id)
        ],
        "holdId": payout.hold_id,
        "memo": payout.memo,
        "txid": payout.txid,
        "rawTx": payout.raw_tx,
        "failure": payout.failure,
        "feeUnits": None if payout.fee_units is None else str(payout.fee_units),
        "blockHeight": None if payout.block is None else payout.block.height,
        "createdAt": payout.created_at,
        "updatedAt": payout.updated_at,
    }


def _report(payout: Payout, node: Node, as_json: bool) -> None:
    if as_json:
        output.emit_json(payout_json(payout, node))
    else:
        amount = node.assets.format(payout.units, payout.asset)
        output.result(f"payout {payout.id}: {payout.status}, {amount} {payout.asset} to "
                      f"{payout.destination}")
        approvals = len(node.custody.payouts.approvals(payout.id))
        if payout.status is PayoutStatus.PENDING_APPROVAL:
            output.result(f"approvals: {approvals} of {payout.approvals_required}")
        if payout.txid:
            output.result(f"txid: {payout.txid}")
    if payout.status is PayoutStatus.FAILED:
        output.error(f"payout failed, its hold was released: {payout.failure}")
        raise typer.Exit(EXIT_FAILED)


def _debit(text: str, asset: str) -> AccountRef:
    node_ref = text if ":" in text else f"store:{text}:{asset}:available"
    with usage_errors("--debit"):
        ref = AccountRef.parse(node_ref, field="debit")
    if ref.kind is not AccountKind.AVAILABLE or ref.asset != asset:
        raise typer.BadParameter(f"must be an available account in {asset}",
                                 param_hint="--debit")
    return ref


@app.command("request")
def request(
    ctx: typer.Context,
    asset: Annotated[str, typer.Option("--asset", help="Asset code, e.g. BTC, ETH, USDT-ETH.")],
    to: Annotated[str, typer.Option("--to", help="Destination address.")],
    amount: Annotated[str, typer.Option("--amount", help="Decimal amount in the asset's units.")],
    source: Annotated[
        str,
        typer.Option("--source", help="What signs: a key account (ka_..., ka_.../INDEX on EVM) "
                     "of a seed wallet, or hot:LABEL for an HSM hot key."),
    ],
    debit: Annotated[
        str,
        typer.Option("--debit", help="Ledger account the amount is held on: "
                     "owner_type:owner_id:ASSET:available, or a store id."),
    ],
    key: Annotated[
        str | None,
        typer.Option("--key", help="Request key: repeating the command with it changes "
                     "nothing. Default: a new one."),
    ] = None,
    memo: Annotated[str, typer.Option("--memo", help="Why (kept with the payout).")] = "",
    token_file: TokenFile = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    r"""Request a payout: policy check, then the amount is held in the ledger.

    Below the asset's approval threshold it is signed at once (needs the HSM); above it,
    it waits for `dpg payout approve` by other operators.

    Examples:
    ```
    dpg payout request --asset BTC --to bc1q... --amount 0.25 --source ka_0123 --debit st_1
    DPG_OPERATOR_TOKEN=dpgop_... dpg payout request --asset ETH --to 0xAb... --amount 1 \
      --source hot:ETH:mainnet --debit operator:op:ETH:available --key po-2025-001
    ```
    """
    node = open_node(ctx)
    operator = current_operator(node, token_file)
    with usage_errors("--asset"):
        decimals = node.assets.require(asset).decimals
    with usage_errors("--amount"):
        units = parse_units(amount, decimals, field="amount")
    payout_request = PayoutRequest(
        asset=asset, units=units, destination=to, debit_account=_debit(debit, asset),
        source=source, request_key=key or node.ids.new("req"), memo=memo,
    )
    payouts = node.custody.payouts
    needs = payouts.policy.for_asset(asset)
    immediate = needs is not None and needs.approvals_needed(units) == 0
    signer = _signer(ctx) if immediate else None
    chains = _chains(ctx, node, signer)
    if immediate:
        _reachable(chains, asset)
    payout = payouts.request(
        operator, payout_request, signer=signer, funding=chains.funding,
    )
    _report(payout, node, as_json)


@app.command("approve")
def approve(
    ctx: typer.Context,
    payout_id: Annotated[str, typer.Argument(help=_ID_HELP, metavar="PAYOUT_ID")],
    token_file: TokenFile = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Approve a payout as yourself; the approval that completes the set signs it.

    An operator approving twice counts once, and the requester cannot approve their own
    payout. The policy is checked again right before signing.

    Examples:
    ```
    DPG_OPERATOR_TOKEN=dpgop_... dpg payout approve po_0123
    dpg payout approve po_0123 --token-file ~/.dpg/operator.token --json
    ```
    """
    node = open_node(ctx)
    operator = current_operator(node, token_file)
    payouts = node.custody.payouts
    current = payouts.payout(payout_id)
    signer = _signer(ctx)
    chains = _chains(ctx, node, signer)
    approvals = len(payouts.approvals(current.id))
    if current.status is PayoutStatus.PENDING_APPROVAL and (
        approvals + 1 >= current.approvals_required
    ):
        _reachable(chains, current.asset)  # this approval may sign
    payout = payouts.approve(payout_id, operator, signer=signer, funding=chains.funding)
    _report(payout, node, as_json)


@app.command("broadcast")
def broadcast(
    ctx: typer.Context,
    payout_id: Annotated[str, typer.Argument(help=_ID_HELP, metavar="PAYOUT_ID")],
    token_file: TokenFile = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Send a signed payout's transaction to its chain node; exit 1 if the node refuses it.

    Bitcoin: `testmempoolaccept` first, then `sendrawtransaction`; EVM:
    `eth_sendRawTransaction`. Accepted: the payout becomes `broadcast`. Refused: it stays
    `signed` and the node's reason is shown. Every attempt is in the audit log; repeating
    the command is safe (a transaction the node has already counts as accepted).

    Examples:
    ```
    DPG_OPERATOR_TOKEN=dpgop_... dpg payout broadcast po_0123
    dpg payout broadcast po_0123 --token-file ~/.dpg/operator.token --json
    ```
    """
    node = open_node(ctx)
    operator = current_operator(node, token_file)
    outcome = node.custody.payouts.broadcast(payout_id, operator, _chains(ctx, node).broadcaster)
    payout = outcome.payout
    if as_json:
        output.emit_json({**payout_json(payout, node), "accepted": outcome.accepted,
                          "known": outcome.known, "reason": outcome.reason})
    elif outcome.accepted:
        already = " (the node had it already)" if outcome.known else ""
        output.result(f"payout {payout.id}: {payout.status}, txid {payout.txid}{already}")
    if not outcome.accepted:
        output.error(f"the node refused the transaction: {outcome.reason}; payout "
                     f"{payout.id} stays {payout.status}")
        raise typer.Exit(EXIT_FAILED)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    payout_id: Annotated[str, typer.Argument(help=_ID_HELP, metavar="PAYOUT_ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    token_file: TokenFile = None,
) -> None:
    """Cancel a payout awaiting approval, or abandon one stuck in signing; releases the hold.

    Examples:
    ```
    dpg payout cancel po_0123 --reason "wrong address"
    ```
    """
    node = open_node(ctx)
    operator = current_operator(node, token_file)
    payout = node.custody.payouts.cancel(payout_id, operator, reason)
    output.result(f"payout {payout.id} is {payout.status}; its hold was released")


@app.command("show")
def show(
    ctx: typer.Context,
    payout_id: Annotated[str, typer.Argument(help=_ID_HELP, metavar="PAYOUT_ID")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show a payout, its approvals and (once signed) its raw transaction.

    Examples:
    ```
    dpg payout show po_0123 --json
    ```
    """
    node = open_node(ctx)
    payout = node.custody.payouts.payout(payout_id)
    if as_json:
        output.emit_json(payout_json(payout, node))
        return
    data = payout_json(payout, node)
    grid = output.table("Field", "Value", title=f"Payout {payout.id}")
    for name in ("status", "asset", "amount", "destination", "debit", "source", "requestedBy",
                 "approvalsRequired", "memo", "txid", "rawTx", "failure"):
        output.add_row(grid, name, "" if data[name] is None else str(data[name]))
    approvals = ", ".join(f"{a['operatorId']} at {output.when(a['at'])}"
                          for a in data["approvals"])
    output.add_row(grid, "approvals", approvals)
    output.print_table(grid)


@app.command("list")
def list_payouts(
    ctx: typer.Context,
    status: Annotated[
        PayoutStatus | None, typer.Option("--status", help="Only payouts in this state.")
    ] = None,
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most this many.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List payouts, newest first.

    Examples:
    ```
    dpg payout list --status pending_approval
    dpg payout list --asset BTC --json
    ```
    """
    node = open_node(ctx)
    found = node.custody.payouts.payouts(status=status, asset=asset, limit=limit)
    if as_json:
        output.emit_json([payout_json(p, node) for p in found])
        return
    grid = output.table("Id", "Status", "Amount", "Destination", "Created", title="Payouts")
    for p in found:
        output.add_row(grid, p.id, str(p.status),
                       f"{node.assets.format(p.units, p.asset)} {p.asset}", p.destination,
                       output.when(p.created_at))
    output.print_table(grid)
