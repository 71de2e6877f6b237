"""A consistent copy of the live SQLite database, taken with SQLite's online backup API.

The copy runs in steps (so progress can be shown) inside one read transaction held open on
the source connection. In WAL mode that transaction is a snapshot: the node's writer keeps
committing to the WAL meanwhile, nothing is blocked, and the copy is the database exactly as
of the moment the transaction began. (Without the held transaction SQLite would restart the
copy whenever another connection writes, and a busy node would never finish.) The ledger
head and schema revision are read in the same transaction, so the manifest describes the copy.
A long copy keeps the WAL from being checkpointed past its snapshot; it shrinks afterwards.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from dpgnode.errors import ConfigError, UnavailableError

STEP_PAGES = 4096
"""Pages copied per step (16 MiB at the default 4 KiB page size)."""
BUSY_TIMEOUT_MS = 30_000

Progress = Callable[[int, int], None]
"""``(pages_done, pages_total)`` after each step."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What the copy holds: the ledger head and schema revision of its snapshot."""

    schema_revision: str | None
    ledger_seq: int
    ledger_head: str


def _read_state(conn: sqlite3.Connection) -> SnapshotInfo:
    try:
        seq, head = conn.execute("SELECT seq, hash FROM ledger_head WHERE id = 1").fetchone()
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except (sqlite3.Error, TypeError) as exc:
        raise ConfigError(
            "the database has no ledger yet (run `dpg init` or `dpg db upgrade`)"
        ) from exc
    return SnapshotInfo(None if revision is None else str(revision[0]), int(seq), str(head))


def snapshot_sqlite(source: Path, target: Path, progress: Progress | None = None) -> SnapshotInfo:
    """Copy the database at ``source`` to the new file ``target`` (mode 0600).

    Raises:
        ConfigError: ``source`` is missing or is not a node database.
        UnavailableError: the database stayed locked past the busy timeout.
    """
    if not source.is_file():
        raise ConfigError(f"no database at {source}: nothing to back up")
    target.touch(mode=0o600, exist_ok=False)
    src = sqlite3.connect(source, isolation_level=None, check_same_thread=False)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        src.execute("BEGIN")
        info = _read_state(src)  # the first read fixes the snapshot the copy is taken from

        def report(_status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)

        src.backup(dst, pages=STEP_PAGES, progress=report)
        src.execute("COMMIT")
        # The copy carries the source's WAL flag; make it one self-contained file.
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise UnavailableError(f"the database stayed locked: {exc}") from exc
        raise
    finally:
        dst.close()
        src.close()
    return info


def integrity_problems(path: Path, *, quick: bool = False) -> list[str]:
    """``PRAGMA integrity_check`` (or ``quick_check``) and ``foreign_key_check`` findings."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        pragma = "quick_check" if quick else "integrity_check"
        lines = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}")]
        problems = [] if lines == ["ok"] else [f"{pragma}: {line}" for line in lines]
        dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
        if dangling:
            problems.append(f"foreign_key_check: {len(dangling)} dangling references")
        return problems
    except sqlite3.DatabaseError as exc:
        return [f"not a readable SQLite database: {exc}"]
    finally:
        conn.close()


def readonly_engine(path: Path) -> Engine:
    """A read-only SQLAlchemy engine on a database copy (checks must not change it)."""
    return create_engine(f"sqlite+pysqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)
