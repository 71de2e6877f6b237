"""Group commit: one writer thread turns many concurrent commands into few durable commits.

Callers hand a command to :meth:`SqlWriter.run` and block (or ``await run_async``) until
the transaction holding their command has committed: an acknowledged write is on disk.
The writer closes a batch at ``max_batch`` commands, when the queue is empty, or
``max_wait`` seconds after its first command, whichever comes first. It never waits idle
for company: while one batch commits, the next one queues up by itself (natural batching),
and measurements showed idle lingering only added latency and cost throughput at every
load (bench/ledger.py, 16-256 commands in flight). One fsync covers the whole batch.

A command that raises is rolled back alone (see ``SqlTx``); a failure of the commit itself
fails every command of the batch with ``UnavailableError`` and nothing of it is kept.

On SQLite the writer keeps the committed account rows between batches, so a batch reads
only the accounts it has not seen before. The cache is used only while ``PRAGMA
data_version`` (read after ``BEGIN IMMEDIATE`` holds the write lock) shows that no other
connection has committed since, and it is dropped whenever a batch fails.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import structlog
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.domain.ledger import Account, AccountRef
from dpgnode.errors import ConflictError, DpgError, IntegrityError, UnavailableError
from dpgnode.ports.clock import Clock
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.uow import Hints, Tx

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Job:
    command: Callable[[Tx], Any]
    hints: Hints | None
    future: Future[Any]


_STOP = object()
_MAX_CACHED_ACCOUNTS = 100_000


class SqlWriter:
    """The ``Writer`` port over SQL, with group commit on a dedicated thread."""

    def __init__(
        self,
        engine: Engine,
        ids: IdGenerator,
        clock: Clock,
        *,
        max_batch: int = 100,
        max_wait: float = 0.005,
    ) -> None:
        self._engine = engine
        self._ids = ids
        self._clock = clock
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._accounts: dict[AccountRef, Account] | None = None
        self._accounts_seen: tuple[object, int] | None = None
        self.batches = 0
        self.commands = 0

    # -- Writer port --------------------------------------------------------------------

    def run(self, command: Callable[[Tx], T], hints: Hints | None = None) -> T:
        if threading.current_thread() is self._thread:
            raise IntegrityError("a command may not submit another command to its own writer")
        return cast(T, self.submit(command, hints).result())

    def run_sql(self, command: Callable[[SqlTx], T]) -> T:
        """``run`` for storage adapters whose commands need the SQL transaction itself."""
        return self.run(cast(Callable[[Tx], T], command))

    async def run_async(self, command: Callable[[Tx], T], hints: Hints | None = None) -> T:
        return cast(T, await asyncio.wrap_future(self.submit(command, hints)))

    async def run_sql_async(self, command: Callable[[SqlTx], T]) -> T:
        """``run_sql`` for event-loop callers."""
        return await self.run_async(cast(Callable[[Tx], T], command))

    def submit(self, command: Callable[[Tx], Any], hints: Hints | None = None) -> Future[Any]:
        """Queue ``command``; the future resolves after its batch commits."""
        self._ensure_started()
        future: Future[Any] = Future()
        self._queue.put(_Job(command, hints, future))
        return future

    def close(self) -> None:
        """Finish queued commands, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    # -- the writer thread ----------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="dpg-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        # The account cache lives as long as this checkout of the connection: once the
        # connection is back in the pool, someone else may write through it unseen.
        self._accounts = None
        with self._engine.connect() as conn:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [cast(_Job, first)]
                stop = self._collect(batch)
                self._execute(conn, batch)
                if stop:
                    return

    def _collect(self, batch: list[_Job]) -> bool:
        """Add queued jobs to ``batch``; True when the stop marker was seen."""
        deadline = time.monotonic() + self._max_wait
        while len(batch) < self._max_batch and time.monotonic() < deadline:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return True
            batch.append(cast(_Job, item))
        return False

    def _execute(self, conn: Any, batch: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with conn.begin():
                tx = SqlTx(conn, self._ids, self._clock, accounts=self._account_cache(conn))
                tx.prefetch(job.hints for job in batch if job.hints is not None)
                for job in batch:
                    outcomes.append(self._run_one(tx, job))
                tx.flush()
        except IntegrityError as exc:
            self._accounts = None
            log.critical("ledger invariant failed, batch rolled back", error=str(exc))
            self._fail_all(batch, exc)
            return
        except Exception as exc:  # any failure to commit: nothing of the batch was kept
            self._accounts = None
            log.error("write batch failed", error=type(exc).__name__)
            self._fail_all(batch, translate(exc))
            return
        self.batches += 1
        self.commands += len(batch)
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _account_cache(self, conn: Any) -> dict[AccountRef, Account] | None:
        """The committed accounts, if nothing but this connection wrote since they were read.

        Called inside the batch's transaction, after ``BEGIN IMMEDIATE`` took the write
        lock, so no other writer can commit between this check and our commit; our own
        commits leave ``data_version`` unchanged. PostgreSQL has no such cheap signal:
        there every batch reads its accounts afresh.
        """
        if conn.dialect.name != "sqlite":
            return None
        seen = (conn.connection.driver_connection,
                conn.exec_driver_sql("PRAGMA data_version").scalar_one())
        cache = self._accounts
        if (
            cache is None
            or self._accounts_seen is None
            or self._accounts_seen[0] is not seen[0]
            or self._accounts_seen[1] != seen[1]
            or len(cache) > _MAX_CACHED_ACCOUNTS
        ):
            cache = self._accounts = {}
        self._accounts_seen = seen
        return cache

    @staticmethod
    def _run_one(tx: SqlTx, job: _Job) -> tuple[bool, Any]:
        tx.begin_command()
        try:
            result = job.command(tx)
        except IntegrityError:
            raise
        except Exception as exc:
            tx.rollback_command()
            return False, translate(exc)
        tx.end_command()
        return True, result

    @staticmethod
    def _fail_all(batch: list[_Job], exc: BaseException) -> None:
        for job in batch:
            if not job.future.done():
                job.future.set_exception(exc)


def translate(exc: BaseException) -> BaseException:
    """Map driver exceptions to the node's error tree (the one place that knows them)."""
    if isinstance(exc, DpgError):
        return exc
    if isinstance(exc, sa_exc.IntegrityError):
        return ConflictError("the change conflicts with existing data")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return UnavailableError("the database is unavailable, retry shortly", retry_after=1)
    return exc
