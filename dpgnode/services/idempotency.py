"""``Idempotency-Key`` with Stripe's semantics, for every mutating API request.

Invariants this module keeps:
- within one scope (an API key, or a client address for anonymous routes) a key runs its
  request at most once while its record lives: later requests with the same key and the
  same request get the first response replayed byte for byte; with another request they
  get ``IdempotencyKeyReusedError`` and change nothing;
- a duplicate that arrives while the first is still running waits for it, then replays;
- only responses that say the request ran are kept (:func:`is_replayable`): a request
  refused before it ran (malformed, unauthenticated, forbidden, rate limited, too large,
  failing validation) or failing on the server leaves the key free for a retry;
- a record is honoured for the whole retention window and treated as absent after it,
  measured with the node's ``Clock``; :meth:`IdempotencyService.purge` deletes old ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dpgnode.errors import ConflictError, IdempotencyKeyReusedError
from dpgnode.ports.clock import Clock
from dpgnode.ports.idempotency import (
    ClaimRequest,
    ClaimStatus,
    IdempotencyStore,
    StoredResponse,
)

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Statuses that mean "the request was not carried out": the key stays free for a retry.
_NOT_RUN = frozenset({400, 401, 403, 408, 413, 415, 422, 425, 429})


class IdempotencyInProgressError(ConflictError):
    """The first request with this key is still running after the wait; retry later."""

    code = "idempotency_request_in_progress"


def is_valid_key(key: str) -> bool:
    """Whether ``key`` is 1-255 printable ASCII characters (no spaces)."""
    return bool(_KEY.match(key))


def is_replayable(status_code: int) -> bool:
    """Whether a response with this status is kept and replayed for the key."""
    return status_code < 500 and status_code not in _NOT_RUN


def request_hash(method: str, target: str, body: bytes) -> str:
    """Digest of what a retry must repeat to count as the same request."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), target.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyService:
    """Claims keys, waits out duplicates in flight, stores and replays first responses."""

    def __init__(
        self,
        store: IdempotencyStore,
        clock: Clock,
        *,
        retention: timedelta,
        lock_ttl: timedelta = timedelta(minutes=5),
        purge_every: timedelta = timedelta(hours=1),
        max_polls: int = 120,
    ) -> None:
        """Wire the service.

        Args:
            store: where records live.
            clock: the node's clock; every retention and lock decision reads it.
            retention: how long a record is honoured (at least 24 hours in production).
            lock_ttl: how long a claim stands if its holder dies without finishing.
            purge_every: least time between two purges of expired records.
            max_polls: how often a duplicate re-checks a running first request (about
                0.5 s apart at most) before giving up with ``IdempotencyInProgressError``.
        """
        self._store = store
        self._clock = clock
        self._retention = retention
        self._lock_ttl = lock_ttl
        self._purge_every = purge_every
        self._max_polls = max_polls
        self._last_purge: datetime | None = None
        # Wake-ups for duplicates waiting in this process, per event loop (an asyncio.Event
        # belongs to one loop); duplicates in other processes notice by polling.
        self._waiters: dict[tuple[int, str, str], _Waiters] = {}

    async def begin(self, scope: str, key: str, digest: str) -> StoredResponse | None:
        """Take ``key`` for a request, or get the response to replay.

        Returns:
            ``None`` when the caller now owns the key and must call :meth:`finish` (or
            :meth:`abandon`); otherwise the stored first response.

        Raises:
            IdempotencyKeyReusedError: the key was first used with a different request.
            IdempotencyInProgressError: the first request is still running after waiting.
        """
        await self._maybe_purge()
        delay = 0.005
        for _ in range(self._max_polls):
            now = self._clock.now()
            try:
                result = await self._store.claim(
                    ClaimRequest(
                        scope=scope, key=key, request_hash=digest, now=now,
                        locked_until=now + self._lock_ttl,
                        expired_before=now - self._retention,
                    )
                )
            except ConflictError:  # a concurrent writer inserted the record first
                result = None
            if result is not None:
                if result.status is ClaimStatus.CLAIMED:
                    return None
                if result.status is ClaimStatus.REPLAY and result.response is not None:
                    return result.response
                if result.status is ClaimStatus.MISMATCH:
                    raise IdempotencyKeyReusedError(
                        "this Idempotency-Key was already used for a different request",
                        details={"header": "Idempotency-Key"},
                    )
            await self._wait(scope, key, delay)
            delay = min(delay * 2, 0.5)
        raise IdempotencyInProgressError(
            "a request with this Idempotency-Key is still in progress; retry later",
            details={"header": "Idempotency-Key"},
        )

    async def finish(self, scope: str, key: str, digest: str, response: StoredResponse) -> bool:
        """Keep ``response`` for replay if :func:`is_replayable`, else free the key.

        Returns:
            Whether the response was stored.
        """
        stored = is_replayable(response.status_code)
        try:
            if stored:
                await self._store.complete(scope, key, digest, response)
            else:
                await self._store.release(scope, key, digest)
        finally:
            self._wake(scope, key)
        return stored

    async def abandon(self, scope: str, key: str, digest: str) -> None:
        """Free a claimed key whose request produced no response (it may be retried)."""
        try:
            await self._store.release(scope, key, digest)
        finally:
            self._wake(scope, key)

    async def purge(self) -> int:
        """Delete records past the retention window; returns how many."""
        now = self._clock.now()
        self._last_purge = now
        return await self._store.purge(now - self._retention)

    async def _maybe_purge(self) -> None:
        now = self._clock.now()
        if self._last_purge is None or now - self._last_purge >= self._purge_every:
            await self.purge()

    async def _wait(self, scope: str, key: str, timeout: float) -> None:
        slot = (id(asyncio.get_running_loop()), scope, key)
        waiters = self._waiters.get(slot)
        if waiters is None:
            waiters = self._waiters[slot] = _Waiters()
        waiters.count += 1
        try:
            await asyncio.wait_for(waiters.event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiters.count -= 1
            if waiters.count == 0 and self._waiters.get(slot) is waiters:
                del self._waiters[slot]

    def _wake(self, scope: str, key: str) -> None:
        try:
            loop_id = id(asyncio.get_running_loop())
        except RuntimeError:
            return
        waiters = self._waiters.pop((loop_id, scope, key), None)
        if waiters is not None:
            waiters.event.set()


@dataclass(slots=True)
class _Waiters:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    count: int = 0
