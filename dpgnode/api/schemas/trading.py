"""Trading bodies.

Quantities, values and fees are decimal strings with the asset's decimals; prices are
decimal strings on the pair's tick grid (quote per one whole base unit).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from dpgnode.api.schemas.base import Input, Output
from dpgnode.domain.exchange.pair import Pair
from dpgnode.domain.money import format_units
from dpgnode.ports.trading import Candle, PairState
from dpgnode.services.trading import Depth, PositionValue, Ticker
from dpgnode.services.trading.views import average_price, level, pair_view


class PlaceOrderRequest(Input):
    pair: str
    """``BASE-QUOTE``, e.g. ``BTC-USD``."""
    side: Literal["buy", "sell"]
    quantity: str
    """Base-asset quantity on the pair's lot grid."""
    type: Literal["limit", "market", "stop_loss", "take_profit"] = "limit"
    """``stop_loss`` and ``take_profit`` are stop orders: they wait until the last trade
    price reaches ``triggerPrice`` (stop-loss: a sell fires at or below it, a buy at or
    above; take-profit the other way), then become a limit order at ``price`` (stop-limit)
    or, without ``price``, a market order (stop-market). Their hold is taken at placement:
    the quantity for sells, for buys its value at ``price`` / ``protectionPrice`` plus the
    fee. Stops that fire together run in the order they were placed."""
    price: str | None = None
    """Limit price (required for limit orders); for a market order the worst price it may
    trade at (optional); for a stop order its limit once fired (stop-limit)."""
    trigger_price: str | None = None
    """Stop orders: the last trade price that fires them (required)."""
    protection_price: str | None = None
    """Stop-market orders: the worst price they may trade at once fired; what cannot trade
    within it is cancelled. Required for stop-market buys (it bounds their hold)."""
    time_in_force: Literal["GTC", "IOC", "FOK"] | None = None
    """Limit orders: GTC (default), IOC or FOK. Market orders are always IOC; stop-limit
    orders rest as GTC once fired, stop-market ones are IOC (leave it out for stops)."""
    post_only: bool | None = None
    """Refuse the order instead of letting it trade at once (GTC limit orders)."""
    client_order_id: str | None = None
    """Your id for the order (1-64 of ``A-Z a-z 0-9 _ . : -``): placing it again returns the
    first order instead of a second one."""
    expires_at: int | None = None
    """Unix seconds at which a resting GTC order expires (its hold is released)."""


class OrderData(Output):
    id: str
    pair: str
    user_id: str
    client_order_id: str | None
    side: str
    type: str
    time_in_force: str
    post_only: bool
    price: str | None
    quantity: str
    filled: str
    remaining: str
    average_price: str | None
    quote_filled: str
    fee: str
    fee_asset: str
    status: str
    """``pending_trigger`` (a stop not fired yet; its hold is taken), ``open`` (resting,
    maybe partly filled), ``filled``, ``cancelled`` or ``expired``."""
    reason: str | None
    """Why it closed unfilled: ``cancelled``, ``operator``, ``expired``, ``ioc``, ``fok``,
    ``market`` (no more liquidity), ``self_trade``."""
    created_time: int
    updated_time: int
    expires_time: int | None
    trigger_price: str | None = None
    """Stop orders: the trigger (last trade price)."""
    stop_type: str | None = None
    """Stop orders: ``limit`` (stop-limit) or ``market`` (stop-market, ``price`` is then
    its protection price)."""


class TradeData(Output):
    id: str
    seq: int
    pair: str
    price: str
    quantity: str
    value: str
    taker_side: str
    created_time: int
    side: str | None = None
    role: str | None = None
    order_id: str | None = None
    fee: str | None = None
    fee_asset: str | None = None


class PlacedOrderData(Output):
    order: OrderData
    trades: list[TradeData]


