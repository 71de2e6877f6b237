"""Create encrypted backups (``dpg backup create``, the node's scheduled backups).

Create: a consistent copy (SQLite online backup, or ``pg_dump`` from an exported snapshot)
in a private work directory → the copy's checks (integrity, ledger verification, its head
equal to the one read with the copy) → the copy and ``dpg.toml`` streamed into the encrypted
container as ``NAME.partial``, fsynced → decrypted again with the data key still in memory
and compared by digest → linked to its final name. So a file under a backup's final name was
checked before it was encrypted and read back after.

"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dpgnode import __version__
from dpgnode.adapters.backup import postgres
from dpgnode.adapters.backup.archive import CONFIG_MEMBER, DATABASE_MEMBERS, write_members
from dpgnode.adapters.backup.container import (
    DecryptingReader,
    EncryptingWriter,
    Header,
    read_header,
)
from dpgnode.adapters.backup.directory import (
    PARTIAL_SUFFIX,
    ensure_directory,
    exclusive,
    publish,
    work_directory,
)
from dpgnode.adapters.backup.keys import KeySealer, new_data_key
from dpgnode.adapters.backup.sqlite import snapshot_sqlite
from dpgnode.adapters.system import SystemClock
from dpgnode.domain.backup import BackupManifest, DatabaseKind, backup_file_name
from dpgnode.errors import ConfigError, IntegrityError, UnavailableError
from dpgnode.ports.clock import Clock
from dpgnode.settings import CONFIG_FILE, Settings

from .copies import (
    SQLITE_FILE,
    CopyCheck,
    Expected,
    Progress,
    SilentProgress,
    backup_directory,
    check_copy,
    database_kind,
    sqlite_path,
)

_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class CreatedBackup:
    path: Path
    manifest: BackupManifest
    size: int
    check: CopyCheck | None


# -- create -----------------------------------------------------------------------------------


def create_backup(
    settings: Settings,
    sealer: KeySealer,
    *,
    clock: Clock | None = None,
    out: Path | None = None,
    config_file: Path | None = None,
    verify: bool | None = None,
    progress: Progress | None = None,
    locked: bool = False,
) -> CreatedBackup:
    """Back up the configured database (and ``dpg.toml``) into one encrypted file.

    Raises:
        IntegrityError: the copy fails its checks (the live database needs attention), or
            the file read back differs from what was written (the storage is failing).
        ConfigError, UnavailableError: nothing to back up, ``pg_dump`` missing or failing.
    """
    directory = backup_directory(settings)
    in_directory = out is None or out.resolve().parent == directory.resolve()
    if locked or not in_directory:
        return _create(settings, sealer, clock, out, config_file, verify, progress)
    # The scheduler clears what killed runs left in the directory while it holds this lock:
    # without it, it could delete this run's work.
    with exclusive(directory) as mine:
        if not mine:
            raise UnavailableError(f"another backup is being written in {directory}: "
                                   "try again when it is done", retry_after=60)
        return _create(settings, sealer, clock, out, config_file, verify, progress)


def _create(
    settings: Settings,
    sealer: KeySealer,
    clock: Clock | None,
    out: Path | None,
    config_file: Path | None,
    verify: bool | None,
    progress: Progress | None,
) -> CreatedBackup:
    report = progress or SilentProgress()
    created_at = (clock or SystemClock()).now()
    final = out.resolve() if out is not None else (
        ensure_directory(backup_directory(settings)) / backup_file_name(created_at)
    )
    if final.exists():
        raise ConfigError(f"{final} already exists: refusing to overwrite it")
    kind = database_kind(settings)
    work = work_directory(final.parent)
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    try:
        copy, expected = _copy_database(settings, kind, work, report)
        check = None
        if settings.backup.verify if verify is None else verify:
            report.stage("checking the copy", None)
            check = check_copy(kind, copy, expected)
            if not check.ok:
                raise IntegrityError(
                    "the database copy fails its checks, no backup written: "
                    + "; ".join(check.problems[:5])
                )
        manifest = BackupManifest(
            __version__, expected[2], expected[0], expected[1], created_at, kind, sealer.source
        )
        members = [(DATABASE_MEMBERS[kind], copy)]
        config = config_file or settings.data_dir / CONFIG_FILE
        if config.is_file():
            members.append((CONFIG_MEMBER, config))
        total = sum(path.stat().st_size for _, path in members)
        report.stage("encrypting", total)
        data_key, digest = _write_container(partial, sealer, manifest, members, report)
        report.stage("reading back", partial.stat().st_size)
        _read_back(partial, data_key, digest, report)
        publish(partial, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return CreatedBackup(final, manifest, final.stat().st_size, check)


def _copy_database(
    settings: Settings, kind: DatabaseKind, work: Path, report: Progress
) -> tuple[Path, Expected]:
    """The copy's path and ``(ledger seq, ledger head, schema revision)`` read with it."""
    if kind is DatabaseKind.POSTGRESQL:
        report.stage("pg_dump", None)
        target = work / "dpg.pgdump"
        info = postgres.dump_postgres(settings.database_url(), target)
    else:
        target = work / SQLITE_FILE
        source = sqlite_path(settings)
        report.stage("copying the database", source.stat().st_size if source.is_file() else None)
        done = [0]
        page = _page_size(source)

        def step(pages: int, _total: int) -> None:
            report.advance((pages - done[0]) * page)
            done[0] = pages

        info = snapshot_sqlite(source, target, step)
    return target, (info.ledger_seq, info.ledger_head, info.schema_revision)


def _page_size(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            header = handle.read(18)
    except OSError:
        return 4096
    size = int.from_bytes(header[16:18], "big") if len(header) == 18 else 4096
    return 65536 if size == 1 else size or 4096


def _write_container(
    path: Path,
    sealer: KeySealer,
    manifest: BackupManifest,
    members: list[tuple[str, Path]],
    report: Progress,
) -> tuple[bytes, bytes]:
    data_key = new_data_key()
    header = Header(sealer.seal(data_key), manifest.as_dict())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb", buffering=_READ) as out:
        writer = EncryptingWriter(out, data_key, header)
        write_members(writer, members, report.advance)
        writer.close()
        out.flush()
        os.fsync(out.fileno())
    return data_key, writer.plaintext_digest


def _read_back(path: Path, data_key: bytes, digest: bytes, report: Progress) -> None:
    hashed = hashlib.sha256()
    with path.open("rb", buffering=_READ) as source:
        header, header_digest = read_header(source)
        reader = DecryptingReader(source, data_key, header, header_digest)
        while chunk := reader.read(_READ):
            hashed.update(chunk)
            report.advance(len(chunk) + 20)  # ~ the chunk's framing, so the bar ends full
    if not reader.finished or hashed.digest() != digest:
        raise IntegrityError(f"{path} reads back different from what was written: check the disk")
