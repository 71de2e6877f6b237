"""The node's background relay delivers events to in-process subscribers and resumes."""

from __future__ import annotations

import threading
from pathlib import Path

from dpgnode.domain.events import OutboxEvent
from dpgnode.node import build_node
from dpgnode.services.access import StoreFields
from dpgnode.settings import load_settings


def _wait_for(events: list[OutboxEvent], count: int, signal: threading.Event) -> None:
    while len(events) < count:
        assert signal.wait(10), f"only {len(events)} of {count} events arrived"
        signal.clear()


def test_background_relay_delivers_store_events_when_workers_run(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    node = build_node(settings, upgrade=True)
    seen: list[OutboxEvent] = []
    arrived = threading.Event()

    def subscriber(event: OutboxEvent) -> None:
        seen.append(event)
        arrived.set()

    try:
        node.subscribe("test", subscriber, types=("store.",))
        node.start_workers(relay_interval=0.01)
        store = node.access.create_store(StoreFields(name="Relay shop"))
        node.access.update_store(store.id, StoreFields(name="Renamed"))
        _wait_for(seen, 2, arrived)
    finally:
        node.close()
    assert [e.type for e in seen] == ["store.created", "store.updated"]
    assert all(e.aggregate == f"store:{store.id}" for e in seen)

    # A restarted node resumes from the stored cursor: nothing is delivered twice.
    again: list[OutboxEvent] = []
    restarted = build_node(settings)
    try:
        restarted.subscribe("test", again.append, types=("store.",))
        restarted.access.archive_store(store.id)
        restarted.relay.run_once()
    finally:
        restarted.close()
    assert [e.type for e in again] == ["store.archived"]
