"""Event stream bodies: outbox events as admins read them, and the relay's progress."""

from __future__ import annotations

from typing import Any

from dpgnode.api.schemas.base import Output
from dpgnode.domain.events import OutboxEvent


class EventData(Output):
    seq: int
    """Position in the stream: read on with ``after=<seq>``."""
    id: str
    """Stable id: a receiver de-duplicates at-least-once deliveries with it."""
    type: str
    aggregate: str
    created_time: int
    data: dict[str, Any]
    """The event's payload: JSON, whose fields depend on ``type``."""

    @classmethod
    def of(cls, event: OutboxEvent) -> EventData:
        return cls(
            seq=event.seq, id=event.id, type=event.type, aggregate=event.aggregate,
            created_time=int(event.created_at.timestamp()), data=dict(event.payload),
        )


class EventPage(Output):
    events: list[EventData]
    next: int
    """``after`` for the next page (the last event's seq, or the one asked for)."""


class SinkProgressData(Output):
    sink: str
    delivered_seq: int
    pending: int
    """Events written but not yet delivered to this sink."""


class EventProgressData(Output):
    newest_seq: int
    sinks: list[SinkProgressData]
