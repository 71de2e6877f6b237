"""The exchange: market data, a user's orders, trades and positions (``/api/v1/trading``).

Market data (pairs, books, tickers, candles) needs ``dpg.trading.view``; a user's own data
needs a key bound to a trading user (``dpg.trading.view:<userId>``), and placing or
cancelling orders ``dpg.trading.trade:<userId>``. Another user's order is "not found".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from litestar import Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter

from dpgnode.api.errors import READ_ERRORS, WRITE_ERRORS, bad_request, problems
from dpgnode.api.policy import requires
from dpgnode.api.schemas.trading import (
    CandleData,
    OrderBookData,
    OrderData,
    PairData,
    PlacedOrderData,
    PlaceOrderRequest,
    PositionData,
    TickerData,
    TradeData,
    convert,
)
from dpgnode.domain.access import TRADING_TRADE, TRADING_VIEW, ApiKey
from dpgnode.domain.exchange import TimeInForce
from dpgnode.errors import PermissionDeniedError, ValidationError
from dpgnode.node import Node
from dpgnode.ports.trading import OrderRecord, OrderStatus, OrderType, Side, TradeRecord
from dpgnode.services.trading import OrderRequest
from dpgnode.services.trading.views import order_view, trade_view

_TAGS = ["Trading"]
OrderId = Annotated[str, PathParameter(name="orderId")]


def trading_user(api_key: ApiKey, permission: str) -> str:
    """The trading user the key acts for with ``permission``, else 403 explaining why.

    The permission must come from the grant bound to the user (see
    :meth:`ApiKey.acting_user`): a key with ``dpg.trading.view:alice`` plus an unbound
    ``dpg.trading.trade`` reads alice's orders but may not trade as her.
    """
    user = api_key.acting_user(permission)
    if user is not None:
        return user
    bound = next((g for g in api_key.permissions if g.user_id is not None), None)
    if bound is None:
        raise PermissionDeniedError(
            "this API key is not bound to a trading user: issue one with the permission "
            "dpg.trading.trade:<userId> (or dpg.trading.view:<userId>)",
            details={"permission": permission},
        )
    raise PermissionDeniedError(
        f"this API key acts for user {bound.user_id} only with {bound}: "
        f"this needs {permission}:{bound.user_id}",
        details={"permission": permission},
    )


def _order(node: Node, order: OrderRecord) -> OrderData:
    view = order_view(order, node.trading.pair(order.pair), node.assets)
    result: OrderData = convert(view, OrderData)
    return result


def _trade(node: Node, trade: TradeRecord, user_id: str | None) -> TradeData:
    view = trade_view(trade, node.trading.pair(trade.pair), node.assets, user_id)
    result: TradeData = convert(view, TradeData)
    return result


@get(
    "/trading/pairs", opt=requires(TRADING_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def list_pairs(node: NamedDependency[Node]) -> list[PairData]:
    """Every configured pair, its grid, fees and status (``closed`` until an operator opens it)."""
    return [PairData.of(pair, state) for pair, state in node.trading.pairs()]


@get(
    "/trading/orderbook/{pair:str}", opt=requires(TRADING_VIEW), sync_to_thread=True,
    tags=_TAGS, responses=problems(*READ_ERRORS, 404, 422),
)
def order_book(
    node: NamedDependency[Node],
    pair: FromPath[str],
    depth: Annotated[int, QueryParameter(ge=1, le=500, description="Levels per side")] = 50,
) -> OrderBookData:
    """The book aggregated per price level, with its sequence number for WebSocket deltas."""
    return OrderBookData.of(node.trading.depth(pair, depth))


@get(
    "/trading/ticker/{pair:str}", opt=requires(TRADING_VIEW), sync_to_thread=True,
    tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def ticker(node: NamedDependency[Node], pair: FromPath[str]) -> TickerData:
    """Last price, best bid and ask, and the last 24 hours' range and volume."""
    return TickerData.of(node.trading.ticker(pair))


