"""``dpg node start``: settings reach the server; a stale schema is refused, never migrated.

The server itself is replaced by a launcher that records what it was asked to serve (passed
through ``CliState``, the CLI's own seam), so these tests need no network.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from dpgnode.cli.state import CliState, ServeSpec

Invoke = Callable[..., Result]


class RecordingLauncher:
    def __init__(self) -> None:
        self.specs: list[ServeSpec] = []

    def __call__(self, spec: ServeSpec) -> None:
        self.specs.append(spec)


@pytest.fixture
def launcher() -> RecordingLauncher:
    return RecordingLauncher()


class TestStart:
    def test_start_serves_configured_address_when_no_flags_given(
        self, initialised: Invoke, launcher: RecordingLauncher, data_dir: Path
    ) -> None:
        result = initialised("node", "start", obj=CliState(launcher=launcher))

        assert result.exit_code == 0, result.output
        (spec,) = launcher.specs
        assert (spec.host, spec.port, spec.workers) == ("127.0.0.1", 23000, 1)
        assert spec.data_dir == data_dir.resolve()
        assert spec.config_file is None

    def test_start_prefers_flags_over_environment_over_file_when_all_set(
        self, dpg: Invoke, launcher: RecordingLauncher
    ) -> None:
        assert dpg("init", "--api-port", "1111", "--api-host", "10.0.0.1").exit_code == 0
        env = {"DPG_API__PORT": "2222", "DPG_API__WORKERS": "3"}

        result = dpg(
            "node", "start", "--port", "3333", env=env, obj=CliState(launcher=launcher)
        )

        assert result.exit_code == 0, result.output
        (spec,) = launcher.specs
        assert (spec.host, spec.port, spec.workers) == ("10.0.0.1", 3333, 3)

    def test_start_exits_3_without_serving_when_schema_is_not_current(
        self, initialised: Invoke, launcher: RecordingLauncher, data_dir: Path
    ) -> None:
        conn = sqlite3.connect(data_dir / "dpg.sqlite3")
        with conn:
            conn.execute("UPDATE alembic_version SET version_num = '0000'")
        conn.close()

        result = initialised("node", "start", obj=CliState(launcher=launcher))

        assert result.exit_code == 3
        assert "run `dpg db upgrade` first" in result.stderr
        assert launcher.specs == []

    def test_start_exits_3_without_serving_when_not_initialised(
        self, dpg: Invoke, launcher: RecordingLauncher
    ) -> None:
        result = dpg("node", "start", obj=CliState(launcher=launcher))

        assert result.exit_code == 3
        assert launcher.specs == []

    @pytest.mark.parametrize(
        "args", [["--port", "0"], ["--port", "65536"], ["--workers", "0"], ["--port", "http"]]
    )
    def test_start_exits_2_when_flags_are_out_of_range(
        self, initialised: Invoke, launcher: RecordingLauncher, args: list[str]
    ) -> None:
        result = initialised("node", "start", *args, obj=CliState(launcher=launcher))

        assert result.exit_code == 2
        assert launcher.specs == []
