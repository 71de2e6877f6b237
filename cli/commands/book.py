"""``dpg book``: order books and the matching engine.

``dpg book replay`` runs a JSON-lines command file through a fresh matching engine, offline
(no data directory, no database): the codec and the driver are pure domain code
(:mod:`dpgnode.domain.exchange.replay`); this module only reads the file and writes lines.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, BinaryIO

import typer

from dpgnode.domain.exchange.pair import Increment, Pair
from dpgnode.domain.exchange.replay import replay as replay_lines
from dpgnode.domain.exchange.types import MatchingMode
from dpgnode.node import Node
from dpgnode.ports.trading import OrderStatus
from dpgnode.services.trading.views import level, levels_view, order_view, pair_view

from .. import output
from ..errors import EXIT_FAILED, usage_errors
from ..state import open_node
from . import JSON_HELP, group

app = group("Order books: the node's pairs, books and orders; offline replay.")

_SYMBOL = re.compile(r"^[A-Z0-9]{2,12}(?:-[A-Z0-9]{2,12}){1,3}$")


class _UnreadableError(Exception):
    """The command file could not be read (exit status 1)."""


def _lines(source: BinaryIO, name: str) -> Iterator[bytes]:
    try:
        yield from source
    except OSError as exc:
        raise _UnreadableError(f"cannot read {name}: {exc.strerror or exc}") from exc


@app.command("replay")
def replay(
    file: Annotated[
        str,
        typer.Argument(help="Command file, one JSON object per line ('-': standard input)."),
    ],
    pair: Annotated[
        str, typer.Option("--pair", help="The pair, as BASE-QUOTE (e.g. BTC-USD).")
    ],
    tick: Annotated[
        str, typer.Option("--tick", help="Price increment, a decimal string (e.g. 0.01).")
    ],
    lot: Annotated[
        str, typer.Option("--lot", help="Quantity increment, a decimal string (e.g. 0.001).")
    ],
    mode: Annotated[
        MatchingMode,
        typer.Option("--mode", help="Matching within a price level: fifo or pro-rata."),
    ] = MatchingMode.FIFO,
) -> None:
    """Replay a command file through a new order book; print one JSON event per line.

    Commands: limit (GTC, IOC, FOK, post-only), market, stop, cancel and reduce, with
    prices and quantities as decimal strings on the --tick and --lot grids. Events follow
    in the order they happen (accepted, trade, cancelled, rejected, triggered, reduced),
    then one final `book` line with the resting levels, best first. A malformed line gives
    a `rejected` event naming the line and field, and the replay goes on. Exit status 0
    after a full replay, 2 for unusable flags, 1 if the file cannot be read. The format is
    in docs/cli.md.

    Examples:
    ```
    dpg book replay --pair BTC-USD --tick 0.01 --lot 0.001 orders.jsonl
    dpg book replay --pair ETH-EUR --tick 0.05 --lot 0.01 --mode pro-rata - < orders.jsonl
    ```
    """
    if not _SYMBOL.fullmatch(pair):
        raise typer.BadParameter("expected BASE-QUOTE, e.g. BTC-USD", param_hint="--pair")
    with usage_errors("--tick"):
        tick_step = Increment.parse(tick, field="tick")
    with usage_errors("--lot"):
        lot_step = Increment.parse(lot, field="lot")
    try:
        source: BinaryIO = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        output.error(f"cannot read {file}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    out = sys.stdout
    try:
        with source:
            lines = _lines(source, file)
            for line in replay_lines(lines, tick=tick_step, lot=lot_step, mode=mode):
                out.write(line + "\n")
    except _UnreadableError as exc:
        out.flush()
        output.error(str(exc))
        raise typer.Exit(EXIT_FAILED) from exc


# -- the node's books: open, halt and resume pairs, look at books and orders, cancel ------
# Operator commands over the trading service of the node in --data-dir. Users trade through
# the API (/api/v1/trading) with keys bound to them: `dpg apikey create --permission
# dpg.trading.trade:USER`; fund a user with `dpg ledger post`.

pairs_app = group("Open, halt, resume and list the node's trading pairs.")
app.add_typer(pairs_app, name="pairs")

_PAIR_HELP = "The pair, as BASE-QUOTE (e.g. BTC-USD); see `dpg book pairs list`."


class OrderFilter(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ALL = "all"


def _pair(node: Node, symbol: str, param: str = "PAIR") -> Pair:
    with usage_errors(param):
        return node.trading.pair(symbol)


def _state_change(ctx: typer.Context, symbol: str, action: str, as_json: bool) -> None:
    node = open_node(ctx)
    pair = _pair(node, symbol, "SYMBOL")
    change = {
        "add": node.trading.open_pair, "halt": node.trading.halt_pair,
        "resume": node.trading.resume_pair,
    }[action]
    state, changed = change(symbol)
    if as_json:
        output.emit_json({**pair_view(pair, state), "changed": changed})
    elif changed:
        output.result(f"{symbol} is now {state.status}")
    else:
        output.result(f"{symbol} was already {state.status}; nothing changed")


@pairs_app.command("add")
def pairs_add(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help=_PAIR_HELP, metavar="SYMBOL")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Open a configured pair for trading (pairs start closed; see config/pairs.toml).

    Opening an open or halted pair changes nothing.

    Examples:
    ```
    dpg book pairs add BTC-USD
    dpg book pairs add ETH-BTC --json
    ```
    """
    _state_change(ctx, symbol, "add", as_json)


