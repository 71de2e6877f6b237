"""Operating the exchange over the API: halt and resume pairs, and the public trades tape.

Halting and resuming need ``dpg.trading.manage`` (what ``dpg book pairs halt|resume`` do on
the command line); the tape, like the rest of the market data, ``dpg.trading.view``. The
tape shows no user, order or fee: only what the ``trades:`` WebSocket channel shows.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from dpgnode.api.errors import READ_ERRORS, WRITE_ERRORS, bad_request, problems
from dpgnode.api.policy import requires
from dpgnode.api.schemas.trading import PairData, TradeData, convert
from dpgnode.domain.access import TRADING_MANAGE, TRADING_VIEW
from dpgnode.node import Node
from dpgnode.services.trading.views import trade_view

_TAGS = ["Trading"]


@post(
    "/trading/pairs/{pair:str}/halt", opt=requires(TRADING_MANAGE), sync_to_thread=True,
    status_code=200, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def halt_pair(node: NamedDependency[Node], pair: FromPath[str]) -> PairData:
    """Halt an open pair: new orders are refused; resting orders stay and can be cancelled.

    Halting a halted pair changes nothing; a pair that was never opened is 404.
    """
    state, _ = node.trading.halt_pair(pair)
    return PairData.of(node.trading.pair(pair), state)


@post(
    "/trading/pairs/{pair:str}/resume", opt=requires(TRADING_MANAGE), sync_to_thread=True,
    status_code=200, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def resume_pair(node: NamedDependency[Node], pair: FromPath[str]) -> PairData:
    """Resume a halted pair: it accepts orders again (resuming an open pair changes nothing)."""
    state, _ = node.trading.resume_pair(pair)
    return PairData.of(node.trading.pair(pair), state)


@get(
    "/trading/tape/{pair:str}", opt=requires(TRADING_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS, 404),
)
def tape(
    node: NamedDependency[Node],
    pair: FromPath[str],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    before: Annotated[
        str | None, QueryParameter(description="Trade seq to page from (exclusive)")
    ] = None,
) -> list[TradeData]:
    """The pair's latest trades, newest first: price, quantity, value and taker side."""
    config = node.trading.pair(pair)
    cursor = None
    if before is not None:
        if not before.isdigit() or len(before) > 18:
            raise bad_request("before", "must be a trade seq (a non-negative integer)")
        cursor = int(before)
    found = node.trading.trades(pair=pair, limit=limit, before=cursor)
    result: list[TradeData] = [
        convert(trade_view(t, config, node.assets), TradeData) for t in found
    ]
    return result


ROUTES = [halt_pair, resume_pair, tape]
