"""Running the watchers: one poll per chain at a time, backoff when a node fails, status.

An unreachable or misbehaving node never stops the others or the API: its watcher's poll
fails, the failure is recorded (``dpg chain status``, ``server/info``), and the chain is
polled again after a growing delay; the watcher resumes from its durable cursor, so nothing
is lost or applied twice. A paused chain (an incident) is reported until an operator resumes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dpgnode.errors import DpgError, IntegrityError, UnavailableError
from dpgnode.ports.clock import Clock
from dpgnode.ports.metrics import Metrics, NullMetrics
from dpgnode.services.chains.watcher import ChainWatcher, PollReport

_MAX_BACKOFF = timedelta(seconds=60)
_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class ChainHealth:
    """A chain as the node last saw it."""

    chain: str
    node_height: int | None = None
    our_height: int | None = None
    mempool_size: int | None = None
    paused: str = ""
    error: str = ""
    """Why the last poll failed (empty when it succeeded)."""
    failures: int = 0
    """Polls failed in a row."""
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    next_poll_at: datetime | None = None

    @property
    def lag(self) -> int | None:
        """Blocks the watcher is behind the node, when both heights are known."""
        if self.node_height is None or self.our_height is None:
            return None
        return max(0, self.node_height - self.our_height)

    @property
    def state(self) -> str:
        """``synced``, ``syncing``, ``paused``, ``failing`` or ``starting``."""
        if self.paused:
            return "paused"
        if self.error:
            return "failing"
        if self.lag is None:
            return "starting"
        return "synced" if self.lag <= 1 else "syncing"


class ChainMonitor:
    """Polls each chain's watcher, with backoff, and keeps their health."""

    def __init__(self, watchers: Mapping[str, ChainWatcher], clock: Clock,
                 *, base_interval: Mapping[str, float] | None = None,
                 metrics: Metrics | None = None) -> None:
        self._watchers = dict(watchers)
        self._clock = clock
        self._metrics = metrics or NullMetrics()
        self._intervals = dict(base_interval or {})
        self._health = {name: ChainHealth(name) for name in self._watchers}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[PollReport], None]] = []

    def add_listener(self, listener: Callable[[PollReport], None]) -> None:
        """Call ``listener`` with the report of every successful poll (e.g. reconciliation).

        It runs on the polling thread: it must be quick and must not raise.
        """
        self._listeners.append(listener)

    @property
    def chains(self) -> list[str]:
        """Names of the watched chains."""
        return sorted(self._watchers)

    def watcher(self, chain: str) -> ChainWatcher:
        """The watcher of ``chain`` (``KeyError`` for an unknown one)."""
        return self._watchers[chain]

    def health(self) -> list[ChainHealth]:
        """Every chain's health, by name."""
        with self._lock:
            return [self._health[name] for name in sorted(self._health)]

    def poll(self, chain: str, *, force: bool = False) -> ChainHealth:
        """Poll ``chain`` unless it is backing off (``force`` ignores the backoff)."""
        now = self._clock.now()
        with self._lock:
            health = self._health[chain]
        if not force and health.next_poll_at is not None and now < health.next_poll_at:
            return health
        try:
            report = self._watchers[chain].poll()
        except (UnavailableError, IntegrityError) as exc:
            return self._failed(chain, now, exc)
        except DpgError as exc:  # a conflict with another watcher: try again next tick
            return self._failed(chain, now, exc, backoff=False)
        health = self._succeeded(chain, now, report)
        for listener in self._listeners:
            listener(report)
        return health

    def poll_all(self) -> list[ChainHealth]:
        """One pass over every chain (tests and ``dpg chain sync`` drive it)."""
        return [self.poll(chain) for chain in self.chains]

    def _succeeded(self, chain: str, now: datetime, report: PollReport) -> ChainHealth:
        self._metrics.record_chain_height(chain, report.node_height, report.our_height)
        with self._lock:
            health = replace(
                self._health[chain], node_height=report.node_height,
                our_height=report.our_height, mempool_size=report.mempool_size,
                paused=report.paused, error="", failures=0, last_poll_at=now,
                last_success_at=now, next_poll_at=None,
            )
            self._health[chain] = health
        return health

    def _failed(self, chain: str, now: datetime, exc: DpgError, *,
                backoff: bool = True) -> ChainHealth:
        with self._lock:
            health = self._health[chain]
            failures = health.failures + 1 if backoff else health.failures
            delay = self._backoff(chain, failures) if backoff else timedelta(0)
            health = replace(
                health, error=f"{exc.code}: {exc.message}"[:_ERROR_CHARS], failures=failures,
                last_poll_at=now, next_poll_at=now + delay,
            )
            self._health[chain] = health
        return health

    def _backoff(self, chain: str, failures: int) -> timedelta:
        base = self._intervals.get(chain, 2.0)
        return min(timedelta(seconds=base * 2 ** min(failures, 16)), _MAX_BACKOFF)