@pairs_app.command("halt")
def pairs_halt(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help=_PAIR_HELP, metavar="SYMBOL")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Halt a pair: new orders are refused; resting orders stay and can be cancelled.

    Examples:
    ```
    dpg book pairs halt BTC-USD
    ```
    """
    _state_change(ctx, symbol, "halt", as_json)


@pairs_app.command("resume")
def pairs_resume(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help=_PAIR_HELP, metavar="SYMBOL")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Resume a halted pair: it accepts orders again.

    Examples:
    ```
    dpg book pairs resume BTC-USD
    ```
    """
    _state_change(ctx, symbol, "resume", as_json)


@pairs_app.command("list")
def pairs_list(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only pairs with this status: open, halted or closed."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the configured pairs: grid, fees, matching mode and status.

    Examples:
    ```
    dpg book pairs list
    dpg book pairs list --status open --json
    ```
    """
    if status not in (None, "open", "halted", "closed"):
        raise typer.BadParameter("use open, halted or closed", param_hint="--status")
    node = open_node(ctx)
    rows = [pair_view(pair, state) for pair, state in node.trading.pairs()]
    rows = [row for row in rows if status is None or row["status"] == status]
    if as_json:
        output.emit_json(rows)
        return
    grid = output.table(
        "Pair", "Tick", "Lot", "Min", "Max", "Maker fee", "Taker fee", "Mode", "Status",
        title="Trading pairs",
    )
    for row in rows:
        output.add_row(grid, *(str(row[k]) for k in (
            "symbol", "tick", "lot", "minSize", "maxSize", "makerFee", "takerFee", "mode",
            "status",
        )))
    output.print_table(grid)


@app.command("depth")
def depth(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help=_PAIR_HELP, metavar="PAIR")],
    levels: Annotated[
        int, typer.Option("--levels", min=1, max=1000, help="Price levels per side.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show an open pair's book: resting quantity per price level, best first.

    Examples:
    ```
    dpg book depth BTC-USD
    dpg book depth BTC-USD --levels 5 --json
    ```
    """
    node = open_node(ctx)
    config = _pair(node, pair)
    book = node.trading.depth(pair, levels)
    bids, asks = levels_view(config, book.bids), levels_view(config, book.asks)
    if as_json:
        output.emit_json(
            {"pair": pair, "status": str(book.status), "seq": book.seq, "bids": bids, "asks": asks}
        )
        return
    grid = output.table(
        "Bid quantity", "Bid", "Ask", "Ask quantity",
        title=f"{pair} ({book.status}, sequence {book.seq})",
    )
    for index in range(max(len(book.bids), len(book.asks))):
        bid = level(config, *book.bids[index]) if index < len(book.bids) else ("", "")
        ask = level(config, *book.asks[index]) if index < len(book.asks) else ("", "")
        output.add_row(grid, bid[1], bid[0], ask[0], ask[1])
    output.print_table(grid)
    if not book.bids and not book.asks:
        output.info("the book is empty")


@app.command("orders")
def orders(
    ctx: typer.Context,
    pair: Annotated[str | None, typer.Option("--pair", help="Only this pair.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this trading user.")] = None,
    status: Annotated[
        OrderFilter, typer.Option("--status", help="Only orders with this status (or all).")
    ] = OrderFilter.OPEN,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100, help="At most this many, newest first.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List orders, newest first: open ones by default.

    Examples:
    ```
    dpg book orders
    dpg book orders --pair BTC-USD --user alice --status all --json
    ```
    """
    node = open_node(ctx)
    if pair is not None:
        _pair(node, pair, "--pair")
    found = node.trading.orders(
        user_id=user, pair=pair,
        status=None if status is OrderFilter.ALL else OrderStatus(status.value), limit=limit,
    )
    views = [order_view(o, node.trading.pair(o.pair), node.assets) for o in found]
    if as_json:
        output.emit_json(views)
        return
    grid = output.table(
        "Order", "Pair", "User", "Side", "Type", "Price", "Quantity", "Filled", "Status",
        title="Orders",
    )
    for view in views:
        output.add_row(grid, *(str(view[k] or "") for k in (
            "id", "pair", "userId", "side", "type", "price", "quantity", "filled", "status",
        )))
    output.print_table(grid)
    if not views:
        output.info("no orders match")


@app.command("cancel-all")
def cancel_all(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help=_PAIR_HELP, metavar="PAIR")],
    user: Annotated[
        str | None, typer.Option("--user", help="Only this trading user's orders.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Cancel every open order of a pair (or of one user in it); their holds are released.

    Asks for confirmation unless --yes is given. Works on halted pairs too.

    Examples:
    ```
    dpg book cancel-all BTC-USD
    dpg book cancel-all BTC-USD --user alice --yes --json
    ```
    """
    node = open_node(ctx)
    _pair(node, pair)
    pending = [
        o for o in node.trading.orders(pair=pair, status=OrderStatus.OPEN, limit=100)
        if user is None or o.user_id == user
    ]
    if not yes and pending:
        whose = f" of {user}" if user else ""
        typer.confirm(
            f"Cancel the open orders{whose} on {pair} ({len(pending)}"
            f"{'+' if len(pending) == 100 else ''})? Their holds are released",
            abort=True, err=True,
        )
    cancelled = node.trading.cancel_all(pair, user)
    if as_json:
        output.emit_json([order_view(o, _pair(node, pair), node.assets) for o in cancelled])
        return
    output.result(f"cancelled {len(cancelled)} order(s) on {pair}")
