"""In-process subscribers: functions called with each event, in outbox order.

A subscriber that raises makes the relay retry the same event later (at-least-once), so
subscribers must be idempotent by ``event.id``.
"""

from __future__ import annotations

from collections.abc import Callable

from dpgnode.domain.events import OutboxEvent

Subscriber = Callable[[OutboxEvent], None]


class InProcessSink:
    """``EventSink`` fanning events out to subscribers, optionally filtered by type prefix."""

    def __init__(self, name: str, subscriber: Subscriber, *, types: tuple[str, ...] = ()) -> None:
        self.name = name
        self._subscriber = subscriber
        self._types = types

    def deliver(self, event: OutboxEvent) -> None:
        if self._types and not event.type.startswith(self._types):
            return
        self._subscriber(event)
