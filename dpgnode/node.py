"""Composition root: the one place that builds adapters from settings and wires services.

``build_node(settings, clock=..., ids=...)`` returns a :class:`Node`; tests pass a
``FixedClock`` (and anything else a port allows) through the same function production uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from dpgnode.adapters.assets import load_registry
from dpgnode.adapters.chains import (
    ChainBroadcaster,
    ChainConnections,
    ChainPayoutFunding,
    PublicKeys,
)
from dpgnode.adapters.chains import (
    PayoutChains as PayoutChains,  # re-exported: entry points may not import adapters
)
from dpgnode.adapters.events.inprocess import InProcessSink, Subscriber
from dpgnode.adapters.exchange_pairs import load_pairs
from dpgnode.adapters.rates.fixed import FixedRateSource
from dpgnode.adapters.storage import migrate
from dpgnode.adapters.storage.conversion import SqlConversionStore
from dpgnode.adapters.storage.custody import SqlCustodyStore
from dpgnode.adapters.storage.engine import make_engine
from dpgnode.adapters.storage.idempotency import SqlIdempotencyStore
from dpgnode.adapters.storage.outbox import SqlOutboxStore
from dpgnode.adapters.storage.queries import SqlQueries
from dpgnode.adapters.storage.trading import SqlTradingStore
from dpgnode.adapters.storage.wallets import SqlWalletStore
from dpgnode.adapters.storage.writer import SqlWriter
from dpgnode.adapters.system import SystemClock, Uuid7Ids
from dpgnode.adapters.worker import PeriodicWorker
from dpgnode.domain.conversion.pricing import Terms
from dpgnode.domain.conversion.rates import RateRules
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import ConfigError, DpgError
from dpgnode.ports.clock import Clock
from dpgnode.ports.conversion import BookExecutor
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.rates import MidPriceSource, RateSource
from dpgnode.services.access import AccessService
from dpgnode.services.conversion import (
    BookMidRateSource,
    ConversionPolicy,
    ConversionService,
    MedianRates,
)
from dpgnode.services.conversion.book import TradingBookExecutor
from dpgnode.services.custody import CustodyServices
from dpgnode.services.custody.addresses import AddressService
from dpgnode.services.custody.audit import AuditService
from dpgnode.services.custody.payout_tx import PayoutTransactions
from dpgnode.services.custody.payouts import PayoutService
from dpgnode.services.custody.policy import (
    AssetPolicyInput,
    OperatorService,
    build_spend_policy,
)
from dpgnode.services.custody.wallets import KeychainService
from dpgnode.services.idempotency import IdempotencyService
from dpgnode.services.ledger import LedgerService
from dpgnode.services.outbox import OutboxRelay
from dpgnode.services.trading import TradingFeed, TradingService
from dpgnode.services.verification import VerifyReport, verify_ledger
from dpgnode.services.wallets import WalletService
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
    conversion: ConversionService
    custody: CustodyServices
    wallets: WalletService
    trading: TradingService
    trading_feed: TradingFeed
    _closed: bool = field(default=False, repr=False)
    _relay_worker: PeriodicWorker | None = field(default=None, repr=False)
    _expiry_worker: PeriodicWorker | None = field(default=None, repr=False)

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
        if self._expiry_worker is None:
            self._expiry_worker = PeriodicWorker(
                "dpg-trading-expiry", self.trading.expire_due,
                self.settings.trading.expiry_interval_seconds,
            )
        self._expiry_worker.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._relay_worker is not None:
            self._relay_worker.stop()
        if self._expiry_worker is not None:
            self._expiry_worker.stop()
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
    try:
        pairs = load_pairs(assets, settings.trading.pairs_file)
    except ConfigError:
        writer_engine.dispose()
        engine.dispose()
        raise
    writer = SqlWriter(
        writer_engine, ids, clock,
        max_batch=settings.ledger.group_commit_max_batch,
        max_wait=settings.ledger.group_commit_max_wait_ms / 1000,
    )
    queries = SqlQueries(engine)
    outbox = SqlOutboxStore(engine, writer, clock)
    trading_store = SqlTradingStore(engine)
    trading = TradingService(
        writer, trading_store, ids, clock, assets, pairs, fee_owner=settings.trading.operator_id
    )
    trading_feed = TradingFeed(trading_store)
    trading.add_listener(trading_feed.wake)
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
        conversion=build_conversion(
            settings, writer, engine, assets, clock, ids,
            books=trading, executor=TradingBookExecutor(trading),
        ),
        custody=build_custody(settings, writer, engine, assets, clock, ids),
        wallets=WalletService(SqlWalletStore(engine), queries, writer, ids, clock, assets),
        trading=trading,
        trading_feed=trading_feed,
    )


def build_conversion(
    settings: Settings,
    writer: SqlWriter,
    engine: Engine,
    assets: AssetRegistry,
    clock: Clock,
    ids: IdGenerator,
    books: MidPriceSource | None = None,
    executor: BookExecutor | None = None,
) -> ConversionService:
    """The conversion service over fixed rates, plus the books' mid prices and route.

    ``books`` adds the order books' mid prices as a rate source, ``executor`` the book route.
    """
    config = settings.conversion
    sources: list[RateSource] = [
        FixedRateSource.from_config(
            [(r.base, r.quote, r.rate) for r in config.fixed_rates], assets, clock
        )
    ]
    if books is not None and config.book_mid_rates:
        sources.append(BookMidRateSource(books, clock))
    for code in (*config.pivots, config.reference_asset):
        if code and code not in assets:
            raise ConfigError(f"conversion: unknown asset {code!r} in pivots/reference_asset")
    rates = MedianRates(
        sources, clock,
        RateRules(
            timedelta(seconds=config.rate_max_age_seconds), config.min_sources,
            config.rate_max_deviation_bps,
        ),
        config.pivots,
    )
    policy = ConversionPolicy(
        terms=Terms(config.spread_bps, config.fee_bps),
        lifetime=timedelta(seconds=config.quote_lifetime_seconds),
        max_slippage_bps=config.max_slippage_bps,
        operator_id=config.operator_id,
        reference_asset=config.reference_asset or None,
    )
    return ConversionService(
        writer, SqlConversionStore(engine, assets), rates, assets, clock, ids, policy,
        book=executor,
    )


def build_custody(
    settings: Settings,
    writer: SqlWriter,
    engine: Engine,
    assets: AssetRegistry,
    clock: Clock,
    ids: IdGenerator,
) -> CustodyServices:
    """Keychains, address pools, operators, payouts and the audit log over SQL.

    No signer here: only the CLI's signing commands open one (``dpgnode.signer``), so the
    API and watcher processes never hold a key (R22).
    """
    config = settings.custody
    network = Network(config.network)
    store = SqlCustodyStore(engine)
    audit = AuditService(store, ids, clock)
    addresses = AddressService(store, writer, clock, gap_limit=config.gap_limit)
    try:
        policy = build_spend_policy(
            {
                code: AssetPolicyInput(
                    p.max_per_transaction, p.max_per_day, p.max_payouts_per_hour,
                    p.approval_threshold, p.approvals_required,
                    tuple(p.allowed_destinations), p.require_allowlist,
                )
                for code, p in config.payout_policies.items()
            },
            assets, network,
        )
    except DpgError as exc:
        raise ConfigError(f"custody.payout_policies: {exc.message}", details=exc.details) from exc
    return CustodyServices(
        store=store,
        network=network,
        keychains=KeychainService(store, writer, ids, clock, audit),
        addresses=addresses,
        operators=OperatorService(store, writer, ids, clock, audit),
        payouts=PayoutService(
            store, writer, ids, clock, audit, policy, assets,
            PayoutTransactions(store, addresses, assets, network),
        ),
        audit=audit,
    )


def build_payout_chains(node: Node, *, public_keys: PublicKeys | None = None) -> PayoutChains:
    """Funding and broadcasting of payouts over the ``[chains]`` nodes; the caller closes it.

    Nothing connects until a payout needs a chain. ``public_keys`` (the signer, in the
    commands that sign) tells the Bitcoin funding which address a ``hot:`` source spends
    from; no secret crosses it.

    Raises:
        ConfigError: a malformed ``[chains]`` setting (the message names it).
    """
    connections = ChainConnections.from_settings(
        node.settings.chains, node.assets, node.custody.network
    )
    return PayoutChains(
        connections,
        ChainPayoutFunding(node.custody.store, connections, public_keys),
        ChainBroadcaster(connections),
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
