"""``dpg db upgrade|current|check``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

Invoke = Callable[..., Result]


def _sql(data_dir: Path, statement: str) -> None:
    with sqlite3.connect(data_dir / "dpg.sqlite3") as conn:
        conn.execute(statement)
    conn.close()


class TestDb:
    def test_upgrade_creates_database_then_reports_up_to_date_when_run_again(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        first = dpg("db", "upgrade")
        second = dpg("db", "upgrade")

        assert first.exit_code == 0, first.output
        assert "migrated the database from empty" in first.stdout
        assert (data_dir / "dpg.sqlite3").is_file()
        assert second.exit_code == 0
        assert "up to date" in second.stdout

    def test_current_reports_head_when_initialised(self, initialised: Invoke) -> None:
        result = initialised("db", "current", "--json")

        assert result.exit_code == 0, result.output
        status = json.loads(result.stdout)
        assert status["upToDate"] is True
        assert status["current"] == status["head"]

    def test_current_exits_3_with_hint_when_not_initialised(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        result = dpg("db", "current")

        assert result.exit_code == 3
        assert "dpg init" in result.stderr
        assert not data_dir.exists()

    def test_check_passes_when_database_is_healthy(self, initialised: Invoke) -> None:
        human = initialised("db", "check")
        as_json = initialised("db", "check", "--json")

        assert human.exit_code == 0, human.output
        assert as_json.exit_code == 0
        assert json.loads(as_json.stdout)["ok"] is True

    def test_check_exits_1_listing_drift_when_schema_was_altered(
        self, initialised: Invoke, data_dir: Path
    ) -> None:
        _sql(data_dir, "DROP INDEX ix_holds_status")

        result = initialised("db", "check", "--json")

        assert result.exit_code == 1
        report = json.loads(result.stdout)
        assert report["ok"] is False
        assert any("ix_holds_status" in problem for problem in report["problems"])

    def test_ledger_command_exits_3_with_upgrade_hint_when_schema_is_behind(
        self, initialised: Invoke, data_dir: Path
    ) -> None:
        _sql(data_dir, "UPDATE alembic_version SET version_num = '0000'")

        result = initialised("ledger", "verify")

        assert result.exit_code == 3
        assert "dpg db upgrade" in result.stderr
