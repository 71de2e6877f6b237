"""What every command shares: the global options, and how settings and the node are opened.

The data directory comes from ``--data-dir``, else ``DPG_DATA_DIR`` (Typer reads it for the
option), else the platform's user data directory. Settings are loaded once per command
through :func:`dpgnode.settings.load_settings`, flags passed in as overrides so that they
win over ``DPG_*`` variables, which win over ``dpg.toml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from dpgnode.errors import ConfigError
from dpgnode.node import Node, build_node
from dpgnode.settings import Settings, config_path, default_data_dir, load_settings

SQLITE_PREFIX = "sqlite+pysqlite:///"


@dataclass(frozen=True, slots=True)
class ServeSpec:
    """Everything ``dpg node start`` hands to the HTTP server."""

    host: str
    port: int
    workers: int
    data_dir: Path
    config_file: Path | None
    log_level: str


Launcher = Callable[[ServeSpec], None]


def _default_launcher(spec: ServeSpec) -> None:
    from .serve import serve_with_granian  # granian is imported only to serve

    serve_with_granian(spec)


@dataclass(slots=True)
class CliState:
    """Global options, kept on the Click context as ``ctx.obj``.

    Tests may pass their own ``CliState(launcher=...)`` as ``obj`` to run ``dpg node start``
    without a server.
    """

    data_dir: Path | None = None
    config_file: Path | None = None
    debug: bool = False
    launcher: Launcher = field(default=_default_launcher)
    node_factory: Callable[[Settings], Node] | None = None
    """Builds the node instead of ``build_node`` (tests pass one following a simulated
    chain; ``dpg chain`` commands then act on it)."""
    run_dashboard: Callable[[Any], None] | None = None
    """Runs the dashboard app instead of ``app.run()`` (tests pass one that drives it
    headless, or keeps it to look at how the command built it)."""

    def resolved_data_dir(self) -> Path:
        return (self.data_dir or default_data_dir()).expanduser().resolve()

    def config_path(self) -> Path:
        return config_path(self.resolved_data_dir(), self.config_file)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_object(CliState)
    return obj if obj is not None else ctx.ensure_object(CliState)


def settings(ctx: typer.Context, overrides: dict[str, Any] | None = None) -> Settings:
    """The effective settings; ``ConfigError`` (exit 3) lists every invalid field."""
    shared = state(ctx)
    return load_settings(shared.resolved_data_dir(), shared.config_file, overrides)


def sqlite_file(current: Settings) -> Path | None:
    """The SQLite database file, or ``None`` for a server database."""
    url = current.database_url()
    return Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None


def require_database(current: Settings) -> None:
    """Refuse (exit 3) to open an embedded database that ``dpg init`` never created."""
    path = sqlite_file(current)
    if path is not None and not path.is_file():
        raise ConfigError(
            f"no database at {path}: run `dpg init` (or `dpg db upgrade`) first",
            details={"field": "database.url"},
        )


def open_node(ctx: typer.Context) -> Node:
    """A wired node over a current schema, closed when the command ends."""
    current = settings(ctx)
    require_database(current)
    factory = state(ctx).node_factory
    node = factory(current) if factory is not None else build_node(current)
    ctx.call_on_close(node.close)
    return node
