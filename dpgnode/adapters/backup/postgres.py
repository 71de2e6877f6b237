"""PostgreSQL backups with ``pg_dump`` (custom format) and restores with ``pg_restore``.

The dump is taken from a snapshot exported by a REPEATABLE READ transaction that also reads
the ledger head and schema revision, so the manifest describes exactly the dumped state while
the node keeps writing. The password never appears on a command line (``ps`` shows those):
it reaches the tools as ``PGPASSWORD`` in their environment only.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from dpgnode.errors import ConfigError, UnavailableError, ValidationError

from .sqlite import SnapshotInfo

TOOL_TIMEOUT_S = 6 * 3600
_INSTALL_HINT = "apt-get install postgresql-client (or put the PostgreSQL bin directory on PATH)"
_RESTORE_OPTIONS = ("--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction")


def pg_tool(name: str) -> Path:
    """``pg_dump`` / ``pg_restore``: on PATH, else the newest in ``/usr/lib/postgresql``."""
    found = shutil.which(name)
    if found:
        return Path(found)
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p)],
    )
    if not candidates:
        raise ConfigError(f"{name} is not installed: {_INSTALL_HINT}")
    return Path(candidates[-1])


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without password, and the environment that carries it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError("not a PostgreSQL URL", details={"field": "database.url"})
    env = {**os.environ}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    bare = parsed.set(drivername="postgresql", password=None)
    return bare.render_as_string(hide_password=False), env


@contextmanager
def _connect(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    conninfo, env = _libpq(url)
    try:
        conn = psycopg.connect(conninfo, password=env.get("PGPASSWORD"), connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise UnavailableError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from exc
    try:
        yield conn
    finally:
        conn.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell; the password is in env only
            argv, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise UnavailableError(f"{what} did not finish in {TOOL_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[-1][:500]
        raise UnavailableError(f"{what} failed (exit {done.returncode}): {detail}")
    return done.stdout


def dump_postgres(url: str, target: Path) -> SnapshotInfo:
    """``pg_dump --format=custom`` of the database at ``url`` into ``target`` (mode 0600)."""
    tool = pg_tool("pg_dump")
    conninfo, env = _libpq(url)
    target.touch(mode=0o600, exist_ok=False)
    with _connect(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        try:
            head = conn.execute("SELECT seq, hash FROM ledger_head WHERE id = 1").fetchone()
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable as exc:
            raise ConfigError("the database has no ledger yet (run `dpg db upgrade`)") from exc
        if row is None or head is None:
            raise ConfigError("the database has no ledger head (run `dpg db upgrade`)")
        # The exported snapshot lives as long as this transaction: pg_dump runs inside it.
        _run(
            [str(tool), "--format=custom", f"--snapshot={row[0]}", "--file", str(target),
             "--dbname", conninfo],
            env, "pg_dump",
        )
        conn.execute("COMMIT")
    return SnapshotInfo(
        None if revision is None else str(revision[0]), int(str(head[0])), str(head[1])
    )


def list_dump(dump: Path) -> list[str]:
    """The dump's table of contents (``pg_restore --list``); a damaged dump raises."""
    out = _run([str(pg_tool("pg_restore")), "--list", str(dump)], {**os.environ},
               "pg_restore --list")
    entries = [line for line in out.splitlines() if line and not line.startswith(";")]
    if not entries:
        raise ValidationError("the PostgreSQL dump is empty", field="backup")
    return entries


def require_empty(url: str) -> None:
    """Refuse a database that already holds tables (a restore never merges)."""
    with _connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    if row is None or int(str(row[0])) != 0:
        raise ValidationError(
            f"the database {make_url(url).database} is not empty: restore into a new, empty "
            "database (createdb NAME)", field="database_url",
        )


def restore_postgres(dump: Path, url: str) -> None:
    """Load ``dump`` into the empty database at ``url``, in one transaction."""
    require_empty(url)
    conninfo, env = _libpq(url)
    _run([str(pg_tool("pg_restore")), *_RESTORE_OPTIONS, "--dbname", conninfo, str(dump)],
         env, "pg_restore")

