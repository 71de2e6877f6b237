"""Health, server information and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency

from dpgnode import __version__
from dpgnode.api.errors import PUBLIC_ERRORS, READ_ERRORS, problems
from dpgnode.api.policy import authenticated, public
from dpgnode.api.schemas.server import Health, ServerInfo, SyncStatus
from dpgnode.domain.money import AssetKind
from dpgnode.node import Node
from dpgnode.services.chains.status import ChainStatus, all_synced


@get(
    "/health", opt=public(), sync_to_thread=False, tags=["Server"],
    responses=problems(*PUBLIC_ERRORS),
)
def health() -> Health:
    """Whether the node is up and synchronized (no key needed)."""
    return Health(synchronized=True)


@get(
    "/server/info", opt=authenticated(), sync_to_thread=True, tags=["Server"],
    responses=problems(*READ_ERRORS),
)
def server_info(node: NamedDependency[Node]) -> ServerInfo:
    """Version and synchronization state of the node (any valid key).

    ``syncStatus`` has one entry per followed chain, from what the watchers last saw: the
    API never waits on a chain node. ``fullySynched`` is false while any chain is behind,
    paused or failing.
    """
    statuses = node.chains.status.status() if node.chains.status is not None else []
    sync = [_sync_status(node, s) for s in statuses]
    return ServerInfo(
        version=__version__, onion=None,
        supported_payment_methods=[s.payment_method_id for s in sync],
        fully_synched=all_synced(statuses), sync_status=sync,
    )


def _unix(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def _sync_status(node: Node, status: ChainStatus) -> SyncStatus:
    native = next((code for code, asset in node.assets.items()
                   if asset.network == status.chain and asset.kind is AssetKind.CRYPTO),
                  status.chain.upper())
    run = status.reconciliation
    return SyncStatus(
        payment_method_id=f"{native}-CHAIN", chain_height=status.node_height or 0,
        sync_height=status.our_height, available=status.state in ("synced", "syncing"),
        chain=status.chain, state=status.state, node_height=status.node_height,
        our_height=status.our_height, lag=status.lag, mempool_size=status.mempool_size,
        paused=status.paused, open_incidents=len(status.incidents),
        incident_kinds=sorted({str(i.kind) for i in status.incidents}),
        last_error=status.error, failures=status.failures,
        last_poll_time=_unix(status.last_poll_at),
        last_success_time=_unix(status.last_success_at),
        reconciliation=None if run is None else str(run.state),
        reconciliation_differences=0 if run is None else len(run.differences),
        reconciled_time=None if run is None else _unix(run.at),
    )


@get(
    "/openapi.json", opt=public(), sync_to_thread=False, include_in_schema=False,
    media_type="application/vnd.oai.openapi+json",
)
def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return request.app.openapi_schema.to_schema()


ROUTES = [health, server_info, openapi_document]
