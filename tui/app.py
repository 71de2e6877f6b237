"""The dashboard app: one mode per area of the node, keys and a command palette for all.

Modes keep each area's screen (and what it loaded) while another is shown; the number keys
switch between them, ``ctrl+p`` opens the palette with every area and action by name,
``?`` the help. The app only ever talks to the node through the client it is given, so
it runs the same against a local node, one behind an SSH tunnel, or several processes
sharing a PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from .connection import Connection
from .screens.base import AreaScreen
from .screens.dialogs import HelpScreen
from .screens.events import EventsScreen
from .screens.exchange import ExchangeScreen
from .screens.merchant import InvoicesScreen, WebhooksScreen
from .screens.overview import OverviewScreen
from .screens.payouts import PayoutsScreen
from .screens.wallets import WalletsScreen

AREAS: tuple[tuple[str, str, type[AreaScreen]], ...] = (
    ("overview", "Overview", OverviewScreen),
    ("wallets", "Wallets", WalletsScreen),
    ("payouts", "Payouts", PayoutsScreen),
    ("exchange", "Exchange", ExchangeScreen),
    ("events", "Events", EventsScreen),
    ("invoices", "Invoices", InvoicesScreen),
    ("webhooks", "Webhooks", WebhooksScreen),
)
DARK, LIGHT = "textual-dark", "textual-light"


class DashboardApp(App[None]):
    """``DashboardApp(Connection(client, url, operator_token))``.

    It closes the client on exit: the client's connections belong to the app's event loop.
    """

    TITLE = "DPG dashboard"
    MODES: ClassVar[dict[str, type[Screen[None]]]] = {  # type: ignore[assignment]
        mode: screen for mode, _, screen in AREAS
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(n), f"area('{mode}')", title, show=n <= 5)
          for n, (mode, title, _) in enumerate(AREAS, start=1)),
        Binding("question_mark,f1", "help", "Help"),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self, connection: Connection, *, theme: str = DARK, start: str = "overview"
    ) -> None:
        super().__init__()
        if start not in self.MODES:
            raise ValueError(f"no screen {start!r}: one of {', '.join(self.MODES)}")
        self.connection = connection
        self.theme = theme
        self.sub_title = connection.url
        self._start = start

    def on_mount(self) -> None:
        _ = self.switch_mode(self._start)

    async def on_unmount(self) -> None:
        # The screens' workers were cancelled on the way out; let them finish unwinding
        # (a request in flight closes its connection) before the client's pool goes.
        await self.workers.wait_for_complete()
        await self.connection.client.aclose()

    def action_area(self, mode: str) -> None:
        if self.current_mode != mode:
            _ = self.switch_mode(mode)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            _ = self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for mode, title, _ in AREAS:
            yield SystemCommand(f"Go to {title}", f"Show the {title} screen",
                                lambda mode=mode: self.action_area(mode))
        yield SystemCommand("Toggle light/dark theme", "Switch between the two themes",
                            self.action_toggle_theme)
        yield SystemCommand("Help", "Keys and what each screen does", self.action_help)
        if isinstance(screen, AreaScreen):
            yield SystemCommand("Refresh", "Load this screen's data again now", screen.reload)
        yield from _screen_actions(screen)
        yield from super().get_system_commands(screen)


def _screen_actions(screen: Screen[object]) -> Iterable[SystemCommand]:
    """The current screen's own actions (approve, halt, ...) by name."""
    for binding in screen.BINDINGS:
        if isinstance(binding, Binding) and binding.description and binding.action != "reload":
            action = binding.action

            async def run(action: str = action) -> None:
                await screen.run_action(action)

            yield SystemCommand(binding.description, f"{screen.sub_title}: key "
                                f"{binding.key}", run)
