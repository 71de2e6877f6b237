"""Shared by backup and restore: progress reporting, paths, and the checks of a copy.

A copy is checked the same way wherever it came from (fresh from the live database before
it is encrypted, or decrypted from a backup): integrity, foreign keys, the ledger verified
from its journal, and its ledger head equal to the one recorded with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from dpgnode.adapters.backup import postgres
from dpgnode.adapters.backup.sqlite import integrity_problems, readonly_engine
from dpgnode.adapters.storage import migrate
from dpgnode.adapters.storage.engine import make_engine
from dpgnode.adapters.storage.queries import SqlQueries
from dpgnode.domain.backup import DatabaseKind
from dpgnode.services.verification import VerifyReport, verify_ledger
from dpgnode.settings import Settings

SQLITE_FILE = "dpg.sqlite3"
"""The embedded database's file name in a data directory."""

Expected = tuple[int, str, str | None]
"""``(ledger seq, ledger head hash, schema revision)`` a copy must end at."""


class Progress(Protocol):
    """Where long work reports itself (the CLI draws rich progress bars)."""

    def stage(self, description: str, total: int | None = None) -> None:
        """A new step begins; ``total`` in bytes when known."""
        ...

    def advance(self, amount: int) -> None:
        """``amount`` more bytes of the current step are done."""
        ...


class SilentProgress:
    """Reports nothing (the scheduler, tests)."""

    def stage(self, description: str, total: int | None = None) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None


@dataclass(frozen=True, slots=True)
class CopyCheck:
    """What the checks of a database copy found; ``ok`` only without problems."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ledger: VerifyReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def backup_directory(settings: Settings) -> Path:
    """``backup.directory``, else DATA_DIR/backups."""
    return settings.backup.directory or settings.data_dir / "backups"


def database_kind(settings: Settings) -> DatabaseKind:
    url = settings.database_url()
    return DatabaseKind.SQLITE if url.startswith("sqlite") else DatabaseKind.POSTGRESQL


def sqlite_path(settings: Settings) -> Path:
    return Path(str(make_url(settings.database_url()).database))


def check_copy(
    kind: DatabaseKind,
    copy: Path,
    expected: Expected,
    scratch_database_url: str | None = None,
) -> CopyCheck:
    """Integrity and ledger checks of a database copy that must end at ``expected``."""
    if kind is DatabaseKind.POSTGRESQL:
        entries = postgres.list_dump(copy)
        notes = [f"pg_restore --list: {len(entries)} entries"]
        if scratch_database_url is None:
            notes.append("ledger not verified: pass a scratch database to restore the dump into")
            return CopyCheck(notes=notes)
        postgres.restore_postgres(copy, scratch_database_url)
        engine = make_engine(scratch_database_url)
        try:
            return _check_ledger(engine, expected, notes)
        finally:
            engine.dispose()
    problems = integrity_problems(copy)
    if problems:
        return CopyCheck(problems=problems)
    engine = readonly_engine(copy)
    try:
        return _check_ledger(engine, expected, ["integrity_check: ok"])
    finally:
        engine.dispose()


def _check_ledger(
    engine: Engine, expected: Expected, notes: list[str]
) -> CopyCheck:
    seq, head, revision = expected
    current, newest = migrate.current_revision(engine), migrate.head_revision(engine)
    if current != revision:
        return CopyCheck(problems=[f"schema revision {current}, the manifest says {revision}"])
    if current != newest:
        notes.append(
            f"ledger not verified: schema revision {current}, this version reads {newest}; "
            "restore it, run `dpg db upgrade`, then `dpg ledger verify`"
        )
        return CopyCheck(notes=notes)
    with SqlQueries(engine).snapshot() as snapshot:
        report = verify_ledger(snapshot)
        found = snapshot.head()
    problems = [f"ledger: {problem}" for problem in report.problems]
    if found != (seq, head):
        problems.append(f"the copy ends at ledger entry {found[0]}, the manifest at {seq}")
    return CopyCheck(problems=problems, notes=notes, ledger=report)
