"""``dpg doctor``: check the configuration, database, chains, HSM, clock, disk and backups.

Every check runs even when an earlier one failed (except those that need the settings or
the database, which are reported as skipped with the reason), and none raises: an error
becomes a ``fail`` finding whose ``fix`` says what to do. What cannot be measured here is
reported as ``skip`` with why, never guessed. Checks that need code this layer may not
import, or that other parts of the node will provide, come in as :class:`DoctorHooks`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from dpgnode.adapters.assets import load_registry
from dpgnode.adapters.backup.directory import list_backups, read_status
from dpgnode.adapters.chains.connections import BITCOIN_NETWORK, ChainConnections
from dpgnode.adapters.storage import health, migrate
from dpgnode.adapters.storage.engine import make_engine
from dpgnode.adapters.storage.queries import SqlQueries
from dpgnode.adapters.system import SystemClock
from dpgnode.adapters.timecheck import http_date_offset
from dpgnode.domain.backup import DatabaseKind
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.doctor import Finding, Status, judge_backups, judge_clock, judge_disk
from dpgnode.domain.money import AssetKind
from dpgnode.errors import ConfigError, DpgError
from dpgnode.ports.clock import Clock
from dpgnode.services.verification import verify_ledger, verify_segment
from dpgnode.settings import Settings, semantic_problems

from .copies import backup_directory, database_kind, sqlite_path
from .schedule import key_problem

TAIL_ENTRIES = 1000
"""Entries the quick ledger check re-hashes at the end of the journal."""

Probe = Callable[[Settings], Sequence[Finding]]


@dataclass(frozen=True, slots=True)
class DoctorHooks:
    """Checks provided from outside this layer; a missing hook is reported as skipped."""

    hsm: Probe | None = None
    """The HSM: token present, PIN source usable (the CLI builds it on dpgnode.signer)."""
    chain_sync: Probe | None = None
    """The chain watchers' state per followed chain (``dpgnode.node.chain_sync_findings``):
    started, caught up, paused by an incident, ledger and chain in agreement."""
    webhooks: Probe | None = None
    """HOOK for merchant webhook delivery health (issue #5: failing endpoints, queue age)."""


def _guard(check: str, probe: Callable[[], Sequence[Finding]]) -> list[Finding]:
    """Run one check; an error becomes a ``fail`` finding instead of ending the doctor."""
    try:
        return list(probe())
    except DpgError as exc:
        return [Finding(check, Status.FAIL, exc.message, _fix_for(exc))]
    except Exception as exc:  # a bug in a check must not hide the other checks
        return [Finding(check, Status.FAIL, f"the check itself failed: {type(exc).__name__}",
                        "run with --debug and report it")]


def _fix_for(exc: DpgError) -> str:
    field = exc.details.get("field")
    return f"check the setting {field}" if field else ""


def run_doctor(
    load: Callable[[], Settings],
    hooks: DoctorHooks | None = None,
    *,
    clock: Clock | None = None,
    full: bool = False,
) -> list[Finding]:
    """Every check, in order; ``full`` runs the complete integrity check and ledger verify."""
    hooks = hooks or DoctorHooks()
    now = (clock or SystemClock()).now()
    try:
        settings = load()
    except ConfigError as exc:
        return [Finding("config", Status.FAIL, exc.message,
                        "fix dpg.toml or the DPG_* variables (`dpg config validate`)")]
    findings = [_config(settings)]
    findings += _guard("database", lambda: _database(settings, full))
    findings += _guard("chains", lambda: _chains(settings))
    findings += _hook("chain sync", hooks.chain_sync, settings,
                      "the chain watcher's status is not wired into doctor yet")
    findings += _hook("hsm", hooks.hsm, settings, "no HSM check available in this process")
    findings += _guard("clock", lambda: [_clock(settings)])
    findings += _guard("disk", lambda: _disk(settings))
    findings += _guard("backups", lambda: [_backups(settings, now)])
    findings += _hook("webhooks", hooks.webhooks, settings,
                      "merchant webhooks are not part of this node yet (issue #5)")
    return findings


def _hook(check: str, probe: Probe | None, settings: Settings, missing: str) -> list[Finding]:
    if probe is None:
        return [Finding(check, Status.SKIP, missing)]
    return _guard(check, lambda: probe(settings))


def _config(settings: Settings) -> Finding:
    problems = semantic_problems(settings)
    if problems:
        return Finding("config", Status.FAIL, "; ".join(problems),
                       "fix dpg.toml or the DPG_* variables (`dpg config validate`)")
    return Finding("config", Status.OK, f"settings load (data directory {settings.data_dir})")


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url())
    try:
        yield engine
    finally:
        engine.dispose()


