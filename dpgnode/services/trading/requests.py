"""An order request as a user sends it, and its validation into the pair's ticks and lots."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from dpgnode.domain.exchange import TimeInForce
from dpgnode.domain.exchange.pair import Pair
from dpgnode.errors import ValidationError
from dpgnode.ports.trading import OrderType, Side
from dpgnode.services.trading.commands import NewOrder

_USER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # a ledger owner id
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a user asks for; decimal strings as received (validated by the service)."""

    user_id: str
    pair: str
    side: Side
    type: OrderType
    quantity: str
    price: str | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    client_order_id: str | None = None
    expires_at: datetime | None = None
    trigger_price: str | None = None
    """Stop orders: the last trade price that fires them."""
    protection_price: str | None = None
    """Stop-market orders: the worst price they may trade at once fired (required for
    buys, whose hold is the quantity's value at this price plus fees)."""


def prepare_order(request: OrderRequest, pair: Pair, order_id: str, now: datetime) -> NewOrder:
    """``request`` on ``pair``'s grid, checked for consistency.

    Raises:
        ValidationError: naming the field at fault: a malformed or off-grid ``quantity`` or
            ``price``, a size out of the pair's bounds, a limit order without a price, a
            post-only or expiring order that is not a GTC limit order, an ``expiresAt`` not
            in the future, a malformed ``clientOrderId`` or user id; for stops a missing
            or off-grid ``triggerPrice``, a stop-market buy without ``protectionPrice``.
    """
    if not isinstance(request.user_id, str) or not _USER_ID.fullmatch(request.user_id):
        raise ValidationError("invalid trading user id", field="userId")
    lots = pair.to_lots(request.quantity, field="quantity")
    ticks = None if request.price is None else pair.to_ticks(request.price, field="price")
    if request.type.is_stop:
        return _prepare_stop(request, pair, order_id, lots, ticks)
    _refuse_stop_fields(request)
    tif = TimeInForce(request.time_in_force)
    if request.type is OrderType.LIMIT and ticks is None:
        raise ValidationError("a limit order needs a price", field="price")
    if request.type is OrderType.MARKET:
        if request.post_only:
            raise ValidationError("a market order cannot be post-only", field="postOnly")
        if request.expires_at is not None:
            raise ValidationError("a market order cannot expire", field="expiresAt")
        tif = TimeInForce.IOC
    if request.post_only and tif is not TimeInForce.GTC:
        raise ValidationError("post-only orders are good-till-cancelled", field="postOnly")
    if request.expires_at is not None:
        if tif is not TimeInForce.GTC:
            raise ValidationError("only good-till-cancelled orders expire", field="expiresAt")
        if request.expires_at <= now:
            raise ValidationError("expiresAt must be in the future", field="expiresAt")
    return NewOrder(
        id=order_id, user_id=request.user_id, pair=pair, side=request.side, type=request.type,
        tif=tif, post_only=request.post_only, ticks=ticks, lots=lots,
        client_order_id=_client_id(request), expires_at=request.expires_at,
    )


def _refuse_stop_fields(request: OrderRequest) -> None:
    for name, value in (("triggerPrice", request.trigger_price),
                        ("protectionPrice", request.protection_price)):
        if value is not None:
            raise ValidationError(f"only stop orders take {name}", field=name)


def _prepare_stop(
    request: OrderRequest, pair: Pair, order_id: str, lots: int, limit: int | None
) -> NewOrder:
    """A stop-limit (``price`` given: a GTC limit once fired) or stop-market (IOC) order."""
    if request.trigger_price is None:
        raise ValidationError("a stop order needs a triggerPrice", field="triggerPrice")
    trigger = pair.to_ticks(request.trigger_price, field="triggerPrice")
    if request.post_only:
        raise ValidationError("a stop order cannot be post-only", field="postOnly")
    if request.expires_at is not None:
        raise ValidationError("stop orders do not expire: cancel them", field="expiresAt")
    if TimeInForce(request.time_in_force) is not TimeInForce.GTC:
        raise ValidationError(
            "a stop-limit order rests as GTC once fired, a stop-market one is IOC",
            field="timeInForce",
        )
    ticks: int | None
    if limit is not None:
        if request.protection_price is not None:
            raise ValidationError(
                "give price (stop-limit) or protectionPrice (stop-market), not both",
                field="protectionPrice",
            )
        ticks, tif = limit, TimeInForce.GTC
    else:
        protection = request.protection_price
        bound = None if protection is None else pair.to_ticks(protection, field="protectionPrice")
        if bound is None and request.side is Side.BUY:
            raise ValidationError(
                "a stop-market buy needs a protectionPrice (the highest price it may pay): "
                "its hold is the quantity's value at that price plus fees",
                field="protectionPrice",
            )
        ticks, tif = bound, TimeInForce.IOC
    return NewOrder(
        id=order_id, user_id=request.user_id, pair=pair, side=request.side, type=request.type,
        tif=tif, post_only=False, ticks=ticks, lots=lots,
        client_order_id=_client_id(request), expires_at=None, trigger_ticks=trigger,
    )


def _client_id(request: OrderRequest) -> str | None:
    client_id = request.client_order_id
    if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
        raise ValidationError(
            "clientOrderId must be 1-64 characters of A-Z a-z 0-9 _ . : -",
            field="clientOrderId",
        )
    return client_id
