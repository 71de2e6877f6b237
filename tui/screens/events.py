"""Events: the node's event stream (its outbox), live, with a type filter.

A worker polls ``/api/v1/events`` every second from the last seq seen, so no event is
missed or shown twice. It starts near the end of the stream (the latest :data:`KEEP`
events, or a wider window when filtered), not at its beginning. ``p`` pauses (the stream
keeps its place), ``/`` filters by type prefix (``custody.``, ``trading.trade``), ``c``
clears the list and goes on. The selected event's data shows below.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from dpgnode.client import models as m

from ..connection import NotAvailable, feature
from ..formatting import clock, elide, when
from .base import AreaScreen

KEEP = 500
PAGES_PER_LOAD = 5
FILTERED_WINDOW = 20 * KEEP


class EventsScreen(AreaScreen):
    AREA = "Events"
    POLL_SECONDS = 1.0
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("p", "pause", "Pause/follow"),
        Binding("c", "clear", "Clear"),
    ]
    DEFAULT_CSS = """
    EventsScreen Vertical { height: 1fr; }
    EventsScreen #filter { height: 3; }
    EventsScreen #events { height: 1fr; min-height: 4; }
    EventsScreen #data { height: 9; overflow-y: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.after: int | None = None  # None: start near the end of the stream
        self.prefix: str | None = None
        self.paused = False
        self.events: dict[str, m.Event] = {}

    def body(self) -> Iterable[Widget]:
        with Vertical():
            yield Input(placeholder="type prefix, e.g. custody. or trading.trade (enter)",
                        id="filter")
            table: DataTable[str] = DataTable(id="events", cursor_type="row")
            table.add_class("panel")
            yield table
            data = Static("", id="data", classes="panel")
            data.border_title = "Event data"
            yield data

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#events", DataTable).add_columns("Seq", "UTC", "Type", "Aggregate")
        self._title()
        self.query_one("#events", DataTable).focus()

    def _title(self) -> None:
        state = "paused" if self.paused else "following"
        self.query_one("#events", DataTable).border_title = (
            f"Events ({state}{', type ' + self.prefix + '*' if self.prefix else ''})")

    async def load(self) -> None:
        if self.paused:
            return
        table = self.query_one("#events", DataTable)
        try:
            if self.after is None:
                newest = (await feature(self.client.event_progress())).newest_seq
                self.after = max(0, newest - (FILTERED_WINDOW if self.prefix else KEEP))
            for _ in range(PAGES_PER_LOAD):
                page = await feature(self.client.events(self.after, self.prefix, 100))
                self._add(table, page.events)
                self.after = page.next
                if len(page.events) < 100:
                    break
        except NotAvailable:
            table.border_subtitle = "not available on this node"
            return
        table.border_subtitle = f"up to #{self.after}"

    def _add(self, table: DataTable[str], events: list[m.Event]) -> None:
        follow = table.cursor_row >= table.row_count - 1
        for event in events:
            self.events[event.id] = event
            table.add_row(str(event.seq), clock(event.created_time), elide(event.type, 26),
                          elide(event.aggregate, 26), key=event.id)
        while table.row_count > KEEP:
            oldest = table.coordinate_to_cell_key(Coordinate(0, 0)).row_key
            self.events.pop(oldest.value or "", None)
            table.remove_row(oldest)
        if follow and events:
            # After the new rows are laid out, so the table scrolls down to them.
            self.call_after_refresh(table.move_cursor, row=table.row_count - 1)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        found = self.events.get(event.row_key.value or "")
        data = self.query_one("#data", Static)
        if found is None:
            data.update(Text("no event selected", "dim"))
            return
        data.border_title = f"#{found.seq} {found.type} · {when(found.created_time)} UTC"
        data.update(Syntax(json.dumps(found.data, indent=1, sort_keys=True), "json",
                           theme="ansi_dark", word_wrap=True, background_color="default"))

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.prefix = event.value.strip() or None
        self.after = None
        self.action_clear()
        self.query_one("#events", DataTable).focus()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self._title()
        if not self.paused:
            self.reload()

    def action_clear(self) -> None:
        """Empty the list; the stream goes on from where it was."""
        self.query_one("#events", DataTable).clear()
        self.events.clear()
        self.query_one("#data", Static).update("")
        self._title()
        self.reload()
