from __future__ import annotations

from collections.abc import Sequence
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
    ``advance`` moves the cursor past one delivered event and ``record_attempt`` stores
    each attempt, both durably, so a restarted relay resumes exactly where it stopped.
    """

    def pending(self, sink: str, limit: int) -> Sequence[OutboxEvent]:
        """Up to ``limit`` events after ``sink``'s cursor, oldest first."""
        ...

    def advance(self, sink: str, event: OutboxEvent) -> None:
        """Durably move ``sink``'s cursor past ``event``."""
        ...

    def record_attempt(
        self, sink: str, event: OutboxEvent, *, ok: bool, error: str, attempt: int
    ) -> None:
        """Durably record one delivery attempt."""
        ...

    def attempts_so_far(self, sink: str, event: OutboxEvent) -> int:
        """How many attempts ``sink`` has made for ``event``."""
        ...
