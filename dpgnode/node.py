"""Composition root: the one place that builds adapters from settings and wires services.

``build_node(settings, clock=..., ids=...)`` returns a :class:`Node`; tests pass a
``FixedClock`` (and anything else a port allows) through the same function production uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from dpgnode.adapters.assets import load_registry
from dpgnode.adapters.events.inprocess import InProcessSink, Subscriber
from dpgnode.adapters.storage import migrate
from dpgnode.adapters.storage.engine import make_engine
from dpgnode.adapters.storage.idempotency import SqlIdempotencyStore
from dpgnode.adapters.storage.outbox import SqlOutboxStore
from dpgnode.adapters.storage.queries import SqlQueries
from dpgnode.adapters.storage.writer import SqlWriter
from dpgnode.adapters.system import SystemClock, Uuid7Ids
from dpgnode.adapters.worker import PeriodicWorker
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import ConfigError
from dpgnode.ports.clock import Clock
from dpgnode.ports.ids import IdGenerator
from dpgnode.services.access import AccessService
from dpgnode.services.idempotency import IdempotencyService
from dpgnode.services.ledger import LedgerService
from dpgnode.services.outbox import OutboxRelay
from dpgnode.services.verification import VerifyReport, verify_ledger
from dpgnode.settings import Settings


@dataclass
class Node:
    """A wired node: services over real adapters. Close it to flush and stop the writer."""

    settings: Settings
    clock: Clock
    ids: IdGenerator
    assets: AssetRegistry
    engine: Engine
    writer_engine: Engine
    writer: SqlWriter
    queries: SqlQueries
    ledger: LedgerService
    access: AccessService
    outbox: SqlOutboxStore
    relay: OutboxRelay
    idempotency: IdempotencyService
    _closed: bool = field(default=False, repr=False)
    _relay_worker: PeriodicWorker | None = field(default=None, repr=False)

    def verify_ledger(self) -> VerifyReport:
        # One snapshot: on a live node, entries and balances read a commit apart disagree.
        with self.queries.snapshot() as snapshot:
            return verify_ledger(snapshot)

    def subscribe(
        self, name: str, subscriber: Subscriber, *, types: tuple[str, ...] = ()
    ) -> None:
        """Deliver outbox events to ``subscriber``: in commit order, at least once.

        Only events whose type starts with one of ``types`` (all when empty). Delivery
        resumes from the sink's stored cursor, so ``name`` must stay stable across restarts.
        """
        self.relay.add_sink(InProcessSink(name, subscriber, types=types))

    def start_workers(self, relay_interval: float = 0.25) -> None:
        """Start the background outbox relay (the API process and ``dpg node start`` do)."""
        if self._relay_worker is None:
            self._relay_worker = PeriodicWorker("dpg-relay", self.relay.run_once, relay_interval)
        self._relay_worker.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._relay_worker is not None:
            self._relay_worker.stop()
        self.writer.close()
        self.engine.dispose()
        self.writer_engine.dispose()


def build_node(
    settings: Settings,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    upgrade: bool = False,
) -> Node:
    """Wire a node; ``upgrade=True`` migrates the database first, else it must be current."""
    clock = clock or SystemClock()
    ids = ids or Uuid7Ids()
    url = settings.database_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    writer_engine = make_engine(url, writer=True)
    engine = make_engine(url)
    if upgrade:
        migrate.upgrade(writer_engine)
    elif migrate.current_revision(engine) != migrate.head_revision(engine):
        writer_engine.dispose()
        engine.dispose()
        raise ConfigError("the database schema is not current: run `dpg db upgrade`")
    assets = load_registry(settings.assets)
    writer = SqlWriter(
        writer_engine, ids, clock,
        max_batch=settings.ledger.group_commit_max_batch,
        max_wait=settings.ledger.group_commit_max_wait_ms / 1000,
    )
    queries = SqlQueries(engine)
    outbox = SqlOutboxStore(engine, writer, clock)
    return Node(
        settings=settings,
        clock=clock,
        ids=ids,
        assets=assets,
        engine=engine,
        writer_engine=writer_engine,
        writer=writer,
        queries=queries,
        ledger=LedgerService(writer, ids),
        access=AccessService(
            writer, queries, ids, clock, assets,
            request_key_retention=timedelta(hours=settings.api.idempotency_retention_hours),
        ),
        outbox=outbox,
        relay=OutboxRelay(outbox, [], clock),
        idempotency=IdempotencyService(
            SqlIdempotencyStore(writer), clock,
            retention=timedelta(hours=settings.api.idempotency_retention_hours),
        ),
    )


# -- database administration (``dpg init``, ``dpg db``, ``dpg node start``) --------------------


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """The database's migration revision against the newest one this code ships."""

    current: str | None
    head: str | None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_status(settings: Settings) -> SchemaStatus:
    engine = make_engine(settings.database_url())
    try:
        return SchemaStatus(migrate.current_revision(engine), migrate.head_revision(engine))
    finally:
        engine.dispose()


def upgrade_schema(settings: Settings) -> tuple[SchemaStatus, SchemaStatus]:
    """Migrate the database to the newest revision; the status before and after."""
    if settings.database_url().startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    before = schema_status(settings)
    engine = make_engine(settings.database_url(), writer=True)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return before, schema_status(settings)


def check_database(settings: Settings) -> migrate.DbCheck:
    """Integrity, pending migrations and schema drift of the configured database."""
    engine = make_engine(settings.database_url())
    try:
        return migrate.check(engine)
    finally:
        engine.dispose()
