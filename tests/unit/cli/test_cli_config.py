"""``dpg config show|validate``: layered settings, masked secrets, every problem at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

Invoke = Callable[..., Result]

SECRET_URL = "postgresql+psycopg://dpg:hunter2@db.example/dpg"


def _write_config(data_dir: Path, text: str) -> None:
    data_dir.mkdir(mode=0o700, exist_ok=True)
    (data_dir / "dpg.toml").write_text(text)


class TestShow:
    def test_show_prints_defaults_as_json_when_nothing_configured(self, dpg: Invoke) -> None:
        result = dpg("config", "show", "--json")

        assert result.exit_code == 0, result.output
        shown = json.loads(result.stdout)
        assert shown["api"]["port"] == 23000
        assert shown["log"]["level"] == "info"

    def test_show_prefers_environment_when_file_and_environment_set_the_same_field(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        _write_config(data_dir, "[api]\nport = 1111\nhost = \"0.0.0.0\"\n")

        result = dpg("config", "show", "--json", env={"DPG_API__PORT": "2222"})

        assert result.exit_code == 0, result.output
        api = json.loads(result.stdout)["api"]
        assert (api["port"], api["host"]) == (2222, "0.0.0.0")

    def test_show_masks_secrets_when_database_url_has_password(self, dpg: Invoke) -> None:
        env = {"DPG_DATABASE__URL": SECRET_URL}

        table = dpg("config", "show", env=env)
        as_json = dpg("config", "show", "--json", env=env)

        assert table.exit_code == 0, table.output
        assert as_json.exit_code == 0, as_json.output
        assert "hunter2" not in table.output
        assert "hunter2" not in as_json.output
        assert "**********" in table.stdout
        assert json.loads(as_json.stdout)["database"]["url"] == "**********"

    def test_show_describes_each_setting_when_printing_table(self, dpg: Invoke) -> None:
        result = dpg("config", "show")

        assert result.exit_code == 0, result.output
        assert "api.port" in result.stdout
        assert "Port the HTTP API listens on." in result.stdout
        assert "[[assets]]" in result.stdout

    def test_show_reads_config_option_file_when_given(
        self, dpg: Invoke, tmp_path: Path
    ) -> None:
        other = tmp_path / "other.toml"
        other.write_text("[log]\nlevel = \"debug\"\n")

        result = dpg("--config", str(other), "config", "show", "--json")

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["log"]["level"] == "debug"

    def test_show_exits_3_when_config_option_file_is_missing(
        self, dpg: Invoke, tmp_path: Path
    ) -> None:
        result = dpg("--config", str(tmp_path / "absent.toml"), "config", "show")

        assert result.exit_code == 3
        assert "does not exist" in result.stderr


class TestValidate:
    def test_validate_says_valid_when_configuration_is_fine(self, dpg: Invoke) -> None:
        result = dpg("config", "validate")

        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == "configuration is valid"

    def test_validate_reports_every_problem_when_file_and_environment_are_wrong(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        _write_config(data_dir, '[api]\nport = 70000\n[log]\nlevel = "loud"\n')
        env = {"DPG_LOG__FORMAT": "xml"}

        human = dpg("config", "validate", env=env)
        as_json = dpg("config", "validate", "--json", env=env)

        assert human.exit_code == 3
        for field in ("api.port", "log.level", "log.format"):
            assert field in human.stderr
        assert as_json.exit_code == 3
        report = json.loads(as_json.stdout)
        assert report["valid"] is False
        assert [p.split(":")[0] for p in report["problems"]] == [
            "api.port", "log.level", "log.format"
        ]

    def test_validate_reports_semantic_problem_when_fields_are_valid(self, dpg: Invoke) -> None:
        result = dpg("config", "validate", env={"DPG_DATABASE__URL": "mysql://db/dpg"})

        assert result.exit_code == 3
        assert "database.url" in result.stderr

    def test_validate_reports_syntax_error_when_file_is_not_toml(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        _write_config(data_dir, "[api\nport = \n")

        result = dpg("config", "validate", "--json")

        assert result.exit_code == 3
        (problem,) = json.loads(result.stdout)["problems"]
        assert "not valid TOML" in problem
