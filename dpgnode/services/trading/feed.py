"""The live trading feed: trading events read back from the outbox, fanned out to subscribers.

The service writes every book change, trade, ticker change and order update as an outbox
event in the transaction that makes it (``trading.book``, ``trading.trade``,
``trading.ticker``, ``trading.order``). The feed tails the outbox rather than listening to
the matcher in memory, so a WebSocket client connected to one API process sees what any
process on the same database did, and it never sees a change that did not commit. The
service wakes the feed after each of its commands; a short poll covers other processes.

Delivery to a subscriber is best effort and in commit order. A subscriber that falls more
than ``max_queue`` messages behind is cut off (:class:`FeedOverflowError`): it must
subscribe again and take fresh snapshots. Book deltas carry the pair's book sequence number,
consecutive per pair, so a client also notices any gap and resyncs from a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from dpgnode.domain.events import JsonValue, OutboxEvent
from dpgnode.errors import UnavailableError
from dpgnode.ports.trading import TradingStore

log = structlog.get_logger(__name__)

EVENT_PREFIX = "trading."
_CHANNEL_OF_TYPE = {
    "trading.book": "book",
    "trading.trade": "trades",
    "trading.ticker": "ticker",
}
ORDERS_CHANNEL = "orders"


class FeedOverflowError(UnavailableError):
    """The subscriber fell too far behind and was cut off: subscribe again and resync."""

    code = "feed_overflow"


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One event for subscribers, on one channel.

    ``channel`` is ``book:PAIR``, ``trades:PAIR``, ``ticker:PAIR`` or ``orders`` (then only
    subscribers of ``user_id`` receive it).
    """

    channel: str
    kind: str
    data: Mapping[str, JsonValue]
    user_id: str | None = None


def message_of(event: OutboxEvent) -> FeedMessage | None:
    """The feed message an outbox event becomes, or ``None`` for other events."""
    payload = event.payload
    if event.type == "trading.order":
        user = payload.get("userId")
        return FeedMessage(ORDERS_CHANNEL, "order", payload, str(user) if user else None)
    prefix = _CHANNEL_OF_TYPE.get(event.type)
    if prefix is None:
        return None
    kind = {"book": "delta", "trades": "trade", "ticker": "ticker"}[prefix]
    return FeedMessage(f"{prefix}:{payload.get('pair')}", kind, payload)


class Subscription:
    """One subscriber's channels and queue; read it with :meth:`get`."""

    def __init__(self, feed: TradingFeed, user_id: str | None, max_queue: int) -> None:
        self._feed = feed
        self.user_id = user_id
        self.channels: set[str] = set()
        self._queue: asyncio.Queue[FeedMessage] = asyncio.Queue(max_queue)
        self._overflowed = False

    def wants(self, message: FeedMessage) -> bool:
        """Whether ``message`` is for this subscriber."""
        if message.channel not in self.channels:
            return False
        return message.channel != ORDERS_CHANNEL or message.user_id == self.user_id

    def offer(self, message: FeedMessage) -> None:
        """Queue ``message``, or cut the subscriber off when its queue is full."""
        if self._overflowed:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._overflowed = True
            self._feed.unsubscribe(self)

    async def get(self) -> FeedMessage:
        """The next message for this subscriber.

        Raises:
            FeedOverflowError: the subscriber fell too far behind and was cut off.
        """
        if self._overflowed and self._queue.empty():
            raise FeedOverflowError("the subscriber fell behind the feed: resubscribe")
        return await self._queue.get()

    def close(self) -> None:
        """Stop receiving messages."""
        self._feed.unsubscribe(self)


class TradingFeed:
    """Tails trading events and hands them to subscribers; one per API process.

    Args:
        store: where the events are read.
        poll_interval: seconds between reads when nothing woke the feed (other processes'
            events arrive within this delay); without subscribers the feed reads once a
            second, only to keep its place.
        batch: most events read at once.
        max_queue: most messages a subscriber may have waiting before it is cut off.
    """

    def __init__(
        self,
        store: TradingStore,
        *,
        poll_interval: float = 0.05,
        batch: int = 500,
        max_queue: int = 10_000,
    ) -> None:
        self._store = store
        self._poll_interval = poll_interval
        self._batch = batch
        self._max_queue = max_queue
        self._subscribers: set[Subscription] = set()
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cursor: int | None = None

    def subscribe(self, user_id: str | None) -> Subscription:
        """A new subscriber (``user_id``: whose order updates it may receive)."""
        subscription = Subscription(self, user_id, self._max_queue)
        self._subscribers.add(subscription)
        if self._wakeup is not None:
            self._wakeup.set()  # leave the idle pace at once
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscriber (idempotent)."""
        self._subscribers.discard(subscription)

    def wake(self) -> None:
        """Read new events now rather than at the next poll; callable from any thread."""
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wakeup.set)

    def publish(self, messages: Iterable[FeedMessage]) -> None:
        """Hand messages to every subscriber that wants them (on the feed's event loop)."""
        for message in messages:
            for subscription in list(self._subscribers):
                if subscription.wants(message):
                    subscription.offer(message)

    async def run(self) -> None:
        """Tail the outbox until cancelled, starting after the newest event at start."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        if self._cursor is None:
            self._cursor = await asyncio.to_thread(self._store.last_event_seq)
        while True:
            self._wakeup.clear()
            try:
                events = await asyncio.to_thread(
                    self._store.events_after, self._cursor, EVENT_PREFIX, self._batch
                )
            except Exception as exc:  # the database is away: keep the feed alive, retry
                log.warning("trading feed read failed", error=type(exc).__name__)
                events = []
            if events:
                self._cursor = events[-1].seq
                self.publish(m for m in map(message_of, events) if m is not None)
                if len(events) == self._batch:
                    continue
            pace = self._poll_interval if self._subscribers else max(self._poll_interval, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), pace)
