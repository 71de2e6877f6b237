"""The backup directory: finished backups, work in progress, a lock, the scheduler's status.

A backup becomes visible under its final name only by ``rename`` after it was written,
fsynced and read back, so anything named ``dpg-*.dpgbak`` is complete. Work in progress lives
in ``.work-*`` directories and ``*.partial`` files, removed when the next run takes the lock
(a killed run leaves them behind). The lock (``flock`` on ``.lock``) keeps two processes of
one node (several API workers) from backing up at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dpgnode.domain.backup import parse_backup_file_name
from dpgnode.errors import ConfigError

STATUS_FILE = ".status.json"
LOCK_FILE = ".lock"
WORK_PREFIX = ".work-"
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True, slots=True)
class BackupFile:
    """A finished backup in the directory."""

    path: Path
    created_at: datetime
    size: int


def ensure_directory(directory: Path) -> Path:
    """Create the directory (mode 0700) if needed; ``ConfigError`` if that fails."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the backup directory {directory}: {exc.strerror or exc}",
            details={"field": "backup.directory"},
        ) from exc
    return directory


def list_backups(directory: Path) -> list[BackupFile]:
    """Finished backups, oldest first (an absent directory holds none)."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        created = parse_backup_file_name(path.name)
        if created is not None and path.is_file():
            found.append(BackupFile(path, created, path.stat().st_size))
    return sorted(found, key=lambda backup: backup.created_at)


@contextlib.contextmanager
def exclusive(directory: Path) -> Iterator[bool]:
    """Hold the directory's lock if no other process does; yields whether it was taken."""
    ensure_directory(directory)
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def remove_leftovers(directory: Path) -> int:
    """Delete work a killed run left behind; call only while holding :func:`exclusive`."""
    removed = 0
    for path in directory.iterdir() if directory.is_dir() else ():
        if path.name.startswith(WORK_PREFIX) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        elif path.name.endswith(PARTIAL_SUFFIX) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def work_directory(parent: Path) -> Path:
    """A private (0700) scratch directory under ``parent`` for one run."""
    ensure_directory(parent)
    return Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=parent))


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish(partial: Path, final: Path) -> None:
    """Move a finished, fsynced file to its final name, never over an existing one."""
    if final.exists():
        raise ConfigError(f"{final} already exists: refusing to overwrite a backup")
    try:
        os.link(partial, final)  # fails if ``final`` appeared meanwhile; rename would replace it
    except FileExistsError as exc:
        raise ConfigError(f"{final} already exists: refusing to overwrite a backup") from exc
    except OSError:  # a filesystem without hard links (some network and FUSE mounts)
        os.rename(partial, final)
    else:
        partial.unlink()
    fsync_directory(final.parent)


def write_status(directory: Path, status: dict[str, Any]) -> None:
    """Record the scheduler's last attempt (read by ``dpg doctor``), atomically."""
    ensure_directory(directory)
    temporary = directory / f"{STATUS_FILE}{PARTIAL_SUFFIX}"
    temporary.write_text(json.dumps(status, sort_keys=True))
    os.replace(temporary, directory / STATUS_FILE)


def read_status(directory: Path) -> dict[str, Any]:
    """The scheduler's last recorded attempt, or an empty dict."""
    try:
        data = json.loads((directory / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
