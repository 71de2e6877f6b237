"""What the node measures, as services see it: a recorder that imports no metrics library.

Services record through :class:`Metrics`; the composition root (``dpgnode.node``) gives them
the Prometheus implementation, tests and tools :data:`NULL_METRICS`. Two kinds of figure:

- **events**, recorded where they happen: a matching call's latency, a signer call's
  outcome, a chain's heights, a webhook or outbox delivery;
- **state read at scrape time** (ledger totals, queue depths, invoices by status): a service
  registers a *source* for one of the :class:`Family` constants below, and the exporter calls
  it on every scrape, so the figures are never staler than the scrape.

Contract for every implementation: recording never raises and never blocks on I/O (a
metric must not fail a payment); label values come from small fixed sets (pair symbols,
chain names, asset codes, outcomes), never ids, amounts or user input, so the number of
series stays bounded; a source that raises is skipped for that scrape and reported as down
(``dpg_metrics_source_up``), the other figures are still served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

Sample = tuple[tuple[str, ...], int | float]
"""One series of a family at scrape time: its label values (in the family's label order)
and its value. Amounts stay integers here; only the exposition turns them into floats."""
Source = Callable[[], Iterable[Sample]]
"""Reads a family's current samples; called on every scrape."""


@dataclass(frozen=True, slots=True)
class Family:
    """A metric whose samples a source supplies at scrape time.

    Attributes:
        name: Full metric name (``dpg_...``); counters are exposed with ``_total``.
        help: What the figure means, shown as ``# HELP``.
        labels: Label names, in the order of each sample's label values.
        kind: ``gauge`` for a level, ``counter`` for a running total that never decreases.
    """

    name: str
    help: str
    labels: tuple[str, ...] = ()
    kind: Literal["gauge", "counter"] = "gauge"


LEDGER_BALANCE = Family(
    "dpg_ledger_balance_units",
    "Sum of account balances in the asset's base units (satoshi, wei, cent), by owner type and "
    "account kind; balanced books sum to 0 per asset",
    ("asset", "owner_type", "kind"),
)
LEDGER_ENTRIES = Family(
    "dpg_ledger_entries", "Journal entries committed (the ledger head's sequence)", (), "counter"
)
OUTBOX_EVENTS = Family(
    "dpg_outbox_events", "Events written to the outbox (the newest event's sequence)", (),
    "counter",
)
OUTBOX_PENDING = Family(
    "dpg_outbox_pending_events", "Outbox events a sink has not accepted yet (queue depth)",
    ("sink",),
)
OUTBOX_OLDEST_PENDING_AGE = Family(
    "dpg_outbox_oldest_pending_age_seconds",
    "Age of the oldest event a sink has not accepted yet (0 when its queue is empty)",
    ("sink",),
)
SIGNING_REQUESTS = Family(
    "dpg_custody_signing",
    "Payout signing requests in the custody audit log, by outcome (requested, succeeded, "
    "failed); counts every signer process, since the log is shared",
    ("outcome",), "counter",
)
INVOICES = Family("dpg_invoices", "Invoices by status", ("status",))
"""For the merchant service: register a source counting invoices per status."""
WEBHOOK_QUEUE_DEPTH = Family(
    "dpg_webhook_queue_depth", "Webhook deliveries waiting to be sent or retried"
)
"""For the merchant service: register a source counting deliveries not yet acknowledged."""


@dataclass(frozen=True, slots=True)
class BalanceTotal:
    """The balances of one group of ledger accounts, summed exactly in base units."""

    asset: str
    owner_type: str
    kind: str
    units: int


@dataclass(frozen=True, slots=True)
class SinkBacklog:
    """What one outbox sink still has to accept."""

    sink: str
    pending: int
    oldest_at: datetime | None
    """Creation time of the oldest event it has not accepted (``None``: nothing pending)."""


class ObservedState(Protocol):
    """Committed state the scrape-time sources read.

    Contract: plain reads of committed data, each cheap enough to run on every scrape.
    """

    def ledger_totals(self) -> Sequence[BalanceTotal]:
        """Account balances summed per asset, owner type and account kind."""
        ...

    def ledger_entries(self) -> int:
        """Journal entries committed (the head's sequence)."""
        ...

    def outbox_events(self) -> int:
        """The newest outbox event's sequence (0 when empty)."""
        ...

    def outbox_backlog(self, sinks: Iterable[str]) -> Sequence[SinkBacklog]:
        """Each named sink's undelivered events, in the order given."""
        ...

    def signing_outcomes(self) -> Mapping[str, int]:
        """Custody audit records of signing, counted per action (``signing.succeeded``...)."""
        ...


class Metrics(Protocol):
    """Where services record what they measure (see the module docstring's contract)."""

    def time_matching(self, pair: str) -> AbstractContextManager[object]:
        """Time one call into a pair's matching engine (the block's duration is observed)."""
        ...

    def record_signer_call(self, operation: str, outcome: str) -> None:
        """Count one signer call by operation (``sign_ecdsa``...) and outcome.

        ``outcome`` is ``ok`` or the error's code (``unavailable``, ``integrity_violation``).
        """
        ...

    def record_chain_height(self, chain: str, node_height: int, our_height: int) -> None:
        """The chain node's tip and the height the watcher has processed (lag = difference)."""
        ...

    def record_outbox_delivery(self, sink: str, outcome: Literal["ok", "failed"]) -> None:
        """Count one attempt to hand an outbox event to ``sink``."""
        ...

    def record_webhook_delivery(self, outcome: str) -> None:
        """Count one webhook attempt by outcome (``delivered``, ``failed``, ``gave_up``).

        No endpoint label: endpoints are per store, so their number has no bound.
        """
        ...

    def add_source(self, family: Family, source: Source) -> None:
        """Serve ``family`` from ``source`` at every scrape (a later source replaces it)."""
        ...


class NullMetrics:
    """Records nothing: the default of services built without an exporter (tests, CLI)."""

    def time_matching(self, pair: str) -> AbstractContextManager[object]:
        """Time nothing."""
        return nullcontext()

    def record_signer_call(self, operation: str, outcome: str) -> None:
        """Count nothing."""

    def record_chain_height(self, chain: str, node_height: int, our_height: int) -> None:
        """Keep nothing."""

    def record_outbox_delivery(self, sink: str, outcome: Literal["ok", "failed"]) -> None:
        """Count nothing."""

    def record_webhook_delivery(self, outcome: str) -> None:
        """Count nothing."""

    def add_source(self, family: Family, source: Source) -> None:
        """Forget ``source``: nothing is ever scraped."""


NULL_METRICS: Metrics = NullMetrics()


class MetricsExporter(Metrics, Protocol):
    """The recorder plus what only the HTTP layer needs: request figures and the exposition."""

    def record_http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request and observe its duration.

        ``route`` is the route's template (``/api/v1/stores/{storeId}``), never the raw path.
        """
        ...

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition body and its content type, negotiated from an ``Accept`` header."""
        ...
