"""Progress bars on stderr for long work (backups, restores), drawn with rich.

Bars are drawn only when stderr is a terminal, so ``--json`` output, pipes and logs stay
clean; each step of the work is one bar (bytes with a known total, a spinner without).
"""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from .output import err_console


class Bars:
    """A ``dpgnode.maintenance`` ``Progress`` over rich; use as a context manager."""

    def __init__(self) -> None:
        console = err_console()
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeElapsedColumn(),
            console=console, disable=not console.is_terminal, transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> Bars:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finish()
        self._progress.stop()

    def stage(self, description: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def _finish(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[self._task]
            if task.total is None:
                self._progress.update(self._task, total=task.completed or 1,
                                      completed=task.completed or 1)
            else:
                self._progress.update(self._task, completed=task.total)
            self._task = None
