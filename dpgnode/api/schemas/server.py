from __future__ import annotations

from dpgnode.api.schemas.base import Output


class Health(Output):
    synchronized: bool


class SyncStatus(Output):
    """One followed chain: Greenfield's four fields first, then the node's own.

    Seen by any valid key, so it names no address and no amount: the incidents' and the
    reconciliation's details are behind ``dpg.blockchain.view`` (``/blockchain/incidents``).
    """

    payment_method_id: str
    """``<native asset>-CHAIN`` (``BTC-CHAIN``), as Greenfield names on-chain methods."""
    chain_height: int
    """The chain node's height (0 while unknown)."""
    sync_height: int | None
    """The last block the watcher processed."""
    available: bool
    """The watcher is following the chain (neither paused nor failing)."""
    chain: str = ""
    state: str = ""
    """``synced``, ``syncing``, ``paused``, ``failing`` or ``starting``."""
    node_height: int | None = None
    our_height: int | None = None
    lag: int | None = None
    mempool_size: int | None = None
    paused: str = ""
    """Why the watcher stopped (an incident an operator must resolve); empty when following."""
    open_incidents: int = 0
    incident_kinds: list[str] = []
    last_error: str = ""
    """Why the last poll failed (credentials and URL paths removed); empty when it succeeded."""
    failures: int = 0
    last_poll_time: int | None = None
    last_success_time: int | None = None
    reconciliation: str | None = None
    """``matched``, ``mismatch``, ``skipped`` or ``failed`` (null: not run in this process)."""
    reconciliation_differences: int = 0
    reconciled_time: int | None = None


class ServerInfo(Output):
    version: str
    onion: str | None
    supported_payment_methods: list[str]
    fully_synched: bool
    sync_status: list[SyncStatus]
