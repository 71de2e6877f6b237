"""R6 (push part): migrations build the schema the code expects, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage import migrate, tables
from dpgnode.adapters.storage.engine import make_engine
from dpgnode.domain.ledger import GENESIS_HASH
from dpgnode.errors import ConfigError
from dpgnode.node import Node
from tests import factories as f
from tests.conftest import open_node

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_engine(database_url: str) -> Iterator[Engine]:
    """A writer engine on an empty database (SQLite file or fresh PostgreSQL database)."""
    engine = make_engine(database_url, writer=True)
    yield engine
    engine.dispose()


class TestUpgrade:
    def test_check_reports_no_drift_when_an_empty_database_is_upgraded_to_head(
        self, empty_engine: Engine
    ) -> None:
        assert migrate.current_revision(empty_engine) is None
        migrate.upgrade(empty_engine)
        result = migrate.check(empty_engine)
        assert result.ok, result.problems
        assert result.current == result.head == migrate.head_revision(empty_engine)

    def test_every_table_of_the_code_exists_when_upgraded(self, empty_engine: Engine) -> None:
        migrate.upgrade(empty_engine)
        present = set(inspect(empty_engine).get_table_names())
        assert set(tables.metadata.tables) <= present

    def test_ledger_head_starts_at_genesis_when_upgraded(self, empty_engine: Engine) -> None:
        migrate.upgrade(empty_engine)
        with empty_engine.connect() as conn:
            head = conn.execute(select(tables.ledger_head)).mappings().all()
        assert [dict(row) for row in head] == [{"id": 1, "seq": 0, "hash": GENESIS_HASH}]

    def test_second_upgrade_changes_nothing_when_already_at_head(
        self, empty_engine: Engine
    ) -> None:
        migrate.upgrade(empty_engine)
        migrate.upgrade(empty_engine)
        assert migrate.check(empty_engine).ok
        with empty_engine.connect() as conn:
            assert conn.execute(select(tables.ledger_head.c.seq)).scalars().all() == [0]

    def test_check_reports_the_pending_upgrade_when_database_is_empty(
        self, empty_engine: Engine
    ) -> None:
        result = migrate.check(empty_engine)
        assert not result.ok
        assert result.current is None
        assert any("dpg db upgrade" in problem for problem in result.problems)

    def test_check_reports_drift_when_the_schema_was_changed_by_hand(
        self, empty_engine: Engine
    ) -> None:
        migrate.upgrade(empty_engine)
        with empty_engine.begin() as conn:
            conn.execute(text("ALTER TABLE stores ADD COLUMN colour VARCHAR(10)"))
        result = migrate.check(empty_engine)
        assert not result.ok
        assert any("drift" in problem and "colour" in problem for problem in result.problems)


class TestBuildNode:
    def test_build_is_refused_when_database_is_not_migrated(
        self, database_url: str, tmp_path: Path, clock: FixedClock
    ) -> None:
        with pytest.raises(ConfigError, match="dpg db upgrade"):
            open_node(database_url, tmp_path, clock, upgrade=False)

    def test_build_works_without_upgrade_when_database_is_current(
        self, make_node: Callable[..., Node]
    ) -> None:
        first: Node = make_node()
        first.ledger.post(f.deposit(f.account(), 5, "dep-1"))
        first.close()
        second: Node = make_node(upgrade=False)
        assert second.queries.entry_by_key("dep-1") is not None
        assert second.verify_ledger().ok
