"""Scheduled backups and retention: the node's backup worker, ``dpg backup list|prune``.

The worker ticks often and does work only when the newest backup in the directory is
``backup.interval_minutes`` old, so the schedule survives restarts and a second process
sees the first one's backup. Under the directory's lock it removes what a killed run left,
makes the backup, prunes by the retention policy and records the outcome in the status file
``dpg doctor`` reads. A failed attempt is retried after one interval (never in a tight loop)
and is logged with the reason, never with key material.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from dpgnode.adapters.backup.directory import (
    BackupFile,
    exclusive,
    list_backups,
    read_status,
    remove_leftovers,
    write_status,
)
from dpgnode.adapters.backup.keys import (
    KeySealer,
    passphrase_source,
    public_key_path,
    sealer_from_settings,
)
from dpgnode.domain.backup import (
    BackupManifest,
    KeySource,
    RetentionPolicy,
    backup_due,
    to_prune,
)
from dpgnode.errors import DpgError
from dpgnode.ports.clock import Clock
from dpgnode.settings import Settings

from .backups import CreatedBackup, create_backup
from .copies import backup_directory
from .restore import read_manifest

log = structlog.get_logger(__name__)

TICK_SECONDS = 30.0
"""How often the worker looks whether a backup is due."""


@dataclass(frozen=True, slots=True)
class ListedBackup:
    """A backup file and the manifest its header claims (not authenticated without the key)."""

    file: BackupFile
    manifest: BackupManifest | None
    problem: str | None = None


def listed_backups(settings: Settings) -> list[ListedBackup]:
    """The backups in ``backup.directory``, oldest first, with their header manifests."""
    listed = []
    for backup in list_backups(backup_directory(settings)):
        try:
            listed.append(ListedBackup(backup, read_manifest(backup.path)))
        except (DpgError, OSError) as exc:
            reason = exc.message if isinstance(exc, DpgError) else type(exc).__name__
            listed.append(ListedBackup(backup, None, reason))
    return listed


def retention_policy(settings: Settings) -> RetentionPolicy:
    config = settings.backup
    return RetentionPolicy(config.keep_hourly, config.keep_daily, config.keep_weekly)


def prune_backups(settings: Settings, *, dry_run: bool = False) -> list[BackupFile]:
    """Delete (or, ``dry_run``, only name) the backups the retention policy lets go."""
    directory = backup_directory(settings)
    backups = list_backups(directory)
    doomed = set(to_prune([b.created_at for b in backups], retention_policy(settings)))
    pruned = [backup for backup in backups if backup.created_at in doomed]
    if not dry_run:
        for backup in pruned:
            backup.path.unlink(missing_ok=True)
    return pruned


def last_status(settings: Settings) -> dict[str, object]:
    """What the scheduler recorded about its last attempt (empty when it never ran)."""
    return read_status(backup_directory(settings))


def key_problem(settings: Settings) -> str | None:
    """Why scheduled backups cannot be keyed, or ``None`` when a key is configured."""
    if settings.backup.key_source == str(KeySource.HSM):
        path = public_key_path(settings)
        return None if path.is_file() else (
            f"no backup public key at {path}: run `dpg backup key create`"
        )
    source = passphrase_source(settings)
    return None if source.available() else (
        f"no backup passphrase: set backup.passphrase_file or {source.env_var}, "
        'or backup.key_source = "hsm"'
    )


class ScheduledBackups:
    """The node's backup job: call :meth:`run_once` periodically (a ``PeriodicWorker``)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sealer: Callable[[], KeySealer] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._sealer = sealer or (lambda: sealer_from_settings(settings))
        self._interval = timedelta(minutes=settings.backup.interval_minutes)
        self._retry_at: datetime | None = None

    @property
    def directory(self) -> Path:
        return backup_directory(self._settings)

    def _due(self, now: datetime) -> bool:
        if self._retry_at is not None and now < self._retry_at:
            return False
        backups = list_backups(self.directory)
        return backup_due(backups[-1].created_at if backups else None, now, self._interval)

    def run_once(self) -> CreatedBackup | None:
        """Back up and prune if a backup is due and no other process is at it."""
        if self._interval <= timedelta(0) or not self._due(self._clock.now()):
            return None
        with exclusive(self.directory) as mine:
            if not mine or not self._due(self._clock.now()):
                return None  # another process holds the lock, or has just finished one
            remove_leftovers(self.directory)
            return self._attempt()

    def _attempt(self) -> CreatedBackup | None:
        started = self._clock.now()
        status: dict[str, object] = {"lastAttemptAt": started.isoformat()}
        try:
            created = create_backup(self._settings, self._sealer(), clock=self._clock, locked=True)
        except Exception as exc:  # recorded for `dpg doctor`, retried after one interval
            self._retry_at = started + self._interval
            reason = exc.message if isinstance(exc, DpgError) else type(exc).__name__
            previous = read_status(self.directory)
            status |= {"ok": False, "error": reason, "lastSuccessAt": previous.get("lastSuccessAt")}
            write_status(self.directory, status)
            log.error("scheduled backup failed", reason=reason, retry_at=self._retry_at.isoformat())
            return None
        self._retry_at = None
        pruned = prune_backups(self._settings)
        status |= {
            "ok": True, "error": None, "lastSuccessAt": created.manifest.created_at.isoformat(),
            "file": created.path.name, "size": created.size, "pruned": len(pruned),
        }
        write_status(self.directory, status)
        log.info("scheduled backup written", file=created.path.name, size=created.size,
                 pruned=len(pruned))
        return created


def scheduled_backups(settings: Settings, clock: Clock) -> ScheduledBackups | None:
    """The node's backup job, or ``None`` (with a warning) when no key is configured."""
    if settings.backup.interval_minutes == 0:
        return None
    problem = key_problem(settings)
    if problem is not None:
        log.warning("scheduled backups are off", reason=problem)
        return None
    return ScheduledBackups(settings, clock)
