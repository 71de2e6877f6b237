"""Where the CLI writes: results on stdout, everything said to a person on stderr.

``--json`` output is written with :func:`emit_json` and nothing else reaches stdout, so it
can be piped to ``jq``. Tables go through rich; when stdout is not a terminal they are drawn
wide instead of folded, so that one row stays one line for ``grep``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dpgnode.domain.money import AssetRegistry

_PIPE_WIDTH = 200


def out_console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = _PIPE_WIDTH
    return console


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (the only thing a ``--json`` command writes there)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def result(message: str) -> None:
    """One line of result for a person, on stdout (never used with ``--json``)."""
    out_console().print(Text(message))


def info(message: str) -> None:
    err_console().print(Text(message))


def warn(message: str) -> None:
    err_console().print(Text(f"warning: {message}", style="yellow"))


def error(message: str) -> None:
    err_console().print(Text(f"error: {message}", style="red"))


def table(*columns: str, title: str | None = None) -> Table:
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def add_row(grid: Table, *cells: str) -> None:
    """Add a row of plain text: cells are never read as rich markup (``[[assets]]`` stays)."""
    grid.add_row(*(Text(cell) for cell in cells))


def print_table(grid: Table) -> None:
    out_console().print(grid)


def when(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def totals(values: Mapping[str, int], assets: AssetRegistry) -> dict[str, str]:
    return {code: assets.format(units, code) for code, units in sorted(values.items())}