class PairData(Output):
    symbol: str
    base: str
    quote: str
    tick: str
    lot: str
    min_size: str
    max_size: str
    maker_fee: str
    taker_fee: str
    mode: str
    status: str
    """``open``, ``halted``, or ``closed`` (configured, never opened by the operator)."""

    @classmethod
    def of(cls, pair: Pair, state: PairState | None) -> PairData:
        result: PairData = msgspec.convert(pair_view(pair, state), cls)
        return result


class OrderBookData(Output):
    pair: str
    status: str
    seq: int
    """Book sequence number: WebSocket deltas continue from it (``seq + 1``, ...)."""
    bids: list[list[str]]
    """``[price, quantity]`` per level, best (highest) first."""
    asks: list[list[str]]
    """``[price, quantity]`` per level, best (lowest) first."""

    @classmethod
    def of(cls, depth: Depth) -> OrderBookData:
        return cls(
            pair=depth.pair.symbol, status=str(depth.status), seq=depth.seq,
            bids=_levels(depth.pair, depth.bids), asks=_levels(depth.pair, depth.asks),
        )


def _levels(pair: Pair, levels: list[tuple[int, int]]) -> list[list[str]]:
    return [list(level(pair, ticks, lots)) for ticks, lots in levels]


class TickerData(Output):
    pair: str
    status: str
    last_price: str | None
    best_bid: str | None
    best_ask: str | None
    open_24h: str | None = msgspec.field(name="open24h")
    high_24h: str | None = msgspec.field(name="high24h")
    low_24h: str | None = msgspec.field(name="low24h")
    volume_24h: str = msgspec.field(name="volume24h")
    quote_volume_24h: str = msgspec.field(name="quoteVolume24h")
    trades_24h: int = msgspec.field(name="trades24h")

    @classmethod
    def of(cls, ticker: Ticker) -> TickerData:
        pair = ticker.pair

        def price(ticks: int | None) -> str | None:
            return None if ticks is None else pair.format_price(ticks)

        return cls(
            pair=pair.symbol, status=str(ticker.status), last_price=ticker.last_price,
            best_bid=price(ticker.best_bid), best_ask=price(ticker.best_ask),
            open_24h=ticker.open_24h, high_24h=ticker.high_24h, low_24h=ticker.low_24h,
            volume_24h=_units(ticker.volume_24h, pair.base.decimals),
            quote_volume_24h=_units(ticker.quote_volume_24h, pair.quote.decimals),
            trades_24h=ticker.trades_24h,
        )


class CandleData(Output):
    start_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int

    @classmethod
    def of(cls, candle: Candle, pair: Pair) -> CandleData:
        return cls(
            start_time=int(candle.start.timestamp()), open=candle.open, high=candle.high,
            low=candle.low, close=candle.close,
            volume=_units(candle.volume, pair.base.decimals),
            quote_volume=_units(candle.quote_volume, pair.quote.decimals), trades=candle.trades,
        )


class PositionData(Output):
    pair: str
    base: str
    quote: str
    quantity: str
    """Signed base quantity: negative when the user sold more than they bought."""
    average_price: str | None
    cost: str
    realized_pnl: str
    unrealized_pnl: str | None
    """At ``lastPrice``; null before the pair's first trade."""
    last_price: str | None
    fees: str

    @classmethod
    def of(cls, value: PositionValue) -> PositionData:
        pair, position = value.pair, value.position
        quote = pair.quote.decimals
        average = average_price(pair, abs(position.quantity), abs(position.cost))
        return cls(
            pair=pair.symbol, base=pair.base.code, quote=pair.quote.code,
            quantity=_units(position.quantity, pair.base.decimals), average_price=average,
            cost=_units(position.cost, quote), realized_pnl=_units(position.realized_pnl, quote),
            unrealized_pnl=(
                None if value.unrealized_pnl is None else _units(value.unrealized_pnl, quote)
            ),
            last_price=value.last_price, fees=_units(position.fees, quote),
        )


def _units(units: int, decimals: int) -> str:
    return format_units(units, decimals)


def convert(view: dict[str, Any], kind: type[Output]) -> Any:
    """A service view (``dpgnode.services.trading.views``) as a response struct."""
    return msgspec.convert(view, kind)
