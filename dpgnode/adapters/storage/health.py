"""Health probes of the database for ``dpg doctor``: reachable, intact, its clock.

Each probe translates driver errors into ``UnavailableError`` here, so the doctor sees only
the node's error categories. "Intact" means what each engine can say cheaply: SQLite's
``PRAGMA quick_check`` (``integrity_check`` and the foreign keys with ``full``), and for
PostgreSQL whether data checksums are on and how many checksum failures the server counted.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from dpgnode.errors import UnavailableError


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", exc)).strip().splitlines() or [type(exc).__name__])[0][:300]


def ping(engine: Engine) -> None:
    """One round trip (``UnavailableError`` naming the driver's reason)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise UnavailableError(f"cannot reach the database: {_first_line(exc)}") from exc


def integrity(engine: Engine, *, full: bool = False) -> tuple[list[str], str]:
    """Problems found and a line saying what was checked."""
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                pragma = "integrity_check" if full else "quick_check"
                lines = [str(r[0]) for r in conn.exec_driver_sql(f"PRAGMA {pragma}")]
                problems = [] if lines == ["ok"] else [f"{pragma}: {line}" for line in lines]
                if full and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    problems.append("foreign_key_check: dangling references")
                checked = f"{pragma}{' and foreign_key_check' if full else ''}"
                return problems, checked
            checksums = str(conn.execute(text("SHOW data_checksums")).scalar())
            failures = conn.execute(text(
                "SELECT coalesce(checksum_failures, 0) FROM pg_stat_database "
                "WHERE datname = current_database()"
            )).scalar()
    except (OperationalError, DBAPIError) as exc:
        raise UnavailableError(f"cannot check the database: {_first_line(exc)}") from exc
    problems = [f"{failures} page checksum failures"] if failures else []
    return problems, f"data checksums {checksums}"


def server_clock_offset(engine: Engine) -> tuple[float, float] | None:
    """``(server minus local, uncertainty)`` in seconds; ``None`` when there is no server."""
    if engine.dialect.name != "postgresql":
        return None
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # connect first: the round trip then is one query
            before = time.time()
            server = float(conn.execute(
                text("SELECT extract(epoch FROM clock_timestamp())")
            ).scalar_one())
            after = time.time()
    except (OperationalError, DBAPIError) as exc:
        raise UnavailableError(f"cannot read the database clock: {_first_line(exc)}") from exc
    return server - (before + after) / 2, (after - before) / 2
