"""The ``dpg`` application: global options, command groups, and the entry point.

Every command runs under :class:`~dpgnode.cli.errors.DpgGroup`, which maps the node's error
categories to exit codes (see :mod:`dpgnode.cli.errors`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import structlog
import typer

from dpgnode import __version__

from .commands import (
    apikey,
    audit,
    backup,
    book,
    chain,
    chain_sweep,
    config,
    convert,
    dashboard,
    db,
    dev,
    doctor,
    hsm,
    init,
    ledger,
    node,
    operator,
    payout,
    store,
    wallet,
)
from .errors import DpgGroup
from .state import state

app = typer.Typer(
    name="dpg",
    cls=DpgGroup,
    epilog="Exit status: 0 ok, 1 refused or failed, 2 usage, 3 configuration, "
    "4 unavailable (retry), 70 internal error. Reference: docs/cli.md",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dpg {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="DPG_DATA_DIR",
            help="Data directory (database, dpg.toml, backups). "
            "Default: the platform's user data directory.",
            file_okay=False,
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration file to read instead of DATA_DIR/dpg.toml.",
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="DPG_DEBUG", help="Show tracebacks of errors."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Run and administer a DPG node: a self-hosted payment gateway and exchange node.

    Settings come from DATA_DIR/dpg.toml, overridden by DPG_* environment variables (nested
    with `__`, e.g. DPG_API__PORT), overridden by command-line flags.
    """
    shared = state(ctx)
    shared.data_dir = data_dir
    shared.config_file = config_file
    shared.debug = debug


app.command("init")(init.init)
app.add_typer(node.app, name="node")
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(ledger.app, name="ledger")
app.add_typer(store.app, name="store")
app.add_typer(apikey.app, name="apikey")
app.add_typer(convert.app, name="convert")
app.add_typer(hsm.app, name="hsm")
app.add_typer(wallet.app, name="wallet")
app.add_typer(payout.app, name="payout")
app.add_typer(operator.app, name="operator")
app.add_typer(audit.app, name="audit")
app.add_typer(book.app, name="book")
app.add_typer(backup.app, name="backup")
app.command("doctor")(doctor.doctor)
app.command("dashboard")(dashboard.dashboard)
chain_sweep.register(chain.app)  # `dpg chain sweep` lives with the sweeps
app.add_typer(chain.app, name="chain")
app.add_typer(dev.app, name="dev")


def _log_to_stderr() -> None:
    # structlog prints to stdout by default; stdout belongs to results and --json.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def main() -> None:
    """Entry point of the ``dpg`` executable."""
    _log_to_stderr()
    app()
