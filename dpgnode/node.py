"""Composition root: the one place that builds adapters from settings and wires services.

``build_node(settings, clock=..., ids=...)`` returns a :class:`Node`; tests pass a
``FixedClock`` (and anything else a port allows) through the same function production uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
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
from dpgnode.adapters.chains.clients import FollowedChain, followed_chains
from dpgnode.adapters.chains.devnodes import (
    DevChains as DevChains,
)
from dpgnode.adapters.chains.own_txs import ChainOwnTxAccess
from dpgnode.adapters.chains.readers import ConfiguredChainReaders
from dpgnode.adapters.chains.sweep_chain import ChainSweepAccess
from dpgnode.adapters.events.inprocess import InProcessSink, Subscriber
from dpgnode.adapters.exchange_pairs import load_pairs
from dpgnode.adapters.metrics import PrometheusMetrics
from dpgnode.adapters.rates.fixed import FixedRateSource
from dpgnode.adapters.storage import migrate
from dpgnode.adapters.storage.chain_ledger import SqlChainLedger
from dpgnode.adapters.storage.chains import SqlChainStore
from dpgnode.adapters.storage.conversion import SqlConversionStore
from dpgnode.adapters.storage.custody import SqlCustodyStore
from dpgnode.adapters.storage.engine import make_engine
from dpgnode.adapters.storage.idempotency import SqlIdempotencyStore
from dpgnode.adapters.storage.metrics import SqlObservedState
from dpgnode.adapters.storage.outbox import SqlOutboxStore
from dpgnode.adapters.storage.outgoing import SqlOutgoingStore
from dpgnode.adapters.storage.own_movements import SqlOwnMovements
from dpgnode.adapters.storage.queries import SqlQueries
from dpgnode.adapters.storage.trading import SqlTradingStore
from dpgnode.adapters.storage.wallets import SqlWalletStore
from dpgnode.adapters.storage.writer import SqlWriter
from dpgnode.adapters.system import SystemClock, Uuid7Ids
from dpgnode.adapters.telemetry import Tracing, build_tracing
from dpgnode.adapters.worker import PeriodicWorker
from dpgnode.domain.chains.cursor import IncidentKind
from dpgnode.domain.conversion.pricing import Terms
from dpgnode.domain.conversion.rates import RateRules
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.doctor import Finding, Status
from dpgnode.domain.money import AssetKind, AssetRegistry
from dpgnode.errors import ConfigError, DpgError
from dpgnode.maintenance.schedule import TICK_SECONDS as BACKUP_TICK_SECONDS
from dpgnode.maintenance.schedule import scheduled_backups
from dpgnode.ports.clock import Clock
from dpgnode.ports.conversion import BookExecutor
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.metrics import MetricsExporter
from dpgnode.ports.rates import MidPriceSource, RateSource
from dpgnode.ports.sweeps import SweepChain
from dpgnode.services.access import AccessService
from dpgnode.services.chains import ChainServices
from dpgnode.services.chains.blockchain import BlockchainService
from dpgnode.services.chains.monitor import ChainMonitor
from dpgnode.services.chains.outgoing import OutgoingChain, OutgoingTracker
from dpgnode.services.chains.outgoing_effects import OutgoingEffects
from dpgnode.services.chains.rebroadcast import OutgoingWork, Rebroadcaster
from dpgnode.services.chains.reconcile import Reconciler, ReconcileTarget
from dpgnode.services.chains.status import ChainStatusReader
from dpgnode.services.chains.sweep_plan import SweepPlanner, SweepTarget
from dpgnode.services.chains.sweeps import SweepService
from dpgnode.services.chains.watcher import ChainWatcher
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
from dpgnode.services.observability import ScrapeSources, register_sources
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
    chains: ChainServices
    metrics: MetricsExporter
    """The node's metrics (``/metrics``); services record into it through the port."""
    tracing: Tracing | None = None
    """OpenTelemetry tracing when ``[telemetry] otlp_endpoint`` is set (``otel`` extra)."""
    _closed: bool = field(default=False, repr=False)
    _chain_workers: list[PeriodicWorker] = field(default_factory=list, repr=False)
    _followed: dict[str, FollowedChain] = field(default_factory=dict, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _relay_worker: PeriodicWorker | None = field(default=None, repr=False)
    _expiry_worker: PeriodicWorker | None = field(default=None, repr=False)
    _backup_worker: PeriodicWorker | None = field(default=None, repr=False)

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
        self.start_chain_watchers()
        self.start_backups()

    def start_backups(self) -> None:
        """Scheduled encrypted backups (``[backup]``); off when no key is configured."""
        if self._backup_worker is not None or self.settings.backup.interval_minutes == 0:
            return
        scheduler = scheduled_backups(self.settings, self.clock)  # None (logged): no key
        if scheduler is not None:
            self._backup_worker = PeriodicWorker(
                "dpg-backup", scheduler.run_once, BACKUP_TICK_SECONDS
            )
            self._backup_worker.start()

    def start_chain_watchers(self) -> None:
        """Poll every followed chain in its own thread (a slow node delays only its chain)."""
        if self._chain_workers:
            return
        monitor = self.chains.monitor
        for chain in monitor.chains:
            interval = self.chains.intervals.get(chain, 2.0)
            followed = self._followed.get(chain)
            wait = followed.wait_for_news if followed is not None else None
            if wait is None:
                worker = PeriodicWorker(
                    f"dpg-watch-{chain}", functools.partial(monitor.poll, chain), interval)
            else:  # a notification ends the wait early: blocks are seen as they arrive
                worker = PeriodicWorker(
                    f"dpg-watch-{chain}", functools.partial(_poll_then_wait, monitor, chain,
                                                            wait, interval), _NOTIFIED_PAUSE)
            self._chain_workers.append(worker)
            worker.start()
        for chain, work in self.chains.outgoing.items():
            # Own transactions: fees read from the chain, confirmations due, rebroadcasts.
            worker = PeriodicWorker(f"dpg-outgoing-{chain}", work.run_once,
                                    self.chains.intervals.get(chain, 2.0))
            self._chain_workers.append(worker)
            worker.start()
        reconciler = self.chains.reconciler
        if reconciler is not None and monitor.chains:
            # Off the watchers' threads: a UTXO scan may take minutes on mainnet.
            worker = PeriodicWorker("dpg-reconcile", reconciler.run_due, 1.0)
            self._chain_workers.append(worker)
            worker.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._chain_workers:
            worker.stop()
        for followed in self._followed.values():
            followed.close()
        for closer in self._closers:
            closer()
        if self._relay_worker is not None:
            self._relay_worker.stop()
        if self._expiry_worker is not None:
            self._expiry_worker.stop()
        if self._backup_worker is not None:
            self._backup_worker.stop()
        self.writer.close()
        self.engine.dispose()
        self.writer_engine.dispose()
        if self.tracing is not None:
            self.tracing.shutdown()  # flushes spans still queued for the collector


def build_node(
    settings: Settings,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    upgrade: bool = False,
    chains: Mapping[str, FollowedChain] | None = None,
) -> Node:
    """Wire a node; ``upgrade=True`` migrates the database first, else it must be current.

    ``chains`` replaces the chains ``[chains]`` configures (tests follow a simulated chain).
    """
    clock = clock or SystemClock()
    ids = ids or Uuid7Ids()
    tracing = build_tracing(settings.telemetry)  # first: a missing extra fails before I/O
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
    metrics = PrometheusMetrics()
    trading = TradingService(
        writer, trading_store, ids, clock, assets, pairs, fee_owner=settings.trading.operator_id,
        metrics=metrics,
    )
    relay = OutboxRelay(outbox, [], clock, metrics=metrics)
    register_sources(metrics, ScrapeSources(SqlObservedState(engine), clock, relay.sink_names))
    trading_feed = TradingFeed(trading_store)
    trading.add_listener(trading_feed.wake)
    custody = build_custody(settings, writer, engine, assets, clock, ids)
    followed = dict(chains) if chains is not None else followed_chains(
        settings, assets, custody.network)
    readers = ConfiguredChainReaders(settings.chains, assets, custody.network)
    outgoing = build_outgoing(settings, followed, engine, writer, clock, custody, assets)
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
        relay=relay,
        idempotency=IdempotencyService(
            SqlIdempotencyStore(writer), clock,
            retention=timedelta(hours=settings.api.idempotency_retention_hours),
        ),
        conversion=build_conversion(
            settings, writer, engine, assets, clock, ids,
            books=trading, executor=TradingBookExecutor(trading),
        ),
        custody=custody,
        wallets=WalletService(SqlWalletStore(engine), queries, writer, ids, clock, assets),
        trading=trading,
        trading_feed=trading_feed,
        chains=add_chain_views(
            build_chain_services(followed, engine, writer, clock, custody, outgoing=outgoing,
                                 metrics=metrics),
            followed, engine, writer, clock, custody, assets, readers,
        ),
        _closers=[readers.close, outgoing.access.close],
        _followed=followed,
        metrics=metrics,
        tracing=tracing,
    )


