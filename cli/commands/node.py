"""``dpg node``: run the node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dpgnode.errors import ConfigError, UnavailableError
from dpgnode.node import DevChains, schema_status
from dpgnode.settings import semantic_problems

from .. import output
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
    dev_chains: Annotated[
        bool,
        typer.Option(
            "--dev-chains",
            help="Start the development chains first (`dpg dev chains up`); a chain that is "
            "not installed is reported and left out.",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (granian) in the foreground until interrupted.

    The database schema must be current: this command never migrates; run `dpg db upgrade`
    first after installing a new version.

    Examples:
    ```
    dpg node start
    dpg node start --host 0.0.0.0 --port 8080 --workers 4
    dpg node start --dev-chains
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
    if dev_chains:
        _start_dev_chains(current.data_dir)
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


def _start_dev_chains(data_dir: Path) -> None:
    dev = DevChains(data_dir)
    for name, start in (("bitcoin", dev.start_bitcoin), ("anvil", dev.start_anvil)):
        try:
            chain = start()
        except (ConfigError, UnavailableError) as exc:
            output.warn(f"development chain {name} not started: {exc.message}")
            continue
        output.info(f"development chain {name}: running (pid {chain.pid}) at {chain.url}")
