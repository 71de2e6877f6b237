"""A background thread that runs one job periodically until stopped.

Used for the outbox relay inside the node process. A failing pass is logged and retried at
the next tick: the job itself keeps its durable state (the relay's cursors and attempts).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class PeriodicWorker:
    def __init__(self, name: str, job: Callable[[], object], interval: float) -> None:
        self._name = name
        self._job = job
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._job()
            except Exception as exc:  # keep the worker alive; the job's state is durable
                log.error("background job failed", worker=self._name, error=type(exc).__name__)
            self._wake.wait(self._interval)
            self._wake.clear()
