"""``dpg node``: run the node."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dpgnode.errors import ConfigError
from dpgnode.node import schema_status
from dpgnode.settings import semantic_problems

from ..state import ServeSpec, require_database, settings, state
from . import group

app = group("Run the node.")


@app.command("start")
def start(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to listen on (overrides api.host)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port to listen on (overrides api.port)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, max=64, help="HTTP worker processes (overrides api.workers)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (granian) in the foreground until interrupted.

    The database schema must be current: this command never migrates; run `dpg db upgrade`
    first after installing a new version.

    Examples:
    ```
    dpg node start
    dpg node start --host 0.0.0.0 --port 8080 --workers 4
    ```
    """
    api: dict[str, Any] = {
        key: value
        for key, value in (("host", host), ("port", port), ("workers", workers))
        if value is not None
    }
    current = settings(ctx, {"api": api} if api else None)
    problems = semantic_problems(current)
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(problems))
    require_database(current)
    status = schema_status(current)
    if not status.up_to_date:
        raise ConfigError(
            f"the database schema is at revision {status.current}, this version needs "
            f"{status.head}: run `dpg db upgrade` first"
        )
    shared = state(ctx)
    shared.launcher(
        ServeSpec(
            host=current.api.host,
            port=current.api.port,
            workers=current.api.workers,
            data_dir=current.data_dir,
            config_file=shared.config_file,
            log_level=current.log.level,
        )
    )
