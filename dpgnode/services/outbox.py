"""The outbox relay: delivers stored events to sinks, at least once, in order.

Each sink has a durable cursor; the relay hands it events after the cursor in commit order
and advances the cursor only after the sink accepted the event. A failing event blocks the
events behind it for that sink (head-of-line), which is what keeps order per aggregate (and
overall) without per-aggregate bookkeeping; other sinks are unaffected. Every attempt is
recorded, and the next attempt waits ``backoff(attempts)`` after the last recorded one, so
a restarted relay neither resets its backoff nor re-orders anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from dpgnode.ports.clock import Clock
from dpgnode.ports.events import EventSink, OutboxStore
from dpgnode.ports.metrics import NULL_METRICS, Metrics


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
        self,
        store: OutboxStore,
        sinks: list[EventSink],
        clock: Clock,
        batch: int = 200,
        *,
        metrics: Metrics = NULL_METRICS,
    ) -> None:
        self._store = store
        self._sinks = sinks
        self._clock = clock
        self._batch = batch
        self._metrics = metrics

    def add_sink(self, sink: EventSink) -> None:
        """Register another sink; it starts from its stored cursor."""
        self._sinks.append(sink)

    def sink_names(self) -> list[str]:
        """Names of the sinks this relay delivers to (their queues are what ``/metrics`` shows)."""
        return [sink.name for sink in list(self._sinks)]

    def run_once(self) -> RelayPass:
        """One pass over every sink; returns how many deliveries succeeded and failed."""
        delivered = failed = 0
        now = self._clock.now()
        for sink in list(self._sinks):
            for event in self._store.pending(sink.name, self._batch):
                attempts, last_at = self._store.attempt_history(sink.name, event)
                if attempts and last_at is not None and last_at + backoff(attempts) > now:
                    break  # still backing off, also after a restart: the wait is derived
                attempt = attempts + 1
                try:
                    sink.deliver(event)
                except Exception as exc:  # any sink failure means: retry later
                    self._store.record_failure(
                        sink.name,
                        event,
                        error=f"{type(exc).__name__}: {exc}"[:500],
                        attempt=attempt,
                    )
                    failed += 1
                    self._metrics.record_outbox_delivery(sink.name, "failed")
                    break
                self._store.mark_delivered(sink.name, event, attempt=attempt)
                delivered += 1
                self._metrics.record_outbox_delivery(sink.name, "ok")
        return RelayPass(delivered, failed)
