"""Dashboard fixtures: a seeded node served over real HTTP, and an app pointed at it.

The seed (``tests/support/dashboard.py``) is built once per worker and copied for each
test, so a test that approves or halts something changes only its own copy. The app shows
the node under a fixed label instead of its random port, so snapshots do not depend on it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from textual.pilot import Pilot

from dpgnode.client import AsyncDpgClient
from dpgnode.node import Node
from dpgnode.tui.app import DARK, DashboardApp
from dpgnode.tui.connection import Connection
from dpgnode.tui.screens.base import AreaScreen
from dpgnode.tui.screens.exchange import ExchangeScreen
from tests.support.dashboard import Seed, open_node, seed
from tests.support.served_node import served_node

LABEL = "http://node.test:23000"
WAIT = 30.0  # bounds waits for the app to settle; nothing asserts on time
STEP = 0.05


@dataclass
class Dash:
    node: Node
    url: str
    seed: Seed

    def app(self, *, operator: str | None = "bob", theme: str = DARK,
            start: str = "overview") -> DashboardApp:
        token = self.seed.tokens[operator] if operator else None
        client = AsyncDpgClient(self.url, self.seed.admin_key)
        return DashboardApp(Connection(client, LABEL, token, poll_seconds=60.0), theme=theme,
                            start=start)


@pytest.fixture(scope="session")
def dashboard_seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed(tmp_path_factory.mktemp("dashboard-seed"))


@pytest.fixture
def dash(dashboard_seed: Seed, tmp_path: Path) -> Iterator[Dash]:
    data_dir = tmp_path / "node"
    shutil.copytree(dashboard_seed.data_dir, data_dir)
    node = open_node(data_dir, next_id=dashboard_seed.next_id)
    try:
        with served_node(node) as served:
            yield Dash(node, served.url, dashboard_seed)
    finally:
        node.close()


S = TypeVar("S", bound=AreaScreen)


async def settle(pilot: Pilot[None], screen: type[S]) -> S:
    """Wait until ``screen`` is shown and has loaded (the exchange: and its feed is live)."""
    for _ in range(int(WAIT / STEP)):
        current = pilot.app.screen
        live = not isinstance(current, ExchangeScreen) or current.feed_state == "feed: live"
        if isinstance(current, screen) and current.loaded and not current.busy and live:
            await pilot.pause()
            return current
        await pilot.pause(STEP)
    raise AssertionError(f"{screen.__name__} did not load: the app shows {pilot.app.screen!r}")