_NOTIFIED_PAUSE = 0.05
"""Pause between polls of a chain that pushes notifications (the wait is in the job)."""


def _poll_then_wait(
    monitor: ChainMonitor, chain: str, wait: Callable[[float], bool], interval: float
) -> None:
    monitor.poll(chain)
    wait(interval)


def build_chain_services(
    followed: Mapping[str, FollowedChain], engine: Engine, writer: SqlWriter, clock: Clock,
    custody: CustodyServices, *, outgoing: OutgoingWiring | None = None,
    metrics: MetricsExporter | None = None,
) -> ChainServices:
    """A watcher per followed chain over the SQL chain store, and the monitor running them.

    ``outgoing`` follows the node's own transactions inside each watcher's commands.
    """
    store = SqlChainStore(engine)
    work = outgoing.work if outgoing is not None else {}
    watchers = {
        name: ChainWatcher(chain.target, chain.client, store, custody.store, writer, clock,
                           observers=[work[name].tracker] if name in work else [])
        for name, chain in followed.items()
    }
    intervals = {name: chain.poll_interval for name, chain in followed.items()}
    return ChainServices(
        store=store,
        monitor=ChainMonitor(watchers, clock, base_interval=intervals, metrics=metrics),
        clients={name: chain.client for name, chain in followed.items()},
        intervals=intervals,
        outgoing=work,
    )