@get(
    "/trading/candles/{pair:str}", opt=requires(TRADING_VIEW), sync_to_thread=True,
    tags=_TAGS, responses=problems(*READ_ERRORS, 404, 422),
)
def candles(
    node: NamedDependency[Node],
    pair: FromPath[str],
    interval: FromQuery[Literal["1m", "5m", "1h", "1d"]] = "1m",
    since: Annotated[int | None, QueryParameter(ge=0, description="Unix seconds")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> list[CandleData]:
    """OHLCV candles, oldest first: from ``since``, or the latest ``limit``."""
    start = datetime.fromtimestamp(since, UTC) if since is not None else None
    found = node.trading.candles(pair, interval, start, limit)
    pair_config = node.trading.pair(pair)
    return [CandleData.of(candle, pair_config) for candle in found]


@post(
    "/trading/orders", opt=requires(TRADING_TRADE), tags=_TAGS,
    responses=problems(*WRITE_ERRORS, 404),
)
async def place_order(
    node: NamedDependency[Node], api_key: NamedDependency[ApiKey], data: JSONBody[PlaceOrderRequest]
) -> Response[PlacedOrderData]:
    """Place an order; its balance goes on hold first (quote for buys incl. fee, base for sells).

    Stop orders (``stop_loss``, ``take_profit``) need ``triggerPrice`` and stay
    ``pending_trigger`` until the last trade price reaches it; a stop-market buy needs a
    ``protectionPrice`` (its hold is the value at that price plus the fee). 201 with the
    order and the trades it made; 200 when ``clientOrderId`` names an order placed before
    (returned as it is now, without repeating it).
    """
    user = trading_user(api_key, TRADING_TRADE)
    if data.expires_at is not None and data.expires_at > 10**11:
        raise ValidationError("expiresAt must be unix seconds", field="expiresAt")
    request = OrderRequest(
        user_id=user, pair=data.pair, side=Side(data.side), type=OrderType(data.type),
        quantity=data.quantity, price=data.price,
        time_in_force=TimeInForce(data.time_in_force or "GTC"),
        post_only=bool(data.post_only), client_order_id=data.client_order_id,
        expires_at=(
            datetime.fromtimestamp(data.expires_at, UTC) if data.expires_at is not None else None
        ),
        trigger_price=data.trigger_price, protection_price=data.protection_price,
    )
    placed = await node.trading.place_async(request)
    body = PlacedOrderData(
        order=_order(node, placed.order), trades=[_trade(node, t, user) for t in placed.trades]
    )
    return Response(body, status_code=201 if placed.created else 200)


@get(
    "/trading/orders", opt=requires(TRADING_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS, 422),
)
def list_orders(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    pair: FromQuery[str | None] = None,
    status: FromQuery[
        Literal["pending_trigger", "open", "filled", "cancelled", "expired"] | None
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    before: Annotated[str | None, QueryParameter(description="Order id to page from")] = None,
) -> list[OrderData]:
    """The caller's orders, newest first."""
    user = trading_user(api_key, TRADING_VIEW)
    found = node.trading.orders(
        user_id=user, pair=pair, status=OrderStatus(status) if status else None, limit=limit,
        before=before,
    )
    return [_order(node, order) for order in found]


@get(
    "/trading/orders/{orderId:str}", opt=requires(TRADING_VIEW), sync_to_thread=True,
    tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def get_order(
    node: NamedDependency[Node], api_key: NamedDependency[ApiKey], order_id: OrderId
) -> OrderData:
    """One of the caller's orders."""
    return _order(node, node.trading.order(order_id, trading_user(api_key, TRADING_VIEW)))


@delete(
    "/trading/orders/{orderId:str}", opt=requires(TRADING_TRADE), tags=_TAGS,
    status_code=200, responses=problems(*WRITE_ERRORS, 404),
)
async def cancel_order(
    node: NamedDependency[Node], api_key: NamedDependency[ApiKey], order_id: OrderId
) -> OrderData:
    """Cancel one of the caller's open orders or pending stops; its remaining hold is released."""
    user = trading_user(api_key, TRADING_TRADE)
    return _order(node, await node.trading.cancel_async(order_id, user))


@get(
    "/trading/trades", opt=requires(TRADING_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS, 422),
)
def list_trades(
    node: NamedDependency[Node],
    api_key: NamedDependency[ApiKey],
    pair: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    before: Annotated[
        str | None, QueryParameter(description="Trade seq to page from (exclusive)")
    ] = None,
) -> list[TradeData]:
    """The caller's trades (as buyer or seller), newest first, with their side, role and fee."""
    user = trading_user(api_key, TRADING_VIEW)
    cursor = None
    if before is not None:
        if not before.isdigit() or len(before) > 18:
            raise bad_request("before", "must be a trade seq (a non-negative integer)")
        cursor = int(before)
    found = node.trading.trades(user_id=user, pair=pair, limit=limit, before=cursor)
    return [_trade(node, trade, user) for trade in found]


@get(
    "/trading/positions", opt=requires(TRADING_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def positions(node: NamedDependency[Node], api_key: NamedDependency[ApiKey]) -> list[PositionData]:
    """The caller's positions per pair: quantity, average entry, realized and unrealized P&L."""
    user = trading_user(api_key, TRADING_VIEW)
    return [PositionData.of(value) for value in node.trading.positions(user)]


ROUTES = [
    list_pairs, order_book, ticker, candles, place_order, list_orders, get_order, cancel_order,
    list_trades, positions,
]
