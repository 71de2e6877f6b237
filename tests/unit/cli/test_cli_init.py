"""``dpg init``: data directory, commented dpg.toml, migrated database; idempotent."""

from __future__ import annotations

import json
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel
from typer.testing import Result

from dpgnode.settings import Settings

Invoke = Callable[..., Result]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestInit:
    def test_init_creates_private_directory_config_and_database_when_directory_is_new(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        result = dpg("init")

        assert result.exit_code == 0, result.output
        assert _mode(data_dir) == 0o700
        assert _mode(data_dir / "dpg.toml") == 0o600
        assert (data_dir / "dpg.sqlite3").is_file()
        assert "Created the database at revision" in result.stdout
        # Every settings section is in the file (documented, its defaults commented out).
        sections = {
            name for name, field in Settings.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        }
        assert tomllib.loads((data_dir / "dpg.toml").read_text()) == {
            name: {} for name in sections
        }

    def test_init_says_already_initialised_when_run_twice(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        assert dpg("init").exit_code == 0
        config_before = (data_dir / "dpg.toml").read_text()

        result = dpg("init")

        assert result.exit_code == 0, result.output
        assert "already initialised" in result.stdout
        assert (data_dir / "dpg.toml").read_text() == config_before

    def test_init_writes_flags_to_config_when_given(self, dpg: Invoke, data_dir: Path) -> None:
        result = dpg("init", "--api-host", "0.0.0.0", "--api-port", "8080")

        assert result.exit_code == 0, result.output
        written = tomllib.loads((data_dir / "dpg.toml").read_text())
        assert written["api"] == {"host": "0.0.0.0", "port": 8080}
        shown = json.loads(dpg("config", "show", "--json").stdout)
        assert shown["api"]["port"] == 8080

    def test_init_keeps_config_and_warns_when_flags_given_without_force(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        assert dpg("init").exit_code == 0

        kept = dpg("init", "--api-port", "8080")
        forced = dpg("init", "--api-port", "8081", "--force")

        assert kept.exit_code == 0
        assert "--api-port not applied" in kept.stderr
        assert forced.exit_code == 0, forced.output
        assert tomllib.loads((data_dir / "dpg.toml").read_text())["api"] == {"port": 8081}

    def test_init_uses_its_own_data_dir_option_when_given(
        self, dpg: Invoke, tmp_path: Path
    ) -> None:
        other = tmp_path / "elsewhere"

        result = dpg("init", "--data-dir", str(other))

        assert result.exit_code == 0, result.output
        assert (other / "dpg.sqlite3").is_file()

    def test_init_refuses_to_write_password_when_database_url_has_one(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        url = "postgresql+psycopg://dpg:hunter2@localhost/dpg"

        result = dpg("init", "--database-url", url)

        assert result.exit_code == 2
        assert "DPG_DATABASE__URL" in result.stderr
        assert not data_dir.exists()

    def test_init_exits_2_when_database_url_has_unknown_scheme(self, dpg: Invoke) -> None:
        result = dpg("init", "--database-url", "mysql://db/dpg")

        assert result.exit_code == 2
        assert "--database-url" in result.stderr

    def test_init_exits_3_and_leaves_no_config_when_environment_is_invalid(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        result = dpg("init", env={"DPG_API__PORT": "not-a-port"})

        assert result.exit_code == 3
        assert "api.port" in result.stderr
        assert sorted(p.name for p in data_dir.iterdir()) == []
        assert "Traceback" not in result.output

    def test_init_exits_3_when_existing_config_is_invalid(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        data_dir.mkdir(mode=0o700)
        (data_dir / "dpg.toml").write_text("[api]\nport = 0\n")

        result = dpg("init")

        assert result.exit_code == 3
        assert "api.port" in result.stderr

    def test_init_documents_every_setting_in_config_when_written(
        self, dpg: Invoke, data_dir: Path
    ) -> None:
        assert dpg("init").exit_code == 0
        text = (data_dir / "dpg.toml").read_text()

        for section in ("database", "api", "ledger", "log"):
            model = getattr(Settings(data_dir=data_dir), section)
            assert f"[{section}]" in text
            for name in type(model).model_fields:
                assert f"# {name} = " in text, f"{section}.{name} is not documented"