def _database(settings: Settings, full: bool) -> list[Finding]:
    if database_kind(settings) is DatabaseKind.SQLITE and not sqlite_path(settings).is_file():
        return [Finding("database", Status.FAIL, f"no database at {sqlite_path(settings)}",
                        "run `dpg init` (or restore a backup)")]
    with _engine(settings) as engine:
        health.ping(engine)
        found = [Finding("database", Status.OK, f"reachable ({engine.dialect.name})")]
        problems, checked = health.integrity(engine, full=full)
        found.append(Finding("integrity", Status.FAIL, "; ".join(problems[:5]),
                             "restore the newest good backup (`dpg backup restore`)")
                     if problems else Finding("integrity", Status.OK, f"{checked}: ok"))
        current, head = migrate.current_revision(engine), migrate.head_revision(engine)
        if current != head:
            found.append(Finding("migrations", Status.FAIL,
                                 f"schema at {current}, this version needs {head}",
                                 "stop the node and run `dpg db upgrade`"))
            found.append(Finding("ledger", Status.SKIP, "schema not current"))
            return found
        found.append(Finding("migrations", Status.OK, f"schema at head ({head})"))
        found.append(_ledger(engine, full))
    return found


def _ledger(engine: Engine, full: bool) -> Finding:
    queries = SqlQueries(engine)
    with queries.snapshot() as snapshot:
        if full:
            report = verify_ledger(snapshot)
            problems = report.problems
            what = f"all {report.entries} entries and {report.accounts} balances"
        else:
            head = snapshot.head()
            start = max(0, head[0] - TAIL_ENTRIES - 1)
            checked, problems = verify_segment(snapshot.entries(after=start), head,
                                               anchored=start > 0)
            what = f"hash chain of the newest {checked} of {head[0]} entries (--full: all)"
    if problems:
        return Finding("ledger", Status.FAIL, "; ".join(problems[:5]),
                       "stop writing; run `dpg ledger verify` and restore a good backup")
    return Finding("ledger", Status.OK, f"{what}: ok")


def _chains(settings: Settings) -> list[Finding]:
    chains = settings.chains
    if not chains.bitcoin.rpc_url and not chains.evm:
        return [Finding("chains", Status.SKIP, "no chain nodes configured ([chains]); "
                        "receiving needs none, payouts do")]
    assets = load_registry(settings.assets)
    connections = ChainConnections.from_settings(chains, assets, Network(settings.custody.network))
    targets: list[tuple[str, str | None]] = []
    if chains.bitcoin.rpc_url:
        targets.append(("chains.bitcoin", _native(connections, BITCOIN_NETWORK)))
    targets += [(f"chains.evm.{name}", _native(connections, name)) for name in chains.evm]
    found = []
    try:
        for name, code in targets:
            try:
                line = connections.check(code) if code else _height(connections, name)
                found.append(Finding("chains", Status.OK, f"{name}: {line}"))
            except DpgError as exc:
                found.append(Finding("chains", Status.FAIL, f"{name}: {exc.message}",
                                     f"is the node running and is {name}.rpc_url right?"))
    finally:
        connections.close()
    return found


def _native(connections: ChainConnections, network: str) -> str | None:
    for code in connections.assets_on(network):
        if connections.asset(code).kind is AssetKind.CRYPTO:
            return code
    return None


def _height(connections: ChainConnections, setting: str) -> str:
    chain = connections.evm(setting.rsplit(".", 1)[1])
    return f"{chain.rpc.name}: chain id {chain.rpc.chain_id}, block {chain.rpc.check_chain()}"


def _clock(settings: Settings) -> Finding:
    limit = settings.doctor.max_clock_skew_seconds
    if settings.doctor.time_url:
        offset, uncertainty = http_date_offset(settings.doctor.time_url)
        return judge_clock(settings.doctor.time_url, offset, uncertainty, limit)
    if database_kind(settings) is DatabaseKind.POSTGRESQL:
        with _engine(settings) as engine:
            measured = health.server_clock_offset(engine)
        if measured is not None:
            return judge_clock("the PostgreSQL server", *measured, limit)
    return Finding("clock", Status.SKIP, "no time reference to compare with (SQLite has no "
                   "server clock)", "set doctor.time_url to an HTTPS URL to compare its Date")


def _disk(settings: Settings) -> list[Finding]:
    database = sqlite_path(settings) if database_kind(settings) is DatabaseKind.SQLITE else None
    size = database.stat().st_size if database is not None and database.is_file() else 0
    min_free = settings.doctor.min_free_disk_mb << 20
    places = {"data directory": settings.data_dir, "backup directory": backup_directory(settings)}
    found, seen = [], set()
    for name, path in places.items():
        existing = _existing(path)
        device = existing.stat().st_dev
        if device in seen:
            continue
        seen.add(device)
        free = shutil.disk_usage(existing).free
        # A backup holds a plain copy while it encrypts it: about twice the database.
        found.append(judge_disk(f"{name} {path}", free, 2 * size, min_free))
    return found


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _backups(settings: Settings, now: datetime) -> Finding:
    directory = backup_directory(settings)
    backups = list_backups(directory)
    status = read_status(directory)
    problem = key_problem(settings)
    scheduled = settings.backup.interval_minutes > 0
    error = str(status["error"]) if status.get("ok") is False and status.get("error") else None
    return judge_backups(
        backups[-1].created_at if backups else None, now,
        timedelta(minutes=settings.backup.interval_minutes), scheduled=scheduled,
        last_error=error, unkeyed=problem,
    )
