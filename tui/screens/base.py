"""What the area screens share: header, status line, footer, and loading in workers.

A screen loads when it is shown and then every ``poll_seconds`` while it stays shown
(its timer pauses when another screen is in front); each load runs in an exclusive
Textual worker, so a slow node never blocks keys or drawing, and a newer load cancels an
older one. A failed load keeps the last data on screen and says what failed on the status
line (and once in a notification); ``loaded`` turns true after the first load finished,
successful or not (tests wait for it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Header, Static
from textual.worker import Worker

from dpgnode.client import AsyncDpgClient
from dpgnode.errors import DpgError

from ..connection import Connection, HasConnection, describe


class AreaScreen(Screen[None]):
    """A screen over one area of the node; subclasses give ``body()`` and ``load()``."""

    AREA: ClassVar[str] = ""
    POLL_SECONDS: ClassVar[float | None] = None
    """How often to reload while shown; ``None``: the connection's ``poll_seconds``."""
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Refresh")]
    DEFAULT_CSS = """
    AreaScreen #status { height: 1; padding: 0 1; color: $text-muted; }
    AreaScreen #status.error { color: $error; }
    AreaScreen .panel { border: round $primary 40%; border-title-color: $text-accent;
                        padding: 0 1; }
    AreaScreen .unavailable { color: $text-muted; text-style: italic; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.loaded = False
        self._timer: Timer | None = None
        self._last_error = ""
        self._action_failed = False

    @property
    def connection(self) -> Connection:
        return cast(HasConnection, self.app).connection

    @property
    def client(self) -> AsyncDpgClient:
        return self.connection.client

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield from self.body()
        yield Static("", id="status")
        yield Footer()

    def body(self) -> Iterable[Widget]:
        raise NotImplementedError

    async def load(self) -> None:
        """Fetch and show this screen's data (runs in a worker)."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.sub_title = self.AREA
        every = self.POLL_SECONDS or self.connection.poll_seconds
        self._timer = self.set_interval(every, self.reload, pause=True)

    def on_screen_resume(self) -> None:
        self.reload()
        if self._timer is not None:
            self._timer.resume()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    @property
    def busy(self) -> bool:
        """Whether a load or an action of this screen is still running."""
        return any(
            worker.node is self and not worker.is_finished and worker.group in ("load", "act",
                                                                                 "pair")
            for worker in self.app.workers
        )

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._start(self._load, "load", exclusive=True)

    async def _load(self) -> None:
        try:
            await self.load()
        except DpgError as exc:
            self.report(exc)
        else:
            if not self._action_failed:  # a refused action stays said until the next one
                self.status("")
        finally:
            self.loaded = True

    def spawn(self, group: str, title: str, work: Callable[[], Awaitable[object]], *,
              exclusive: bool = False) -> None:
        """Run ``work`` in a worker; a refusal from the node is reported under ``title``.

        Workers get a coroutine function, never a coroutine object: a worker that an
        exclusive one replaces before it starts then never creates its coroutine.
        """
        async def run() -> None:
            try:
                await work()
            except DpgError as exc:
                self.report(exc, title=title, action=group == "act")
            else:
                if group == "act":
                    self._action_failed = False

        self._start(run, group, exclusive=exclusive)

    def _start(self, work: Callable[[], Coroutine[Any, Any, None]], group: str, *,
               exclusive: bool) -> None:
        # Textual types coroutine workers as Coroutine[None, None, R] and mypy infers
        # R = Never for ours; the cast only says what the worker returns.
        job = cast("Callable[[], Coroutine[None, None, None]]", work)
        worker: Worker[None] = self.run_worker(job, group=group, exclusive=exclusive)
        del worker

    def report(self, error: DpgError, title: str = "The node refused", *,
               action: bool = False) -> None:
        """Show ``error`` on the status line; notify once per distinct message."""
        self._action_failed = action
        text = describe(error)
        self.status(f"{title}: {text}", error=True)
        if text != self._last_error:
            self.notify(text, title=title, severity="error")
        self._last_error = text

    def status(self, text: str, *, error: bool = False) -> None:
        line = self.query_one("#status", Static)
        line.update(text)
        line.set_class(error, "error")
        if not error:
            self._last_error = ""
