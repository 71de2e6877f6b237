"""Verify and restore encrypted backups (``dpg backup verify|restore``).

Both open the container with the operator's key and extract into a private place: a
temporary directory, or ``*.partial`` files inside the new data directory. Nothing takes a
restored file's final name before the whole container authenticated (its final chunk
included) and the copy passed its checks: integrity, ledger verification, and the ledger
head recorded in the manifest. The manifest is read from the header before that only to
choose the restore path; the header is authenticated with the first chunk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from dpgnode.adapters.backup import postgres
from dpgnode.adapters.backup.archive import CONFIG_MEMBER, DATABASE_MEMBERS, read_members
from dpgnode.adapters.backup.container import DecryptingReader, read_header
from dpgnode.adapters.backup.directory import PARTIAL_SUFFIX, fsync_directory
from dpgnode.adapters.backup.keys import KeyOpener
from dpgnode.domain.backup import BackupManifest, DatabaseKind
from dpgnode.errors import ConfigError, ValidationError
from dpgnode.settings import CONFIG_FILE, load_settings

from .copies import SQLITE_FILE, CopyCheck, Expected, Progress, SilentProgress, check_copy

_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class CheckedBackup:
    path: Path
    manifest: BackupManifest
    check: CopyCheck
    has_config: bool


@dataclass(frozen=True, slots=True)
class RestoredBackup:
    manifest: BackupManifest
    target: str
    check: CopyCheck
    config_restored: bool


def read_manifest(path: Path) -> BackupManifest:
    """The manifest in a backup's header, *not yet authenticated* (no key needed)."""
    with path.open("rb") as source:
        header, _ = read_header(source)
    return BackupManifest.from_dict(header.manifest)


def _extract(
    path: Path, opener: KeyOpener, directory: Path, suffix: str, report: Progress
) -> tuple[BackupManifest, Path, Path | None]:
    """Decrypt ``path`` into ``directory``; the database (and config) files it wrote."""
    with path.open("rb", buffering=_READ) as source:
        header, digest = read_header(source)
        manifest = BackupManifest.from_dict(header.manifest)
        data_key = opener.open(header.key_slot)
        member = DATABASE_MEMBERS[manifest.database]
        database = directory / (Path(member).name + suffix)
        config = directory / (CONFIG_FILE + suffix)
        report.stage("decrypting", path.stat().st_size)
        reader = DecryptingReader(source, data_key, header, digest)
        found = read_members(reader, {member: database, CONFIG_MEMBER: config}, report.advance)
        reader.drain()
    if not reader.finished:
        raise ValidationError("backup file is damaged: it has no final chunk", field="backup")
    if member not in found:
        raise ValidationError("backup holds no database", field="backup")
    return manifest, database, config if CONFIG_MEMBER in found else None


def _expected(manifest: BackupManifest) -> Expected:
    return manifest.ledger_seq, manifest.ledger_head, manifest.schema_revision


def verify_backup(
    path: Path,
    opener: KeyOpener,
    *,
    work_dir: Path | None = None,
    scratch_database_url: str | None = None,
    progress: Progress | None = None,
) -> CheckedBackup:
    """Decrypt ``path`` into a temporary directory and check what it holds."""
    report = progress or SilentProgress()
    work = Path(tempfile.mkdtemp(prefix="dpg-verify-", dir=work_dir))
    try:
        manifest, database, config = _extract(path, opener, work, "", report)
        report.stage("checking the copy", None)
        check = check_copy(manifest.database, database, _expected(manifest), scratch_database_url)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CheckedBackup(path, manifest, check, config is not None)


def _new_directory(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ValidationError(
            f"{directory} is not an empty directory: restore into a new one", field="data_dir"
        )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def restore_backup(
    path: Path,
    opener: KeyOpener,
    *,
    data_dir: Path | None = None,
    database_url: str | None = None,
    progress: Progress | None = None,
) -> RestoredBackup:
    """Restore into a new data directory (SQLite) or an empty database (PostgreSQL).

    Raises:
        ValidationError: the wrong target for the backup's kind, a non-empty target, a key
            that does not open the backup, a damaged backup, or a copy failing its checks.
    """
    report = progress or SilentProgress()
    if read_manifest(path).database is DatabaseKind.POSTGRESQL:
        if database_url is None:
            raise ValidationError("this backup holds a PostgreSQL dump: give --database-url "
                                  "of an empty database", field="database_url")
        return _restore_postgres(path, opener, database_url, data_dir, report)
    if data_dir is None or database_url is not None:
        raise ValidationError("this backup holds a SQLite database: give --data-dir of a new "
                              "directory", field="data_dir")
    _new_directory(data_dir)
    manifest, database, config = _extract(path, opener, data_dir, PARTIAL_SUFFIX, report)
    try:
        report.stage("checking the copy", None)
        check = check_copy(DatabaseKind.SQLITE, database, _expected(manifest))
        if not check.ok:
            raise ValidationError("the restored database fails its checks: "
                                  + "; ".join(check.problems[:5]), field="backup")
        os.replace(database, data_dir / SQLITE_FILE)
        if config is not None:
            os.replace(config, data_dir / CONFIG_FILE)
        fsync_directory(data_dir)
    finally:
        database.unlink(missing_ok=True)
        if config is not None:
            config.unlink(missing_ok=True)
    if config is not None:
        check.notes.extend(_config_notes(data_dir))
    return RestoredBackup(manifest, str(data_dir), check, config is not None)


def _config_notes(data_dir: Path) -> list[str]:
    """Say so when the restored dpg.toml would not open the restored database."""
    try:
        url = load_settings(data_dir).database_url()
    except ConfigError as exc:
        return [f"the restored dpg.toml does not load here: {exc.message}"]
    wanted = (data_dir / SQLITE_FILE).resolve()
    if not url.startswith("sqlite") or Path(str(make_url(url).database)).resolve() != wanted:
        return ["the restored dpg.toml (or DPG_DATABASE__URL) points the node at another "
                f"database: set database.url to sqlite+pysqlite:///{wanted} or remove it"]
    return []


def _restore_postgres(
    path: Path, opener: KeyOpener, url: str, data_dir: Path | None, report: Progress
) -> RestoredBackup:
    postgres.require_empty(url)
    if data_dir is not None:
        _new_directory(data_dir)
    work = Path(tempfile.mkdtemp(prefix="dpg-restore-"))
    try:
        manifest, dump, config = _extract(path, opener, work, "", report)
        report.stage("pg_restore", None)
        check = check_copy(DatabaseKind.POSTGRESQL, dump, _expected(manifest), url)
        if not check.ok:
            raise ValidationError("the restored database fails its checks: "
                                  + "; ".join(check.problems[:5]), field="backup")
        restored = data_dir is not None and config is not None
        if restored and data_dir is not None and config is not None:
            shutil.copyfile(config, data_dir / CONFIG_FILE)
            (data_dir / CONFIG_FILE).chmod(0o600)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return RestoredBackup(manifest, str(make_url(url).database), check, restored)
