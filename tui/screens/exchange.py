"""Exchange: order book ladder, depth chart, trades tape and ticker per pair; halt/resume.

The selected pair's book, trades and ticker arrive live over the trading WebSocket (a
worker follows the feed; a gap in the book's sequence asks for a fresh snapshot). REST
loads the first picture and keeps refreshing on the screen's timer, so a lost feed
leaves a screen that is at most one poll old while the worker reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial
from typing import ClassVar

import msgspec
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from dpgnode.client import models as m
from dpgnode.client.feed import TradingFeed
from dpgnode.errors import DpgError

from ..book import BookState
from ..connection import describe
from ..widgets.market import DepthChart, Ladder, Tape
from .base import AreaScreen
from .dialogs import ConfirmScreen

RECONNECT_SECONDS = (1.0, 2.0, 5.0, 10.0)


def ticker_line(pair: m.Pair | None, ticker: m.Ticker | None) -> Text:
    if pair is None:
        return Text("no pair selected: open one with `dpg book pairs add`", "dim")
    status_style = {"open": "green", "halted": "bold red"}.get(pair.status, "dim")
    line = Text.assemble((pair.symbol, "bold"), " ", (pair.status.upper(), status_style))
    if ticker is not None:
        line.append(f"  last {ticker.last_price or '-'}  bid {ticker.best_bid or '-'}  "
                    f"ask {ticker.best_ask or '-'}  24h vol {ticker.volume_24h} "
                    f"({ticker.trades_24h} trades)")
    return line


class ExchangeScreen(AreaScreen):
    AREA = "Exchange"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "halt", "Halt pair"),
        Binding("u", "resume", "Resume pair"),
    ]
    DEFAULT_CSS = """
    ExchangeScreen #ticker { height: 1; padding: 0 1; }
    ExchangeScreen Horizontal { height: 1fr; }
    ExchangeScreen #pairs { width: 21; height: 1fr; }
    ExchangeScreen #ladder { width: 1fr; min-width: 30; height: 1fr; }
    ExchangeScreen #right { width: 1fr; min-width: 28; height: 1fr; }
    ExchangeScreen #tape { height: 1fr; padding: 0; }
    ExchangeScreen #depth { height: 1fr; max-height: 12; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.pairs: dict[str, m.Pair] = {}
        self.ticker: m.Ticker | None = None
        self.book: BookState | None = None
        self.feed_state = "feed: connecting"
        self._loading: str | None = None
        self._following: str | None = None

    def body(self) -> Iterable[Widget]:
        yield Static("", id="ticker")
        with Horizontal():
            pairs: DataTable[str] = DataTable(id="pairs", cursor_type="row")
            pairs.add_class("panel")
            pairs.border_title = "Pairs"
            yield pairs
            ladder = Ladder(id="ladder")
            ladder.add_class("panel")
            ladder.border_title = "Order book"
            yield ladder
            with Vertical(id="right"):
                tape = Tape(id="tape")
                tape.add_class("panel")
                tape.border_title = "Trades"
                yield tape
                depth = DepthChart(id="depth")
                depth.add_class("panel")
                depth.border_title = "Depth"
                yield depth

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#pairs", DataTable).add_columns("Pair", "Status")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self._follow()

    def on_screen_suspend(self) -> None:
        super().on_screen_suspend()
        self.workers.cancel_group(self, "feed")
        self._following = None
        self._feed_state("feed: paused")

    @property
    def symbol(self) -> str | None:
        table = self.query_one("#pairs", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    async def load(self) -> None:
        pairs = await self.client.pairs()
        live = [p for p in pairs if p.status != "closed"]
        self.pairs = {p.symbol: p for p in live}
        table = self.query_one("#pairs", DataTable)
        selected = self.symbol
        table.clear()
        for pair in live:
            style = "bold red" if pair.status == "halted" else ""
            table.add_row(pair.symbol, Text(pair.status, style), key=pair.symbol)
        table.border_subtitle = f"{len(pairs) - len(live)} closed"
        if selected in self.pairs:
            table.move_cursor(row=table.get_row_index(selected))
        if self.symbol != self._following:
            self._follow()
        await self._load_pair(self.symbol)

    async def _load_pair(self, symbol: str | None) -> None:
        self._loading = symbol
        if symbol is None:
            self._show(None, [])
            return
        book, ticker, tape = await asyncio.gather(
            self.client.order_book(symbol, 100), self.client.ticker(symbol),
            self.client.tape(symbol, 50))
        if self.book is None or self.book.pair != symbol or not self.book.synced or (
            book.seq >= self.book.seq
        ):
            state = BookState(symbol)
            state.load(book.seq, book.bids, book.asks)
            self.book = state
        self.ticker = ticker
        self._show(self.book, tape)

    def _show(self, book: BookState | None, trades: list[m.Trade] | None) -> None:
        pair = self.pairs.get(book.pair) if book is not None else None
        self.query_one("#ticker", Static).update(ticker_line(pair, self.ticker))
        self.query_one(Ladder).show(book)
        self.query_one(DepthChart).show(book)
        if trades is not None:
            self.query_one(Tape).show(trades)
        self.query_one(Ladder).border_subtitle = self.feed_state

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "pairs":
            return
        symbol = event.row_key.value
        if symbol == self._loading:
            return  # the load that filled the table shows it already
        self.book = None
        self.ticker = None
        self.spawn("pair", f"Could not load {symbol}", partial(self._load_pair, symbol),
                   exclusive=True)
        self._follow()

    # -- the live feed -------------------------------------------------------------------

    def _follow(self) -> None:
        self._following = self.symbol
        self.spawn("feed", "Trading feed", partial(self._feed, self.symbol), exclusive=True)

    async def _feed(self, symbol: str | None) -> None:
        if symbol is None:
            return
        channels = [f"book:{symbol}", f"trades:{symbol}", f"ticker:{symbol}"]
        attempt = 0
        while True:
            try:
                async with self.client.trading_feed(channels) as feed:
                    self._feed_state("feed: live")
                    attempt = 0
                    await self._consume(feed, symbol)
            except (DpgError, msgspec.ValidationError) as exc:
                if not isinstance(exc, DpgError):
                    exc = DpgError(f"unreadable feed message: {exc}")
                wait = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
                self._feed_state(f"feed lost, retry in {wait:g}s")
                self.status(f"Trading feed: {describe(exc)}", error=True)
                attempt += 1
                await asyncio.sleep(wait)

    async def _consume(self, feed: TradingFeed, symbol: str) -> None:
        async for message in feed:
            if message.type in ("snapshot", "delta") and message.channel == f"book:{symbol}":
                if self.book is None or self.book.pair != symbol:
                    self.book = BookState(symbol)
                if not self.book.apply(message.type, message.data):
                    self._feed_state("feed: resyncing book")
                    await feed.resubscribe(f"book:{symbol}")
                    continue
                self._show(self.book, None)
            elif message.type == "trade":
                self.query_one(Tape).add(msgspec.convert(message.data, m.Trade))
            elif message.type == "ticker" and self.ticker is not None:
                data = message.data
                self.ticker = msgspec.structs.replace(
                    self.ticker, last_price=data.get("lastPrice", self.ticker.last_price),
                    best_bid=data.get("bestBid"), best_ask=data.get("bestAsk"))
                self._show(self.book, None)

    def _feed_state(self, text: str) -> None:
        self.feed_state = text
        self.query_one(Ladder).border_subtitle = text

    # -- halt and resume -----------------------------------------------------------------

    def action_halt(self) -> None:
        self._change("halt")

    def action_resume(self) -> None:
        self._change("resume")

    def _change(self, action: str) -> None:
        symbol = self.symbol
        pair = self.pairs.get(symbol or "")
        if pair is None:
            self.notify("select an open or halted pair first", severity="warning")
            return
        wanted = "halted" if action == "halt" else "open"
        if pair.status == wanted:
            self.notify(f"{pair.symbol} is already {pair.status}", severity="warning")
            return
        what = ("New orders are refused; resting orders stay and can be cancelled."
                if action == "halt" else "The pair accepts new orders again.")

        def done(answer: str | None) -> None:
            if answer is not None:
                self.spawn("act", f"Could not {action} {pair.symbol}",
                           partial(self._apply, action, pair.symbol))

        _ = self.app.push_screen(ConfirmScreen(
            f"{action.capitalize()} {pair.symbol}?",
            Text.assemble(ticker_line(pair, self.ticker), "\n\n", what),
            confirm=action.capitalize()), done)

    async def _apply(self, action: str, symbol: str) -> None:
        call = self.client.halt_pair if action == "halt" else self.client.resume_pair
        pair = await call(symbol)
        title = "Pair halted" if action == "halt" else "Pair resumed"
        self.notify(f"{pair.symbol} is now {pair.status}", title=title)
        self.reload()
