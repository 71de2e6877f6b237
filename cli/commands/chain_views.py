"""What ``dpg chain`` prints: JSON documents and tables of statuses, payments, incidents.

Amounts are decimal strings in the asset's unit; times are ISO 8601 (``output.emit_json``).
"""

from __future__ import annotations

from typing import Any

from dpgnode.domain.chains.cursor import Incident
from dpgnode.domain.chains.payments import Payment
from dpgnode.domain.chains.reconcile import Reconciliation
from dpgnode.node import Node
from dpgnode.services.chains.monitor import ChainHealth
from dpgnode.services.chains.status import ChainStatus

from .. import output


def incident_json(incident: Incident) -> dict[str, Any]:
    return {"id": incident.id, "chain": incident.chain, "kind": str(incident.kind),
            "message": incident.message, "details": dict(incident.details),
            "createdAt": incident.created_at, "resolvedAt": incident.resolved_at}


def reconciliation_json(run: Reconciliation, node: Node) -> dict[str, Any]:
    return {
        "chain": run.chain, "state": str(run.state), "at": run.at,
        "settledHeight": run.settled_height, "reason": run.reason,
        "incidentId": run.incident_id,
        "totals": [{"asset": t.asset, "ledger": node.assets.format(t.ledger, t.asset),
                    "chain": node.assets.format(t.chain, t.asset),
                    "difference": node.assets.format(t.delta, t.asset),
                    "addresses": t.addresses, "unsettled": t.unsettled} for t in run.totals],
        "differences": [{"asset": d.asset, "address": d.address, "kind": str(d.kind),
                         "ledger": node.assets.format(d.ledger, d.asset),
                         "chain": node.assets.format(d.chain, d.asset),
                         "difference": node.assets.format(d.delta, d.asset),
                         "detail": d.detail} for d in run.differences],
        "unsettled": [{"asset": a, "address": addr} for a, addr in run.unsettled],
    }


def status_json(status: ChainStatus, node: Node) -> dict[str, Any]:
    run = status.reconciliation
    return {
        "chain": status.chain, "state": status.state, "nodeHeight": status.node_height,
        "ourHeight": status.our_height, "lag": status.lag, "mempoolSize": status.mempool_size,
        "paused": status.paused, "error": status.error,
        "endpoints": [{"name": e.name, "state": e.state, "head": e.head, "problem": e.problem}
                      for e in status.endpoints],
        "incidents": [incident_json(i) for i in status.incidents],
        "reconciliation": None if run is None else reconciliation_json(run, node),
    }


def text(value: int | None) -> str:
    return "?" if value is None else str(value)


def health_json(health: ChainHealth) -> dict[str, Any]:
    return {"chain": health.chain, "state": health.state, "nodeHeight": health.node_height,
            "ourHeight": health.our_height, "lag": health.lag, "paused": health.paused}


def payment_json(payment: Payment, node: Node) -> dict[str, Any]:
    return {
        "chain": payment.chain, "paymentKey": payment.key, "txid": payment.txid,
        "address": payment.address, "asset": payment.asset,
        "amount": node.assets.format(payment.units, payment.asset),
        "status": str(payment.status), "owner": payment.owner, "reference": payment.reference,
        "blockHeight": None if payment.block is None else payment.block.height,
        "blockHash": None if payment.block is None else payment.block.hash,
        "conflictTxid": payment.conflict_txid, "firstSeenAt": payment.first_seen_at,
        "updatedAt": payment.updated_at,
    }


def print_reconciliation(run: Reconciliation, node: Node) -> None:
    where = f" at height {run.settled_height}" if run.settled_height is not None else ""
    line = f"{run.chain}: {run.state}{where}"
    output.result(f"{line} ({run.reason})" if run.reason else line)
    if run.totals:
        grid = output.table("asset", "ledger", "chain", "difference", "addresses", "unsettled",
                            title=f"{run.chain} totals")
        for t in run.totals:
            output.add_row(grid, t.asset, node.assets.format(t.ledger, t.asset),
                           node.assets.format(t.chain, t.asset),
                           node.assets.format(t.delta, t.asset), str(t.addresses),
                           str(t.unsettled))
        output.print_table(grid)
    if run.differences:
        grid = output.table("asset", "address", "ledger", "chain", "difference", "detail",
                            title=f"{run.chain} differences")
        for d in run.differences:
            output.add_row(grid, d.asset, d.address, node.assets.format(d.ledger, d.asset),
                           node.assets.format(d.chain, d.asset),
                           node.assets.format(d.delta, d.asset), d.detail or str(d.kind))
        output.print_table(grid)