@dataclass(frozen=True, slots=True)
class OutgoingWiring:
    """Per followed chain, what follows the node's own transactions.

    ``access`` connects to the ``[chains]`` nodes on first use (close it with the node).
    """

    work: dict[str, OutgoingWork]
    access: ChainOwnTxAccess


def build_outgoing(
    settings: Settings, followed: Mapping[str, FollowedChain], engine: Engine,
    writer: SqlWriter, clock: Clock, custody: CustodyServices, assets: AssetRegistry,
) -> OutgoingWiring:
    """Payout and sweep confirmation, their fees, and rebroadcasts, per followed chain.

    No key: rebroadcasts send bytes signed elsewhere, fees come from receipts (R22).
    """
    access = ChainOwnTxAccess(
        functools.partial(ChainConnections.from_settings, settings.chains, assets,
                          custody.network))
    store = SqlOutgoingStore(engine)
    effects = OutgoingEffects(custody.store, store, custody.audit)
    cursors = SqlChainStore(engine)
    interval = timedelta(minutes=settings.chains.rebroadcast_minutes)
    work: dict[str, OutgoingWork] = {}
    for name, chain in followed.items():
        target = OutgoingChain.of(name, chain.target.family, chain.target.policy.reorg_limit,
                                  assets)
        if target is None:
            continue
        tracker = OutgoingTracker(target, store, effects, cursors, writer, clock, access)
        work[name] = OutgoingWork(tracker, Rebroadcaster(
            target, store, custody.store, writer, clock, access, interval))
    return OutgoingWiring(work, access)


def add_chain_views(
    services: ChainServices, followed: Mapping[str, FollowedChain], engine: Engine,
    writer: SqlWriter, clock: Clock, custody: CustodyServices, assets: AssetRegistry,
    readers: ConfiguredChainReaders,
) -> ChainServices:
    """Reconciliation, chain status and the blockchain API over the followed chains.

    A chain's balances are read by what its ``FollowedChain`` brings (tests: the simulator)
    or else by the ``[chains]`` node of the same name, connected on first use.
    """
    ledger = SqlChainLedger(engine)
    targets = {
        name: ReconcileTarget(
            chain.target.policy, chain.client,
            chain.balances if chain.balances is not None else readers.balances_for(name),
            chain.target.family, chain.target.network,
            next((code for code, asset in assets.items()
                  if asset.network == name and asset.kind is AssetKind.CRYPTO), ""),
        )
        for name, chain in followed.items()
    }
    movements = SqlOwnMovements(engine, assets, custody.network)  # payouts, sweeps, top-ups
    reconciler = Reconciler(targets, services.store, ledger, movements,
                            ledger, writer, clock)
    services.monitor.add_listener(reconciler.after_poll)
    services.reconciler = reconciler
    services.status = ChainStatusReader(services.monitor, services.store, services.clients,
                                        reconciler)
    services.blockchain = BlockchainService(
        services.store, reconciler, custody.addresses, custody.store, custody.payouts, ledger,
        readers,
    )
    return services


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


