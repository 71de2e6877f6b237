"""``dpg dashboard``: checks the URL and key before taking the terminal, then runs the app
(here headless, through ``CliState.run_dashboard``) against a real node served over HTTP.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from dpgnode.cli.state import CliState
from dpgnode.tui.app import LIGHT, DashboardApp
from dpgnode.tui.screens.payouts import PayoutsScreen
from tests.support.dashboard import Seed, open_node, seed
from tests.support.served_node import Served, served_node
from tests.unit.cli.conftest import Invoke
from tests.unit.tui.conftest import settle


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed(tmp_path_factory.mktemp("cli-dashboard-seed"))


@pytest.fixture
def served(seeded: Seed, tmp_path: Path) -> Iterator[Served]:
    shutil.copytree(seeded.data_dir, tmp_path / "node")
    node = open_node(tmp_path / "node", next_id=seeded.next_id)
    try:
        with served_node(node) as running:
            yield running
    finally:
        node.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_missing_key_exits_1_naming_both_ways_to_give_one_when_none_is_set(dpg: Invoke) -> None:
    result = dpg("dashboard", "--url", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert "DPG_API_KEY" in result.stderr
    assert "--api-key-file" in result.stderr


def test_unreachable_node_exits_4_when_nothing_listens_at_the_default_address(
    dpg: Invoke,
) -> None:
    port = _free_port()
    result = dpg("dashboard", env={"DPG_API_KEY": "k", "DPG_API__PORT": str(port)})
    assert result.exit_code == 4
    assert f"127.0.0.1:{port}" in result.stderr


def test_refused_key_exits_1_before_the_app_starts_when_the_node_does_not_know_it(
    dpg: Invoke, served: Served
) -> None:
    started: list[Any] = []
    result = dpg("dashboard", "--url", served.url, env={"DPG_API_KEY": "nope"},
                 obj=CliState(run_dashboard=started.append))
    assert result.exit_code == 1
    assert started == []


def test_app_starts_with_the_options_given_when_the_node_accepts_the_key(
    dpg: Invoke, served: Served, seeded: Seed, tmp_path: Path
) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text(seeded.admin_key + "\n")
    token_file = tmp_path / "operator.token"
    token_file.write_text(seeded.tokens["bob"])
    seen: list[tuple[Any, ...]] = []

    def run_headless(app: DashboardApp) -> None:
        async def drive(pilot: Any) -> None:
            screen = await settle(pilot, PayoutsScreen)
            seen.append((app.connection.url, app.connection.operator_token, app.theme,
                         screen.query_one("#payouts", DataTable).row_count))
            app.exit()

        app.run(headless=True, auto_pilot=drive, size=(80, 24))

    result = dpg(
        "dashboard", "--url", served.url, "--api-key-file", str(key_file),
        "--operator-token-file", str(token_file), "--theme", "light", "--screen", "payouts",
        obj=CliState(run_dashboard=run_headless),
    )
    assert result.exit_code == 0, result.output
    assert seen == [(served.url, seeded.tokens["bob"], LIGHT, 2)]


def test_empty_key_file_exits_3_naming_the_file_when_given(dpg: Invoke, tmp_path: Path) -> None:
    key_file = tmp_path / "empty.key"
    key_file.write_text("\n")
    result = dpg("dashboard", "--url", "http://127.0.0.1:1", "--api-key-file", str(key_file))
    assert result.exit_code == 3
    assert "empty.key" in result.stderr
