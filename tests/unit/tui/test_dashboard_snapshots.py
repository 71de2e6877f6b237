"""Snapshots of every screen of the dashboard against the seeded node (SVG, committed).

They show what an admin sees at 80x24 (the smallest terminal the dashboard supports), the
Exchange and the Overview on larger terminals, the light theme, the help and the payout
confirmation. Update after an intended change with ``pytest --snapshot-update
tests/unit/tui/test_dashboard_snapshots.py`` and look at the SVGs before committing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from dpgnode.tui.app import LIGHT
from dpgnode.tui.screens.base import AreaScreen
from dpgnode.tui.screens.dialogs import ConfirmScreen, HelpScreen
from dpgnode.tui.screens.events import EventsScreen
from dpgnode.tui.screens.exchange import ExchangeScreen
from dpgnode.tui.screens.merchant import InvoicesScreen, WebhooksScreen
from dpgnode.tui.screens.overview import OverviewScreen
from dpgnode.tui.screens.payouts import PayoutsScreen
from dpgnode.tui.screens.wallets import WalletsScreen
from tests.unit.tui.conftest import Dash, settle

Snap = Callable[..., bool]
SCREENS: dict[str, type[AreaScreen]] = {
    "overview": OverviewScreen, "wallets": WalletsScreen, "payouts": PayoutsScreen,
    "exchange": ExchangeScreen, "events": EventsScreen, "invoices": InvoicesScreen,
    "webhooks": WebhooksScreen,
}


def _settled(screen: type[AreaScreen]) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot, screen)

    return run_before


@pytest.mark.parametrize("mode", list(SCREENS))
def test_screen_matches_its_snapshot_when_shown_at_80x24(
    dash: Dash, snap_compare: Snap, mode: str
) -> None:
    assert snap_compare(dash.app(start=mode), terminal_size=(80, 24),
                        run_before=_settled(SCREENS[mode]))


@pytest.mark.parametrize(("mode", "size"), [("exchange", (160, 48)), ("overview", (120, 36))])
def test_screen_scales_up_when_the_terminal_is_larger(
    dash: Dash, snap_compare: Snap, mode: str, size: tuple[int, int]
) -> None:
    assert snap_compare(dash.app(start=mode), terminal_size=size,
                        run_before=_settled(SCREENS[mode]))


def test_light_theme_matches_its_snapshot_when_chosen(dash: Dash, snap_compare: Snap) -> None:
    assert snap_compare(dash.app(theme=LIGHT, start="payouts"), terminal_size=(100, 30),
                        run_before=_settled(PayoutsScreen))


def test_help_matches_its_snapshot_when_opened(dash: Dash, snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot, OverviewScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(pilot.app.screen, HelpScreen)

    assert snap_compare(dash.app(), terminal_size=(80, 24), run_before=run_before)


def test_approval_dialog_shows_the_policy_when_a_payout_is_approved(
    dash: Dash, snap_compare: Snap
) -> None:
    big = dash.seed.payouts["big"]

    async def run_before(pilot: Pilot[None]) -> None:
        screen = await settle(pilot, PayoutsScreen)
        table = screen.query_one("#payouts", DataTable)
        table.move_cursor(row=table.get_row_index(big))
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmScreen)

    assert snap_compare(dash.app(start="payouts"), terminal_size=(80, 24),
                        run_before=run_before)
