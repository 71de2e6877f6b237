"""Modal dialogs: confirm an action after seeing what it does, and the help screen."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class ConfirmScreen(ModalScreen[str | None]):
    """Shows what an action will do before it is done.

    Dismissed with the reason typed (``""`` when none is asked) when confirmed, ``None``
    when cancelled. Without ``confirm`` it only informs.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y", "confirm", "Confirm", show=False),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 76; max-width: 100%; height: auto; max-height: 100%;
                               border: thick $warning; background: $surface; padding: 0 1; }
    ConfirmScreen #title { text-style: bold; color: $warning; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; }
    ConfirmScreen Button { margin-left: 1; min-width: 10; }
    """

    def __init__(self, title: str, body: RenderableType, *, confirm: str | None = "Confirm",
                 ask_reason: bool = False) -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._confirm = confirm
        self._ask_reason = ask_reason

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title, id="title")
            yield Static(self._body, id="body")
            if self._ask_reason:
                yield Input(placeholder="reason (kept in the audit log)", id="reason",
                            max_length=200)
            with Horizontal():
                yield Button("Cancel" if self._confirm else "Close", id="cancel")
                if self._confirm:
                    yield Button(self._confirm, id="confirm", variant="warning")

    def on_mount(self) -> None:
        if self._ask_reason:
            self.query_one("#reason", Input).focus()
        else:
            self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        if not self._confirm:
            _ = self.dismiss(None)
            return
        reason = self.query_one("#reason", Input).value if self._ask_reason else ""
        _ = self.dismiss(reason)

    def action_cancel(self) -> None:
        _ = self.dismiss(None)


KEYS = [
    ("1 … 7", "Overview, Wallets, Payouts, Exchange, Events, Invoices, Webhooks"),
    ("ctrl+p", "Command palette: every action and screen by name"),
    ("r", "Refresh the screen now (screens also refresh by themselves)"),
    ("t", "Switch between the dark and the light theme"),
    ("? / f1", "This help"),
    ("q", "Quit"),
    ("", ""),
    ("Payouts", "a approve · x reject · f cycle the status filter"),
    ("Exchange", "↑ ↓ pick a pair · h halt · u resume (both ask first)"),
    ("Events", "/ filter by type · p pause or follow · c clear"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "close",
                                                      "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 78; max-width: 100%; height: auto; max-height: 100%;
                            border: thick $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, text in KEYS:
            table.add_row(key, text)
        with Vertical():
            yield Static("[b]DPG dashboard[/b]: keys (esc closes)")
            yield Static(table)
            yield Static("It talks to the node over its HTTP API with your API key; approvals "
                         "also need your operator token (DPG_OPERATOR_TOKEN).", classes="dim")

    def action_close(self) -> None:
        _ = self.dismiss(None)
