"""Fixtures for CLI tests: Typer's CliRunner against real data directories (SQLite).

Every test runs with no ``DPG_*`` variable from the developer's shell and its own data
directory under ``tmp_path`` (passed as ``DPG_DATA_DIR``, like an operator would).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from dpgnode.cli.main import app
from dpgnode.cli.state import CliState

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DPG_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def dpg(data_dir: Path) -> Invoke:
    """Run ``dpg ARGS...`` in-process; ``env`` adds variables, ``obj`` replaces the state."""
    runner = CliRunner()

    def invoke(
        *args: str,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        obj: CliState | None = None,
    ) -> Result:
        environment = {"DPG_DATA_DIR": str(data_dir), **(env or {})}
        extra: dict[str, Any] = {} if obj is None else {"obj": obj}
        return runner.invoke(app, list(args), env=environment, input=input, **extra)

    return invoke


@pytest.fixture
def initialised(dpg: Invoke) -> Invoke:
    result = dpg("init")
    assert result.exit_code == 0, result.output
    return dpg


@pytest.fixture
def store_id(initialised: Invoke) -> str:
    result = initialised("store", "create", "--name", "Shop", "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])

