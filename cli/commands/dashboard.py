"""``dpg dashboard``: the terminal dashboard over a running node's HTTP API.

It never opens the database: it needs the node's URL and an API key (an admin key sees
every screen; a narrower key sees the screens its permissions allow). Approving and
rejecting payouts also needs the operator's own token, as ``dpg payout approve`` does.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from dpgnode.client import AsyncDpgClient, DpgClient
from dpgnode.errors import AuthenticationError, ConfigError

from ..state import settings, state
from .operator import TOKEN_ENV

KEY_ENV = "DPG_API_KEY"
URL_ENV = "DPG_URL"


class Theme(StrEnum):
    DARK = "dark"
    LIGHT = "light"


class Area(StrEnum):
    OVERVIEW = "overview"
    WALLETS = "wallets"
    PAYOUTS = "payouts"
    EXCHANGE = "exchange"
    EVENTS = "events"
    INVOICES = "invoices"
    WEBHOOKS = "webhooks"


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from exc
    if not text:
        raise ConfigError(f"the {what} file {path} is empty")
    return text


def _api_key(key_file: Path | None) -> str:
    if key_file is not None:
        return _read_secret(key_file, "API key")
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise AuthenticationError(
            f"an API key is required: pass --api-key-file or set {KEY_ENV} "
            "(`dpg apikey create --permission unrestricted` issues an admin key)"
        )
    return key


def _operator_token(token_file: Path | None) -> str | None:
    if token_file is not None:
        return _read_secret(token_file, "operator token")
    return os.environ.get(TOKEN_ENV, "").strip() or None


def _default_url(ctx: typer.Context) -> str:
    """The local node's address from its settings (dpg.toml / DPG_API__*), no database."""
    api = settings(ctx).api
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host  # noqa: S104
    return f"http://{host}:{api.port}"


def dashboard(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar=URL_ENV,
                     help="The node's URL, e.g. http://127.0.0.1:23000 (through an SSH tunnel "
                          "for a remote node). Default: this data directory's [api] address."),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option("--api-key-file", dir_okay=False,
                     help=f"File holding the API key (mode 0600). Default: {KEY_ENV}."),
    ] = None,
    operator_token_file: Annotated[
        Path | None,
        typer.Option("--operator-token-file", dir_okay=False,
                     help=f"File holding your operator token, to approve and reject payouts. "
                          f"Default: {TOKEN_ENV}."),
    ] = None,
    theme: Annotated[Theme, typer.Option("--theme", help="Colour theme to start with.")]
    = Theme.DARK,
    screen: Annotated[Area, typer.Option("--screen", help="Screen to start on.")]
    = Area.OVERVIEW,
    poll: Annotated[
        float,
        typer.Option("--poll", min=1.0, max=300.0,
                     help="Seconds between refreshes of the shown screen (the exchange's book "
                          "and trades are live)."),
    ] = 5.0,
) -> None:
    """Watch and operate a running node in the terminal (Textual; keys, ? for help).

    Screens: Overview, Wallets, Payouts (approve/reject with confirmation), Exchange
    (book, depth, trades, halt/resume), Events, Invoices and Webhooks (where the node
    serves them). It connects over the HTTP API, so it works against a remote node
    through an SSH tunnel; it checks the URL and key before starting (exit 4 when the
    node cannot be reached, 1 when the key is refused).

    Examples:
    ```
    DPG_API_KEY=... dpg dashboard
    dpg dashboard --url http://127.0.0.1:23000 --api-key-file ~/.dpg/admin.key --theme light
    DPG_OPERATOR_TOKEN=dpgop_... dpg dashboard --screen payouts
    ssh -L 23000:127.0.0.1:23000 node.example && dpg dashboard --url http://127.0.0.1:23000
    ```
    """
    from dpgnode.tui.app import DARK, LIGHT, DashboardApp  # Textual loads only here
    from dpgnode.tui.connection import Connection

    key = _api_key(api_key_file)
    token = _operator_token(operator_token_file)
    target = url or _default_url(ctx)
    with DpgClient(target, key) as check:
        check.current_key()  # fails fast (exit 1 or 4) before taking over the terminal
    app = DashboardApp(Connection(AsyncDpgClient(target, key), target, token, poll),
                       theme=LIGHT if theme is Theme.LIGHT else DARK, start=screen.value)
    run = state(ctx).run_dashboard
    if run is not None:
        run(app)
    else:
        app.run()
    if app.return_code:
        raise typer.Exit(app.return_code)
