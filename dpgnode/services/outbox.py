"""The outbox relay: delivers stored events to sinks, at least once, in order.

Each sink has a durable cursor; the relay hands it events after the cursor in commit order
and advances the cursor only after the sink accepted the event. A failing event blocks the
events behind it for that sink (head-of-line), which is what keeps order per aggregate (and
overall) without per-aggregate bookkeeping; other sinks are unaffected. Every attempt is
recorded, and the retry delay grows with the recorded attempt count, so a restarted relay
neither resets its backoff nor re-orders anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dpgnode.ports.clock import Clock
from dpgnode.ports.events import EventSink, OutboxStore


@dataclass(frozen=True, slots=True)
class RelayPass:
    """What one relay pass did."""

    delivered: int
    failed: int


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failures: 1 s doubling to 10 min."""
    return timedelta(seconds=min(600, 2 ** max(0, attempts - 1)))


class OutboxRelay:
    """Delivers outbox events to its sinks; see the module docstring."""

    def __init__(
        self, store: OutboxStore, sinks: list[EventSink], clock: Clock, batch: int = 200
    ) -> None:
        self._store = store
        self._sinks = sinks
        self._clock = clock
        self._batch = batch
        self._not_before: dict[str, datetime] = {}

    def add_sink(self, sink: EventSink) -> None:
        """Register another sink; it starts from its stored cursor."""
        self._sinks.append(sink)

    def run_once(self) -> RelayPass:
        """One pass over every sink; returns how many deliveries succeeded and failed."""
        delivered = failed = 0
        now = self._clock.now()
        for sink in list(self._sinks):
            if self._not_before.get(sink.name, now) > now:
                continue
            for event in self._store.pending(sink.name, self._batch):
                attempt = self._store.attempts_so_far(sink.name, event) + 1
                try:
                    sink.deliver(event)
                except Exception as exc:  # any sink failure means: retry later
                    self._store.record_attempt(
                        sink.name,
                        event,
                        ok=False,
                        error=f"{type(exc).__name__}: {exc}"[:500],
                        attempt=attempt,
                    )
                    self._not_before[sink.name] = now + backoff(attempt)
                    failed += 1
                    break
                self._store.record_attempt(sink.name, event, ok=True, error="", attempt=attempt)
                self._store.advance(sink.name, event)
                delivered += 1
        return RelayPass(delivered, failed)
