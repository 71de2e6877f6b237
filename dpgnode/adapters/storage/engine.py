"""Engines with the durability settings the ledger depends on.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` so that a
commit is on disk when it is acknowledged, foreign keys on, and a busy timeout so readers
and the writer wait for each other instead of failing. Python's sqlite3 module would open
transactions behind our back; we switch that off and issue ``BEGIN`` ourselves: ``BEGIN
IMMEDIATE`` on the writer engine (take the write lock up front, no upgrade deadlocks),
plain ``BEGIN`` for readers.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from dpgnode.errors import ConfigError

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


def make_engine(url: str, *, writer: bool = False) -> Engine:
    """An engine for ``url``; ``writer=True`` takes SQLite's write lock at ``BEGIN``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigError("the ledger needs a SQLite file, not an in-memory database")
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _install_sqlite_hooks(engine, "BEGIN IMMEDIATE" if writer else "BEGIN")
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ConfigError(
                "PostgreSQL URLs must use the psycopg driver (postgresql+psycopg://)"
            )
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    raise ConfigError(
        f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
    )


def _install_sqlite_hooks(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)
