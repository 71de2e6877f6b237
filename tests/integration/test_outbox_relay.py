"""The outbox relay: at-least-once, in order, attempts recorded, resumes after a restart."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage import tables
from dpgnode.domain.events import OutboxEvent
from dpgnode.node import Node
from dpgnode.services.access import StoreFields
from dpgnode.services.outbox import OutboxRelay, RelayPass, backoff
from tests import factories as f

pytestmark = pytest.mark.integration


class RecordingSink:
    """An in-process ``EventSink`` that fails on demand and records what it accepted."""

    def __init__(self, name: str = "sink", *, failures: int = 0, fail_on: str = "") -> None:
        self.name = name
        self.failures = failures  # fail this many deliveries (of ``fail_on``, or of any event)
        self.fail_on = fail_on
        self.received: list[OutboxEvent] = []

    def deliver(self, event: OutboxEvent) -> None:
        if self.failures and (not self.fail_on or event.id == self.fail_on):
            self.failures -= 1
            raise ConnectionError("sink down")
        self.received.append(event)


def _make_events(node: Node) -> list[str]:
    """Interleaved events of several aggregates: ledger, two stores, an API key."""
    first = node.access.create_store(StoreFields(name="First"))
    node.ledger.post(f.deposit(f.account("alice"), 10))
    second = node.access.create_store(StoreFields(name="Second"))
    node.access.update_store(first.id, StoreFields(name="First, renamed"))
    node.ledger.post(f.transfer(f.account("alice"), f.account("bob"), 4))
    node.access.create_api_key("ops", ["btcpay.store.canviewinvoices"])
    node.access.archive_store(second.id)
    return [e.id for e in node.outbox.pending("probe", 1000)]


def _attempts(node: Node, sink: str) -> list[tuple[str, int, bool, str]]:
    a = tables.outbox_attempts
    with node.engine.connect() as conn:
        rows = conn.execute(
            select(a.c.event_id, a.c.attempt, a.c.ok, a.c.error)
            .where(a.c.sink == sink)
            .order_by(a.c.id)
        )
        return [(r.event_id, r.attempt, r.ok, r.error) for r in rows]


class TestOutboxRelay:
    def test_events_reach_the_sink_in_commit_order_when_aggregates_interleave(
        self, any_node: Node
    ) -> None:
        expected = _make_events(any_node)
        sink = RecordingSink()
        any_node.relay.add_sink(sink)
        assert any_node.relay.run_once() == RelayPass(delivered=len(expected), failed=0)
        assert [e.id for e in sink.received] == expected
        seqs = [e.seq for e in sink.received]
        assert seqs == sorted(seqs)
        assert len(set(expected)) == len(expected)
        by_aggregate: dict[str, list[str]] = defaultdict(list)
        for event in sink.received:
            by_aggregate[event.aggregate].append(event.type)
        assert by_aggregate["ledger"] == ["ledger.entry_posted"] * 2
        store_streams = [v for k, v in by_aggregate.items() if k.startswith("store:")]
        assert sorted(store_streams) == [
            ["store.created", "store.archived"],
            ["store.created", "store.updated"],
        ]
        assert any_node.outbox.cursor("sink") == seqs[-1]
        assert _attempts(any_node, "sink") == [(i, 1, True, "") for i in expected]
        assert any_node.relay.run_once() == RelayPass(0, 0)

    def test_cursor_moves_only_after_success_and_backoff_grows_when_sink_fails_n_times(
        self, any_node: Node, clock: FixedClock
    ) -> None:
        expected = _make_events(any_node)
        failures = 4
        sink = RecordingSink(failures=failures)
        relay = OutboxRelay(any_node.outbox, [sink], clock)
        waits: list[timedelta] = []
        for attempt in range(1, failures + 1):
            assert relay.run_once() == RelayPass(delivered=0, failed=1)
            assert any_node.outbox.cursor("sink") == 0
            delay = backoff(attempt)
            clock.advance(delay - timedelta(microseconds=1))
            assert relay.run_once() == RelayPass(0, 0), "retried before its backoff"
            clock.advance(timedelta(microseconds=1))
            waits.append(delay)
        assert waits == sorted(waits)
        assert len(set(waits)) == failures  # strictly growing
        assert relay.run_once() == RelayPass(delivered=len(expected), failed=0)
        assert [e.id for e in sink.received] == expected
        first = expected[0]
        assert _attempts(any_node, "sink")[: failures + 1] == [
            *[(first, n, False, "ConnectionError: sink down") for n in range(1, failures + 1)],
            (first, failures + 1, True, ""),
        ]

    def test_restarted_relay_resumes_without_loss_or_reordering_when_it_stopped_midway(
        self, make_node: Callable[..., Node], clock: FixedClock
    ) -> None:
        before: Node = make_node()
        expected = _make_events(before)
        stuck = expected[3]
        first_sink = RecordingSink(failures=1, fail_on=stuck)
        before.relay.add_sink(first_sink)
        assert before.relay.run_once() == RelayPass(delivered=3, failed=1)
        before.close()

        after: Node = make_node(upgrade=False)  # a new process: new relay, new sink object
        after.ledger.post(f.deposit(f.account("carol"), 7))
        expected = [e.id for e in after.outbox.pending("probe", 1000)]
        second_sink = RecordingSink()
        after.relay.add_sink(second_sink)
        # The restart does not reset the backoff: the wait is derived from the stored attempt.
        assert after.relay.run_once() == RelayPass(delivered=0, failed=0)
        clock.advance(backoff(1))
        assert after.relay.run_once() == RelayPass(delivered=len(expected) - 3, failed=0)

        delivered = [e.id for e in first_sink.received + second_sink.received]
        assert delivered == expected  # nothing lost, nothing twice, same order
        attempts = [(e, n, ok) for e, n, ok, _ in _attempts(after, "sink") if e == stuck]
        assert attempts == [(stuck, 1, False), (stuck, 2, True)]

    def test_other_sinks_keep_receiving_when_one_sink_keeps_failing(self, node: Node) -> None:
        expected = _make_events(node)
        broken = RecordingSink("broken", failures=10**6)
        healthy = RecordingSink("healthy")
        node.relay.add_sink(broken)
        node.relay.add_sink(healthy)
        assert node.relay.run_once() == RelayPass(delivered=len(expected), failed=1)
        assert [e.id for e in healthy.received] == expected
        assert node.outbox.cursor("broken") == 0

    def test_redelivery_carries_the_same_id_and_payload_when_a_sink_retries(
        self, node: Node, clock: FixedClock
    ) -> None:
        node.ledger.post(f.deposit(f.account("alice"), 10))

        class FlakyAfterAccepting(RecordingSink):
            """Accepts the event, then fails: the relay must deliver the same event again."""

            def deliver(self, event: OutboxEvent) -> None:
                self.received.append(event)
                if len(self.received) == 1:
                    raise ConnectionError("ack lost")

        sink = FlakyAfterAccepting()
        node.relay.add_sink(sink)
        node.relay.run_once()
        clock.advance(backoff(1))
        node.relay.run_once()
        assert len(sink.received) == 2
        assert sink.received[0] == sink.received[1]
