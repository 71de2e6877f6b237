"""``dpg doctor`` through the CLI: findings, fixes and the exit status."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from dpgnode.cli.errors import EXIT_FAILED

Invoke = Callable[..., Result]
KEY = {"DPG_BACKUP_PASSPHRASE": "correct horse battery staple"}


def findings(result: Result) -> dict[str, list[dict[str, str]]]:
    by_check: dict[str, list[dict[str, str]]] = {}
    for finding in json.loads(result.stdout)["findings"]:
        by_check.setdefault(finding["check"], []).append(finding)
    return by_check


def statuses(result: Result, check: str) -> list[str]:
    return [f["status"] for f in findings(result)[check]]


def post(dpg: Invoke, key: str) -> None:
    result = dpg("ledger", "post", "--key", key, "--memo", "float",
                 "--posting", "operator:op:BTC:world=-1",
                 "--posting", "operator:op:BTC:inventory=1")
    assert result.exit_code == 0, result.output


class TestDoctor:
    def test_reports_every_check_and_fails_on_missing_backups_when_node_is_fresh(
        self, initialised: Invoke
    ) -> None:
        result = initialised("doctor", "--json")
        assert result.exit_code == EXIT_FAILED
        report = findings(result)
        assert json.loads(result.stdout)["status"] == "fail"
        assert set(report) >= {"config", "database", "integrity", "migrations", "ledger",
                               "chains", "chain sync", "hsm", "clock", "disk", "backups",
                               "webhooks"}
        for check in ("config", "database", "integrity", "migrations", "ledger", "disk"):
            assert statuses(result, check) == ["ok"], report[check]
        backups = report["backups"][0]
        assert backups["status"] == "fail"
        assert "DPG_BACKUP_PASSPHRASE" in backups["summary"]
        assert backups["fix"]
        # SQLite has no server clock and no time_url is set: said, not guessed.
        assert statuses(result, "clock") == ["skip"]
        assert "no time reference" in report["clock"][0]["summary"]

    def test_passes_when_a_fresh_backup_exists_and_a_key_is_configured(
        self, initialised: Invoke
    ) -> None:
        post(initialised, "a")
        assert initialised("backup", "create", env=KEY).exit_code == 0
        result = initialised("doctor", "--json", env=KEY)
        assert statuses(result, "backups") == ["ok"]
        assert "fail" not in {f["status"] for fs in findings(result).values() for f in fs}
        assert result.exit_code == 0, result.output

    def test_human_output_lists_fixes_when_something_fails(self, initialised: Invoke) -> None:
        result = initialised("doctor")
        assert result.exit_code == EXIT_FAILED
        assert "fix  backups:" in result.stdout
        assert "doctor found problems" in result.output

    def test_reports_a_broken_configuration_without_crashing(
        self, initialised: Invoke, data_dir: Path
    ) -> None:
        (data_dir / "dpg.toml").write_text("[api]\nport = 'not a port'\n")
        result = initialised("doctor", "--json")
        assert result.exit_code == EXIT_FAILED
        assert list(findings(result)) == ["config"]
        assert "api.port" in findings(result)["config"][0]["summary"]

    def test_says_to_run_init_when_there_is_no_database(self, dpg: Invoke) -> None:
        result = dpg("doctor", "--json")
        assert result.exit_code == EXIT_FAILED
        database = findings(result)["database"][0]
        assert database["status"] == "fail"
        assert "dpg init" in database["fix"]

    def test_finds_an_edited_journal_entry_when_checking_the_ledger(
        self, initialised: Invoke, data_dir: Path
    ) -> None:
        for index in range(5):
            post(initialised, f"k{index}")
        with sqlite3.connect(data_dir / "dpg.sqlite3") as conn:
            conn.execute("UPDATE journal SET memo = 'edited' WHERE seq = 3")
        quick = initialised("doctor", "--json")
        full = initialised("doctor", "--full", "--json")
        for result in (quick, full):
            ledger = findings(result)["ledger"][0]
            assert ledger["status"] == "fail"
            assert "content does not match its hash" in ledger["summary"]

    def test_full_run_verifies_every_entry_when_asked(self, initialised: Invoke) -> None:
        post(initialised, "only")
        result = initialised("doctor", "--full", "--json")
        assert findings(result)["ledger"][0]["summary"].startswith("all 1 entries")
        assert findings(result)["integrity"][0]["summary"].startswith("integrity_check")