@dataclass(frozen=True, slots=True)
class Sweeping:
    """``dpg chain sweep``'s use cases and the chain nodes they read and send to."""

    service: SweepService
    chain: SweepChain


def build_sweeps(node: Node, chains: PayoutChains) -> Sweeping:
    """Sweeps over ``chains`` (from :func:`build_payout_chains`; the caller closes it).

    Treasuries and gas keys come from ``[chains]``: ``chains.bitcoin.treasury_address``,
    ``chains.evm.<name>.treasury_address`` / ``treasury_addresses`` / ``gas_source``.
    """
    planner = SweepPlanner(sweep_targets(node.settings, node.assets), node.custody.store,
                           node.assets, node.custody.network)
    service = SweepService(planner, SqlOutgoingStore(node.engine), node.custody.store,
                           node.writer, node.ids, node.clock, node.custody.audit, node.assets)
    access = ChainSweepAccess(chains.connections, chains.funding, chains.broadcaster,
                              node.custody.store)
    return Sweeping(service, access)


def sweep_targets(settings: Settings, assets: AssetRegistry) -> dict[str, SweepTarget]:
    """Where each configured chain's deposits are swept to (chains without one are left out).

    Raises:
        ConfigError: ``treasury_addresses`` names an asset that does not move on its chain.
    """
    targets: dict[str, SweepTarget] = {}
    btc = settings.chains.bitcoin
    if btc.treasury_address:
        coins = [c for c, a in assets.items() if a.network == "bitcoin"]
        targets["bitcoin"] = SweepTarget("bitcoin", "bitcoin",
                                         dict.fromkeys(coins, btc.treasury_address),
                                         setting="chains.bitcoin")
    for name, evm in settings.chains.evm.items():
        on_chain = [c for c, a in assets.items() if a.network == name]
        treasury = dict.fromkeys(on_chain, evm.treasury_address) if evm.treasury_address else {}
        for code, address in evm.treasury_addresses.items():
            if code not in on_chain:
                raise ConfigError(f"chains.evm.{name}.treasury_addresses: {code} does not "
                                  f"move on {name}")
            treasury[code] = address
        if treasury:
            targets[name] = SweepTarget(name, "evm", treasury, evm.gas_source,
                                        f"chains.evm.{name}")
    return targets


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


# -- dpg doctor: the chain watchers' state ------------------------------------------------------

_DOCTOR_LAG_WARN = 6
"""Blocks behind the node's tip after which doctor warns that the watcher is not keeping up."""


def chain_sync_findings(settings: Settings) -> list[Finding]:
    """Per followed chain: is the watcher running, caught up, paused by an incident?

    Reads the watchers' cursors and open incidents from the database and asks each chain's
    node for its tip; a node that does not answer is a failure naming the setting.
    """
    node = build_node(settings)
    try:
        chains = node.chains.monitor.chains
        if not chains:
            return [Finding("chain sync", Status.SKIP, "no chain is configured ([chains])")]
        return [_chain_sync(node, chain) for chain in chains]
    finally:
        node.close()


def _chain_sync(node: Node, chain: str) -> Finding:
    check = f"chain sync {chain}"
    cursor = node.chains.store.cursor(chain)
    if cursor is not None and cursor.is_paused:
        return Finding(check, Status.FAIL, f"paused: {cursor.paused}",
                       f"look at `dpg chain incidents {chain}`, then `dpg chain resume {chain}`")
    try:
        tip = node.chains.clients[chain].tip()
    except DpgError as exc:
        return Finding(check, Status.FAIL, f"the chain's node does not answer: {exc.message}",
                       f"check [chains] for {chain} and that its node runs")
    if cursor is None:
        return Finding(check, Status.WARN, f"the watcher has not started (node at {tip.height})",
                       "start the node: `dpg node start`")
    lag = max(0, tip.height - cursor.height)
    mismatches = [i for i in node.chains.store.incidents(chain)
                  if i.kind is IncidentKind.RECONCILIATION_MISMATCH]
    if mismatches:
        return Finding(check, Status.WARN,
                       f"ledger and chain disagree ({len(mismatches)} open mismatch)",
                       f"`dpg chain reconcile {chain}` shows the addresses")
    if lag > _DOCTOR_LAG_WARN:
        return Finding(check, Status.WARN, f"{lag} blocks behind the node (at {tip.height})",
                       "is `dpg node start` running? `dpg chain status` shows its health")
    return Finding(check, Status.OK, f"at {cursor.height}, node at {tip.height} (lag {lag})")
