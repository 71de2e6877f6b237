"""Figures read at scrape time: ledger totals, outbox queues and custody signing outcomes.

:func:`register_sources` gives the ``Metrics`` recorder one source per family; each reads
committed state through the ``ObservedState`` port when Prometheus scrapes, so ``/metrics``
never shows a figure older than the scrape and nothing is kept in memory between scrapes.
Series that may be empty (signing outcomes) are always present, at 0, so alerts on them work
from the node's first minute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dpgnode.ports.clock import Clock
from dpgnode.ports.metrics import (
    LEDGER_BALANCE,
    LEDGER_ENTRIES,
    OUTBOX_EVENTS,
    OUTBOX_OLDEST_PENDING_AGE,
    OUTBOX_PENDING,
    SIGNING_REQUESTS,
    Metrics,
    ObservedState,
    Sample,
)

SIGNING_OUTCOMES = ("requested", "succeeded", "failed")
"""Outcomes of ``dpg_custody_signing_total``: the audit actions ``signing.<outcome>``."""


class ScrapeSources:
    """The sources of the families above, over ``state`` (see the module docstring).

    Args:
        state: committed state to read.
        clock: the time pending events' ages are measured to.
        sinks: names of the outbox sinks this process relays to, read at each scrape.
    """

    def __init__(
        self, state: ObservedState, clock: Clock, sinks: Callable[[], Iterable[str]]
    ) -> None:
        self._state = state
        self._clock = clock
        self._sinks = sinks

    def ledger_balances(self) -> list[Sample]:
        """Summed balances per asset, owner type and account kind."""
        return [
            ((t.asset, t.owner_type, t.kind), t.units) for t in self._state.ledger_totals()
        ]

    def ledger_entries(self) -> list[Sample]:
        """Entries committed to the journal."""
        return [((), self._state.ledger_entries())]

    def outbox_events(self) -> list[Sample]:
        """Events written to the outbox."""
        return [((), self._state.outbox_events())]

    def outbox_pending(self) -> list[Sample]:
        """Events each sink has not accepted yet."""
        return [((b.sink,), b.pending) for b in self._state.outbox_backlog(self._sinks())]

    def outbox_oldest_age(self) -> list[Sample]:
        """Seconds since the oldest event each sink has not accepted was written."""
        now = self._clock.now()
        return [
            ((b.sink,), 0 if b.oldest_at is None else max(0.0, (now - b.oldest_at).total_seconds()))
            for b in self._state.outbox_backlog(self._sinks())
        ]

    def signing(self) -> list[Sample]:
        """Signing requests, successes and failures recorded in the custody audit log."""
        counts = self._state.signing_outcomes()
        return [((outcome,), counts.get(f"signing.{outcome}", 0)) for outcome in SIGNING_OUTCOMES]


def register_sources(metrics: Metrics, sources: ScrapeSources) -> None:
    """Serve the ledger, outbox and signing families from ``sources`` at every scrape."""
    metrics.add_source(LEDGER_BALANCE, sources.ledger_balances)
    metrics.add_source(LEDGER_ENTRIES, sources.ledger_entries)
    metrics.add_source(OUTBOX_EVENTS, sources.outbox_events)
    metrics.add_source(OUTBOX_PENDING, sources.outbox_pending)
    metrics.add_source(OUTBOX_OLDEST_PENDING_AGE, sources.outbox_oldest_age)
    metrics.add_source(SIGNING_REQUESTS, sources.signing)
