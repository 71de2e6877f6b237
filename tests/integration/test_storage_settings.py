"""R5 durability settings on every SQLite connection; lossless big integers on both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError

from dpgnode.adapters.storage.engine import make_engine
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.adapters.storage.types import BigUnits
from dpgnode.domain.money import MAX_UNITS
from dpgnode.errors import ConfigError
from dpgnode.node import Node
from tests import factories as f

pytestmark = pytest.mark.integration

# What the ledger relies on: WAL, synchronous=FULL (2), foreign keys on, a busy timeout.
EXPECTED = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
PRAGMAS = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
BIG_VALUES = [0, 1, -1, 2**63 - 1, 2**63, -(2**63) - 1, 2**256 - 1, MAX_UNITS, -MAX_UNITS]


def _pragmas(run: Any) -> dict[str, Any]:
    return {name: run(text(f"PRAGMA {name}")).scalar() for name in PRAGMAS}


def _assert_durable(found: dict[str, Any]) -> None:
    assert {k: found[k] for k in EXPECTED} == EXPECTED
    assert found["busy_timeout"] > 0


class TestSqliteDurability:
    def test_every_reader_connection_is_durable_when_several_are_open_at_once(
        self, node: Node
    ) -> None:
        with ExitStack() as stack:
            connections = [stack.enter_context(node.engine.connect()) for _ in range(3)]
            for conn in connections:
                _assert_durable(_pragmas(conn.execute))

    def test_writer_thread_connection_is_durable_when_a_command_runs(self, node: Node) -> None:
        def command(tx: SqlTx) -> dict[str, Any]:
            return _pragmas(tx.execute)

        _assert_durable(node.writer.run_sql(command))

    def test_new_writer_engine_connection_is_durable_when_opened(self, node: Node) -> None:
        with node.writer_engine.connect() as conn:
            _assert_durable(_pragmas(conn.execute))

    def test_database_file_stays_in_wal_mode_when_entries_are_committed(
        self, node: Node, sqlite_url: str
    ) -> None:
        node.ledger.post(f.deposit(f.account(), 5))
        path = sqlite_url.removeprefix("sqlite+pysqlite:///")
        assert Path(path + "-wal").exists()
        raw = sqlite3.connect(path)
        try:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            raw.close()

    @pytest.mark.parametrize("url", ["sqlite+pysqlite://", "sqlite+pysqlite:///:memory:"])
    def test_engine_is_refused_when_database_is_in_memory(self, url: str) -> None:
        with pytest.raises(ConfigError, match="SQLite file"):
            make_engine(url)

    @pytest.mark.parametrize(
        "url", ["mysql+pymysql://u@h/db", "postgresql+psycopg2://u@h/db", "oracle://u@h/db"]
    )
    def test_engine_is_refused_when_backend_or_driver_is_unsupported(self, url: str) -> None:
        with pytest.raises(ConfigError):
            make_engine(url)


@pytest.fixture
def big_table(any_node: Node) -> Iterator[tuple[Engine, Table]]:
    table = Table(
        "big_units_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("units", BigUnits, nullable=True),
    )
    engine = any_node.writer_engine
    with engine.begin() as conn:
        table.create(conn)
    yield engine, table
    with engine.begin() as conn:
        table.drop(conn)


class TestBigUnits:
    def test_values_round_trip_exactly_when_stored_and_read(
        self, big_table: tuple[Engine, Table]
    ) -> None:
        engine, table = big_table
        values: list[int | None] = [*BIG_VALUES, None]
        with engine.begin() as conn:
            conn.execute(insert(table), [{"id": i, "units": v} for i, v in enumerate(values)])
        with engine.connect() as conn:
            stored = list(conn.execute(select(table.c.units).order_by(table.c.id)).scalars())
        assert stored == values
        assert all(type(v) is int for v in stored[:-1])

    @pytest.mark.parametrize("value", [1.0, True, "1"])
    def test_value_is_refused_when_it_is_not_an_int(
        self, big_table: tuple[Engine, Table], value: object
    ) -> None:
        engine, table = big_table
        with pytest.raises(StatementError, match="take int"), engine.begin() as conn:
            conn.execute(insert(table).values(id=1, units=value))

    def test_column_is_exact_text_or_numeric_when_created(
        self, big_table: tuple[Engine, Table]
    ) -> None:
        engine, table = big_table
        with engine.begin() as conn:
            conn.execute(insert(table).values(id=1, units=MAX_UNITS))
            if engine.dialect.name == "sqlite":
                kind = conn.execute(text("SELECT typeof(units) FROM big_units_probe")).scalar()
                assert kind == "text"
            else:
                kind = conn.execute(
                    text("SELECT pg_typeof(units)::text FROM big_units_probe")
                ).scalar()
                assert kind == "numeric"

    def test_ledger_keeps_the_uint256_bound_when_an_entry_moves_it(self, any_node: Node) -> None:
        account = f.account("whale", "ETH")
        any_node.ledger.post(f.deposit(account, MAX_UNITS, "whale-1"))
        stored = any_node.queries.account(account)
        world = any_node.queries.account(f.world("ETH"))
        assert stored is not None
        assert world is not None
        assert (stored.balance, world.balance) == (MAX_UNITS, -MAX_UNITS)
        entry = any_node.queries.entry_by_key("whale-1")
        assert entry is not None
        assert {p.units for p in entry.postings} == {MAX_UNITS, -MAX_UNITS}
        assert any_node.verify_ledger().ok
