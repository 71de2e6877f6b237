"""Market widgets: the order book ladder with depth bars, the depth chart, the trades tape.

Each renders from plain data set by its screen and sizes itself to the space it gets, so
the Exchange screen reads at 80x24 and shows more levels and trades on a larger terminal.
"""

from __future__ import annotations

from decimal import Decimal

from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from dpgnode.client.models import Trade

from ..book import BookState, Level
from ..formatting import amount, bar, clock, dec

_BID, _ASK = "green", "red"


def _cumulative(levels: list[Level]) -> list[Decimal]:
    running, out = Decimal(0), []
    for _, quantity in levels:
        running += dec(quantity)
        out.append(running)
    return out


class Ladder(Widget):
    """Asks above, bids below, best prices next to the spread; a bar per cumulative depth."""

    DEFAULT_CSS = "Ladder { height: 1fr; min-height: 5; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book: BookState | None = None

    def show(self, book: BookState | None) -> None:
        self.book = book
        self.refresh()

    def render(self) -> Text | Table:
        book = self.book
        if book is None or not book.synced:
            return Text("no book: pick an open pair", style="dim")
        rows = max(1, (self.size.height - 1) // 2)
        asks, bids = book.best_asks(rows), book.best_bids(rows)
        depth = _cumulative(asks) + _cumulative(bids)
        deepest = max(depth, default=Decimal(0)) or Decimal(1)
        width = max(3, self.size.width - 24)
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", width=10, no_wrap=True)
        table.add_column(justify="right", width=11, no_wrap=True)
        table.add_column(width=width, no_wrap=True)
        for _ in range(rows - len(asks)):  # asks sit right above the spread
            table.add_row("", "", "")
        for (price, quantity), cum in reversed(list(zip(asks, _cumulative(asks), strict=True))):
            table.add_row(Text(price, _ASK), quantity, Text(bar(cum / deepest, width), _ASK))
        spread = book.spread()
        label = f"spread {amount(spread)}" if spread is not None else "no spread"
        table.add_row(Text(label, "dim"), "", "")
        for (price, quantity), cum in zip(bids, _cumulative(bids), strict=True):
            table.add_row(Text(price, _BID), quantity, Text(bar(cum / deepest, width), _BID))
        return table


class DepthChart(Widget):
    """Cumulative quantity against price: bids to the left of the mid, asks to the right."""

    DEFAULT_CSS = "DepthChart { height: 1fr; min-height: 3; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book: BookState | None = None

    def show(self, book: BookState | None) -> None:
        self.book = book
        self.refresh()

    def render(self) -> Text:
        book = self.book
        if book is None or not book.synced or not (book.bids or book.asks):
            return Text("depth: empty book", style="dim")
        half = max(2, (self.size.width - 1) // 2)
        bids, asks = book.best_bids(half), book.best_asks(half)
        cum_bids, cum_asks = _cumulative(bids), _cumulative(asks)
        top = max([*cum_bids, *cum_asks], default=Decimal(1)) or Decimal(1)
        height = max(1, self.size.height - 1)
        lines = []
        for row in range(height, 0, -1):
            floor = top * Decimal(row - 1) / height
            # Far from the mid at the edges, best prices next to the middle bar.
            left = "".join("█" if c > floor else " " for c in reversed(cum_bids)).rjust(half)
            right = "".join("█" if c > floor else " " for c in cum_asks).ljust(half)
            line = Text()
            line.append(left, _BID)
            line.append("│", "dim")
            line.append(right, _ASK)
            lines.append(line)
        low = bids[-1][0] if bids else ""
        high = asks[-1][0] if asks else ""
        axis = Text(f"{low}".ljust(half) + " " + f"{high}".rjust(half), "dim")
        return Text("\n").join([*lines, axis])


class Tape(Widget):
    """The latest trades, newest first: time, price, quantity, taker side."""

    DEFAULT_CSS = "Tape { height: 1fr; min-height: 3; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.trades: list[Trade] = []

    def show(self, trades: list[Trade]) -> None:
        self.trades = trades[:200]
        self.refresh()

    def add(self, trade: Trade) -> None:
        if any(t.id == trade.id for t in self.trades[:50]):
            return  # the feed and a REST refresh may both bring it
        self.trades = [trade, *self.trades][:200]
        self.refresh()

    def render(self) -> Text:
        if not self.trades:
            return Text("no trades yet", style="dim")
        shown = self.trades[: max(1, self.size.height)]
        price_width = max(len(t.price) for t in shown)
        quantity_width = max(len(t.quantity) for t in shown)
        lines = []
        for trade in shown:
            style = _BID if trade.taker_side == "buy" else _ASK
            line = Text.assemble(
                clock(trade.created_time), " ", ("▲" if style == _BID else "▼", style), " ",
                (trade.price.rjust(price_width), style), " ",
                trade.quantity.rjust(quantity_width), no_wrap=True, overflow="ellipsis",
            )
            line.truncate(self.size.width, overflow="ellipsis")
            lines.append(line)
        return Text("\n", no_wrap=True).join(lines)
