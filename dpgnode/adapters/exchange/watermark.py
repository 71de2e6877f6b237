"""The durable sequence number of a journal and everyone waiting for it to move.

One writer (the journal's flusher thread) calls :meth:`Watermark.advance` after each group
reaches the disk, or :meth:`Watermark.fail` once when the disk can no longer be trusted.
Waiters may be threads (:meth:`wait`), coroutines on any event loop (:meth:`wait_async`) or
listeners called on the flusher thread (:meth:`subscribe`). The flusher pays for a
condition variable or a loop hand-off only when someone actually waits, so a matcher whose
clients are acknowledged by a listener costs one integer store per group.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
from collections.abc import Callable

import structlog

from dpgnode.errors import UnavailableError

log = structlog.get_logger(__name__)

_AsyncWaiter = tuple[int, int, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class Watermark:
    """A monotonically rising sequence number with sync, async and callback waiters."""

    def __init__(self, value: int = 0) -> None:
        self.value = value
        """Every sequence number up to this one is durable."""
        self.failure: str | None = None
        """Why the journal failed, once it has; the value stops rising for good."""
        self._cond = threading.Condition()
        self._sync_waiters = 0
        self._lock = threading.Lock()
        self._async_waiters: list[_AsyncWaiter] = []
        self._tiebreak = itertools.count()
        self._listeners: list[Callable[[int], None]] = []

    # -- waiting --------------------------------------------------------------------------------

    def wait(self, seq: int, timeout: float | None = None) -> None:
        """Block until ``value >= seq``; raise ``UnavailableError`` on failure or timeout."""
        if self.value >= seq:
            return
        with self._cond:
            self._sync_waiters += 1
            try:
                self._cond.wait_for(lambda: self.value >= seq or self.failure is not None,
                                    timeout)
            finally:
                self._sync_waiters -= 1
        if self.value >= seq:
            return
        if self.failure is not None:
            raise self.error()
        raise UnavailableError(f"command {seq} was not durable within {timeout} s")

    async def wait_async(self, seq: int) -> None:
        """Like :meth:`wait`, on the running event loop (cancel it to stop waiting)."""
        if self.value >= seq:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            # Registering under the lock the flusher takes to wake waiters means the value
            # cannot move between this check and the registration unnoticed.
            registered = self.failure is None and self.value < seq
            if registered:
                heapq.heappush(self._async_waiters, (seq, next(self._tiebreak), loop, future))
        if not registered:
            if self.value >= seq:
                return
            raise self.error()
        await future

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(value)`` on the flusher thread after every advance."""
        self._listeners = [*self._listeners, listener]

    def error(self) -> UnavailableError:
        """The error every caller gets once the journal has failed."""
        return UnavailableError(f"exchange journal failed: {self.failure}")

    # -- the flusher's side ---------------------------------------------------------------------

    def advance(self, value: int) -> None:
        """Publish a new durable sequence number and wake whoever waits for it."""
        self.value = value
        if self._sync_waiters:
            with self._cond:
                self._cond.notify_all()
        if self._async_waiters:
            with self._lock:
                waiters = self._async_waiters
                while waiters and waiters[0][0] <= value:
                    _, _, loop, future = heapq.heappop(waiters)
                    _resolve_soon(loop, future, None)
        for listener in self._listeners:
            try:
                listener(value)
            except Exception:
                log.exception("exchange.journal_listener_failed")
                self._listeners = [x for x in self._listeners if x is not listener]

    def fail(self, reason: str) -> None:
        """Stop for good: every present and future waiter gets ``UnavailableError``."""
        self.failure = reason
        with self._cond:
            self._cond.notify_all()
        with self._lock:
            waiters, self._async_waiters = self._async_waiters, []
        for _, _, loop, future in waiters:
            _resolve_soon(loop, future, self.error())


def _resolve_soon(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], error: Exception | None
) -> None:
    def resolve() -> None:
        if future.done():  # the waiter was cancelled
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    with contextlib.suppress(RuntimeError):  # the waiter's loop is closed: nobody to tell
        loop.call_soon_threadsafe(resolve)
