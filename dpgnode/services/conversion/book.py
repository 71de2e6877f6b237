"""The book route: a conversion as one market order on the trading service's books.

``TradingBookExecutor`` is the ``BookExecutor`` port over :class:`TradingService`. A user
selling ``X`` for ``Y`` trades on the ``X-Y`` book (a market sell of ``X``) or on the
``Y-X`` book (a market buy of ``Y`` paid in ``X``). The worst acceptable rate becomes the
order's protection price, fees included (the book's taker fee is charged in its quote
asset), so no fill is worse than the bound except by the fee's rounding (below one base
unit). Quantities are whole lots: what does not fit a lot stays with the user.
"""

from __future__ import annotations

import math
from fractions import Fraction

from dpgnode.domain.exchange.pair import Pair, Rounding
from dpgnode.domain.money import Amount, Asset
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.ports.conversion import BookFill
from dpgnode.ports.trading import OrderType, PairStatus, Side
from dpgnode.services.trading import OrderRequest, TradingService


def _fee(pair: Pair) -> Fraction:
    return Fraction(pair.taker_fee.numerator, 10**pair.taker_fee.scale)


def _tick(pair: Pair) -> Fraction:
    return Fraction(pair.tick.units, 10**pair.tick.scale)


def _sized(pair: Pair, lots: int) -> int:
    if lots < pair.min_qty:
        raise ValidationError(
            f"the amount is below the smallest order of the {pair.symbol} book "
            f"({pair.format_qty(pair.min_qty)} {pair.base.code})",
            field="fromAmount",
        )
    return min(lots, pair.max_qty)


def sell_order(pair: Pair, sell: Amount, worst_rate: Fraction) -> tuple[int, int]:
    """Lots and protection ticks of a market sell of ``sell`` (the pair's base asset).

    The seller receives the trade value less the taker fee, so the lowest price is
    ``worst_rate / (1 - fee)``, rounded up to the tick grid.
    """
    lots = _sized(pair, pair.lots_from_units(sell.units))
    lowest = worst_rate / (1 - _fee(pair))
    return lots, max(1, math.ceil(lowest / _tick(pair)))


def buy_order(pair: Pair, sell: Amount, worst_rate: Fraction) -> tuple[int, int]:
    """Lots and protection ticks of a market buy paid with at most ``sell`` (the quote asset).

    ``worst_rate`` is base per quote; the buyer pays the value plus the taker fee, so the
    highest price is ``1 / (worst_rate * (1 + fee))``, rounded down to the tick grid. The
    quantity is the most lots whose cost at that price, fee included, ``sell`` covers.
    """
    highest = 1 / (worst_rate * (1 + _fee(pair)))
    ticks = math.floor(highest / _tick(pair))
    if ticks < 1:
        raise ValidationError("the slippage bound leaves no price to buy at", field="route")

    def cost(lots: int) -> int:
        value = pair.quote_units(ticks, lots, rounding=Rounding.UP)
        return value + pair.taker_fee.of(value)

    per_lot = Fraction(
        ticks * pair.tick.units * pair.lot.units * 10**pair.quote.decimals,
        10 ** (pair.tick.scale + pair.lot.scale),
    )
    lots = math.floor(sell.units / (per_lot * (1 + _fee(pair))))
    while lots > 0 and cost(lots) > sell.units:
        lots -= 1
    return _sized(pair, lots), ticks


class TradingBookExecutor:
    """``BookExecutor`` over the trading service (see the module docstring)."""

    def __init__(self, trading: TradingService) -> None:
        self._trading = trading

    def book(self, sell_asset: str, buy_asset: str) -> tuple[Pair, Side] | None:
        """The open book joining the two assets, and the side a seller of ``sell_asset`` takes."""
        wanted = {f"{sell_asset}-{buy_asset}": Side.SELL, f"{buy_asset}-{sell_asset}": Side.BUY}
        for pair, state in self._trading.pairs():
            side = wanted.get(pair.symbol)
            if side is not None and state is not None and state.status is PairStatus.OPEN:
                return pair, side
        return None

    def joins(self, sell_asset: str, buy_asset: str) -> bool:
        """Whether an open book trades one asset against the other."""
        return self.book(sell_asset, buy_asset) is not None

    def market_convert(
        self,
        owner_id: str,
        sell: Amount,
        buy_asset: Asset,
        worst_rate: Fraction,
        idempotency_key: str,
    ) -> BookFill:
        """Place the market order (idempotent by its client order id ``idempotency_key``)."""
        found = self.book(sell.asset.code, buy_asset.code)
        if found is None:
            raise NotFoundError(
                f"no open order book trades {sell.asset.code} against {buy_asset.code}",
                details={"field": "route"},
            )
        pair, side = found
        lots, ticks = (
            sell_order(pair, sell, worst_rate) if side is Side.SELL
            else buy_order(pair, sell, worst_rate)
        )
        placed = self._trading.place(
            OrderRequest(
                user_id=owner_id, pair=pair.symbol, side=side, type=OrderType.MARKET,
                quantity=pair.format_qty(lots), price=pair.format_price(ticks),
                client_order_id=idempotency_key,
            )
        )
        order = placed.order
        if side is Side.SELL:
            sold, bought = order.filled, order.quote_filled - order.fee_paid
        else:
            sold, bought = order.quote_filled + order.fee_paid, order.filled
        return BookFill(
            order_id=order.id, sold=Amount(sold, sell.asset), bought=Amount(bought, buy_asset),
            entry_ids=tuple(trade.entry_id for trade in placed.trades),
        )
