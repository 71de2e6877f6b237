from __future__ import annotations

from dpgnode.api.schemas.base import Output


class Health(Output):
    synchronized: bool


class SyncStatus(Output):
    payment_method_id: str
    chain_height: int
    sync_height: int | None
    available: bool


class ServerInfo(Output):
    version: str
    onion: str | None
    supported_payment_methods: list[str]
    fully_synched: bool
    sync_status: list[SyncStatus]
