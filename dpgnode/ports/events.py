from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from dpgnode.domain.events import OutboxEvent


class EventSink(Protocol):
    """A destination the outbox relay delivers events to (subscriber, webhook, broker).

    Contract: ``deliver`` returns only once the sink has durably accepted the event, and
    raises any exception otherwise; the relay then retries the same event (same id, same
    payload) later. Sinks must tolerate duplicates: delivery is at-least-once.
    """

    name: str

    def deliver(self, event: OutboxEvent) -> None:
        """Hand ``event`` to the sink; raise on any failure."""
        ...


class OutboxStore(Protocol):
    """Where the relay reads pending events and records its progress.

    Contract: ``pending`` returns events after the sink's cursor in commit order;
    ``mark_delivered`` moves the cursor past one delivered event and ``record_failure``
    stores a failed attempt, both durably, so a restarted relay resumes exactly where it stopped.
    """

    def pending(self, sink: str, limit: int) -> Sequence[OutboxEvent]:
        """Up to ``limit`` events after ``sink``'s cursor, oldest first."""
        ...

    def mark_delivered(self, sink: str, event: OutboxEvent, *, attempt: int) -> None:
        """Durably record the successful attempt and move the cursor past ``event``, together."""
        ...

    def record_failure(self, sink: str, event: OutboxEvent, *, error: str, attempt: int) -> None:
        """Durably record one failed delivery attempt."""
        ...

    def attempt_history(self, sink: str, event: OutboxEvent) -> tuple[int, datetime | None]:
        """How many attempts ``sink`` made for ``event``, and when the last one was."""
        ...
