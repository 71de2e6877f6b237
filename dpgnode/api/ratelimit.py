"""Rate limits per API key and per client address, in memory, on the node's clock.

A request with a valid key counts against that key (``api.rate_limit_per_key`` per
minute); any other request counts against its client address (``api.rate_limit_per_ip``).
The limiter is GCRA, the token bucket written as one timestamp per caller: a caller may
burst up to its whole per-minute allowance, then gets one request every ``60 s / limit``.
A refused request gets 429 with ``Retry-After`` (whole seconds until one more is allowed).
Limits are per process: with several API workers each enforces its own share.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from dpgnode.api.auth import client_ip, identity_of
from dpgnode.errors import RateLimitedError
from dpgnode.ports.clock import Clock

_WINDOW = timedelta(minutes=1)
_SWEEP_AT = 50_000


class RateLimiter:
    """GCRA over ``limit`` requests per minute per caller name."""

    def __init__(self, clock: Clock, limit: int) -> None:
        self._clock = clock
        self._interval = _WINDOW / limit
        self._tolerance = _WINDOW - self._interval
        self._tat: dict[str, datetime] = {}

    def hit(self, caller: str) -> float | None:
        """Count one request; ``None`` if allowed, else seconds until the next is."""
        now = self._clock.now()
        tat = max(self._tat.get(caller, now), now)
        wait = tat - now - self._tolerance
        if wait > timedelta(0):
            return wait.total_seconds()
        self._tat[caller] = tat + self._interval
        if len(self._tat) > _SWEEP_AT:
            self._sweep(now)
        return None

    def _sweep(self, now: datetime) -> None:
        # A caller whose theoretical arrival time has passed is indistinguishable from new.
        for caller in [c for c, tat in self._tat.items() if tat <= now]:
            del self._tat[caller]


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, clock: Clock, per_key: int, per_ip: int) -> None:
        self.app = app
        self._by_key = RateLimiter(clock, per_key)
        self._by_ip = RateLimiter(clock, per_ip)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            key_scope = identity_of(scope).scope_id
            if key_scope is not None:
                wait = self._by_key.hit(key_scope)
            else:
                wait = self._by_ip.hit(client_ip(scope))
            if wait is not None:
                raise RateLimitedError(
                    "too many requests: slow down and retry after the given delay",
                    retry_after=max(1, math.ceil(wait)),
                )
        await self.app(scope, receive, send)
