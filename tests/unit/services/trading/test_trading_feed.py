"""The live feed's routing: channels, the user filter, cut-off of slow subscribers, tailing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from dpgnode.domain.events import OutboxEvent
from dpgnode.services.trading.feed import (
    FeedMessage,
    FeedOverflowError,
    TradingFeed,
    message_of,
)

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(number: int, type_: str, **payload: object) -> OutboxEvent:
    return OutboxEvent(
        number, f"evt_{number}", type_, "trading:BTC-USD", payload, T0  # type: ignore[arg-type]
    )


class _Events:
    """The ``events_after`` and ``last_event_seq`` part of the trading store, in memory."""

    def __init__(self, events: Sequence[OutboxEvent], start: int = 0) -> None:
        self.events = list(events)
        self.start = start

    def last_event_seq(self) -> int:
        return self.start

    def events_after(self, seq: int, prefix: str, limit: int) -> list[OutboxEvent]:
        return [e for e in self.events if e.seq > seq and e.type.startswith(prefix)][:limit]


def test_events_become_channel_messages_and_orders_keep_their_user() -> None:
    delta = message_of(_event(1, "trading.book", pair="BTC-USD", seq=7))
    order = message_of(_event(2, "trading.order", userId="alice", type="limit"))

    assert delta == FeedMessage("book:BTC-USD", "delta", {"pair": "BTC-USD", "seq": 7})
    assert order is not None
    assert (order.channel, order.kind, order.user_id) == ("orders", "order", "alice")
    assert message_of(_event(3, "trading.pair", pair="BTC-USD")) is None


async def test_subscribers_get_only_their_channels_and_their_own_orders() -> None:
    feed = TradingFeed(_Events([]))  # type: ignore[arg-type]
    alice, bob = feed.subscribe("alice"), feed.subscribe("bob")
    alice.channels.update({"orders", "trades:BTC-USD"})
    bob.channels.update({"orders"})

    feed.publish([
        FeedMessage("orders", "order", {"id": "o1"}, "alice"),
        FeedMessage("trades:ETH-USD", "trade", {"id": "t0"}),
        FeedMessage("trades:BTC-USD", "trade", {"id": "t1"}),
    ])

    assert [(await alice.get()).data["id"] for _ in range(2)] == ["o1", "t1"]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(bob.get(), 0.01)


async def test_slow_subscriber_is_cut_off_when_its_queue_overflows() -> None:
    feed = TradingFeed(_Events([]), max_queue=2)  # type: ignore[arg-type]
    slow = feed.subscribe(None)
    slow.channels.add("trades:BTC-USD")

    feed.publish([FeedMessage("trades:BTC-USD", "trade", {"id": str(n)}) for n in range(3)])

    assert [(await slow.get()).data["id"] for _ in range(2)] == ["0", "1"]
    with pytest.raises(FeedOverflowError):
        await slow.get()


async def test_feed_tails_events_after_the_newest_one_at_start() -> None:
    store = _Events([_event(1, "trading.trade", pair="BTC-USD", id="old")], start=1)
    feed = TradingFeed(store, poll_interval=0.01)  # type: ignore[arg-type]
    watcher = feed.subscribe(None)
    watcher.channels.add("trades:BTC-USD")
    task = asyncio.create_task(feed.run())
    try:
        store.events.append(_event(2, "trading.trade", pair="BTC-USD", id="new"))
        feed.wake()
        message = await asyncio.wait_for(watcher.get(), 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert message.data["id"] == "new"
