"""``dpg dev``: local development chains for trying the node out (never for real money)."""

from __future__ import annotations

from typing import Annotated

import typer

from dpgnode.node import DevChains

from .. import output
from ..state import state
from . import JSON_HELP, group

app = group("Local development chains (Bitcoin Knots regtest and anvil) for trying the node.")
chains_app = group("Start, stop and list the development chains of this data directory.")
app.add_typer(chains_app, name="chains")

JsonFlag = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def _dev(ctx: typer.Context) -> DevChains:
    return DevChains(state(ctx).resolved_data_dir())


@chains_app.command("up")
def up(
    ctx: typer.Context,
    only: Annotated[
        str | None,
        typer.Option("--only", help="Start only `bitcoin` or `anvil`."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start Bitcoin Knots (regtest, RPC 127.0.0.1:18443) and anvil (127.0.0.1:8545).

    Idempotent: a chain already running is left alone. Their data stays in DATA_DIR/dev, so
    the chains keep their history across restarts. `scripts/components` installs both;
    `dpg init --dev` writes the matching `[chains]` settings.

    Examples:
    ```
    dpg dev chains up
    dpg dev chains up --only bitcoin
    ```
    """
    if only not in (None, "bitcoin", "anvil"):
        raise typer.BadParameter("expected bitcoin or anvil", param_hint="--only")
    dev = _dev(ctx)
    started = []
    if only in (None, "bitcoin"):
        started.append(dev.start_bitcoin())
    if only in (None, "anvil"):
        started.append(dev.start_anvil())
    if as_json:
        output.emit_json([_row(s) for s in started])
        return
    for chain in started:
        output.result(f"{chain.name}: running (pid {chain.pid}) at {chain.url}")


@chains_app.command("down")
def down(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Stop the development chains (their data is kept for the next `up`).

    Examples:
    ```
    dpg dev chains down
    ```
    """
    stopped = _dev(ctx).stop()
    if as_json:
        output.emit_json({"stopped": stopped})
        return
    output.result(f"stopped: {', '.join(stopped)}" if stopped else "no development chain runs")


@chains_app.command("status")
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Whether each development chain runs, its process and endpoint.

    Examples:
    ```
    dpg dev chains status --json
    ```
    """
    dev = _dev(ctx)
    rows = dev.status()
    if as_json:
        output.emit_json([_row(s) for s in rows])
        return
    grid = output.table("chain", "state", "pid", "endpoint", "data")
    for row in rows:
        output.add_row(grid, row.name, "running" if row.running else "stopped",
                       str(row.pid or "-"), row.url, str(row.data_dir))
    output.print_table(grid)
    installed = dev.binaries
    if installed.knots_root is None or installed.anvil is None:
        output.warn("a development chain is not installed: run scripts/components")


def _row(chain: object) -> dict[str, object]:
    from dataclasses import asdict

    data = asdict(chain)  # type: ignore[call-overload]
    return {key: str(value) if value is not None and key in ("data_dir", "cookie_file")
            else value for key, value in data.items()}
