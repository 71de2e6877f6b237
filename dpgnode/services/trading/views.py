"""Orders, trades, depth and tickers as JSON-ready data: the one place that formats them.

Used for outbox event payloads (and so the WebSocket feed) and for API and CLI output, so
a client sees the same fields everywhere. Quantities are decimal strings with the base
asset's decimals, values and fees with the quote asset's, prices normalised on the pair's
tick grid (``"65000.5"``); times are unix seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dpgnode.domain.events import JsonValue
from dpgnode.domain.exchange.pair import Pair
from dpgnode.domain.money import AssetRegistry, format_units
from dpgnode.ports.trading import OrderRecord, PairState, Side, TradeRecord

View = dict[str, JsonValue]


def pair_view(pair: Pair, state: PairState | None) -> View:
    """A configured pair, its grid, fees and status (``closed``: never opened)."""
    return {
        "symbol": pair.symbol, "base": pair.base.code, "quote": pair.quote.code,
        "tick": str(pair.tick), "lot": str(pair.lot), "minSize": pair.format_qty(pair.min_qty),
        "maxSize": pair.format_qty(pair.max_qty), "makerFee": str(pair.maker_fee),
        "takerFee": str(pair.taker_fee), "mode": str(pair.mode),
        "status": str(state.status) if state is not None else "closed",
    }


def unix(at: datetime | None) -> int | None:
    """Unix seconds of ``at``."""
    return None if at is None else int(at.timestamp())


def average_price(pair: Pair, base_units: int, quote_units: int) -> str | None:
    """``quote_units / base_units`` as a price, truncated to two digits below the tick."""
    if base_units == 0:
        return None
    scale = pair.tick.scale + 2
    scaled = quote_units * 10 ** (pair.base.decimals + scale) // (
        base_units * 10**pair.quote.decimals
    )
    text = format_units(scaled, scale)
    return text.rstrip("0").rstrip(".") if "." in text else text


def order_view(order: OrderRecord, pair: Pair, assets: AssetRegistry) -> View:
    """An order as clients see it."""
    base, quote = pair.base.code, pair.quote.code
    return {
        "id": order.id,
        "pair": order.pair,
        "userId": order.user_id,
        "clientOrderId": order.client_order_id,
        "side": str(order.side),
        "type": str(order.type),
        "timeInForce": order.tif,
        "postOnly": order.post_only,
        "price": order.price,
        "quantity": assets.format(order.quantity, base),
        "filled": assets.format(order.filled, base),
        "remaining": assets.format(order.remaining, base),
        "averagePrice": average_price(pair, order.filled, order.quote_filled),
        "quoteFilled": assets.format(order.quote_filled, quote),
        "fee": assets.format(order.fee_paid, quote),
        "feeAsset": quote,
        "status": str(order.status),
        "reason": order.reason,
        "createdTime": unix(order.created_at),
        "updatedTime": unix(order.updated_at),
        "expiresTime": unix(order.expires_at),
        "triggerPrice": order.trigger_price,
        "stopType": _stop_type(order),
    }


def _stop_type(order: OrderRecord) -> str | None:
    """``limit`` (a GTC limit once fired) or ``market`` (IOC) for a stop, else ``None``."""
    if not order.type.is_stop:
        return None
    return "limit" if order.tif == "GTC" else "market"


def trade_view(
    trade: TradeRecord, pair: Pair, assets: AssetRegistry, user_id: str | None = None
) -> View:
    """A trade; with ``user_id``, also that user's side, role, order and fee."""
    base, quote = pair.base.code, pair.quote.code
    view: View = {
        "id": trade.id,
        "seq": trade.seq,
        "pair": trade.pair,
        "price": trade.price,
        "quantity": assets.format(trade.quantity, base),
        "value": assets.format(trade.value, quote),
        "takerSide": str(trade.taker_side),
        "createdTime": unix(trade.created_at),
    }
    if user_id is not None:
        buyer = trade.buyer_id == user_id
        side = Side.BUY if buyer else Side.SELL
        view.update(
            side=str(side),
            role="taker" if side is trade.taker_side else "maker",
            orderId=trade.buy_order_id if buyer else trade.sell_order_id,
            fee=assets.format(trade.buyer_fee if buyer else trade.seller_fee, quote),
            feeAsset=quote,
        )
    return view


def level(pair: Pair, ticks: int, lots: int) -> tuple[str, str]:
    """A depth level as ``(price, quantity)`` strings."""
    return pair.format_price(ticks), format_units(pair.base_units(lots), pair.base.decimals)


def levels_view(pair: Pair, levels: Sequence[tuple[int, int]]) -> list[JsonValue]:
    """``[[price, quantity], ...]`` of depth levels given as ``(ticks, lots)``."""
    formatted: list[JsonValue] = [list(level(pair, ticks, lots)) for ticks, lots in levels]
    return formatted
