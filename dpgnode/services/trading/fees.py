"""How much an order puts on hold and what each of its fills costs in fees. Pure arithmetic.

Fees are charged in the quote asset: a buyer pays the trade's value plus its fee, a seller
receives the value minus its fee. A fee rate applies to the *cumulative* value an order
filled in one role (maker or taker), so an order's total fee is exactly
``taker_fee.of(taker value) + maker_fee.of(maker value)``: splitting an order into many
small fills never costs more than one fill of the same value (each fill pays the increase
of the rounded-up cumulative fee).

Hold bounds (what a buy must reserve so every possible sequence of fills is covered):
``ceil(a) + ceil(b) <= ceil(a + b) + 1``, so with both rates non-zero the fees of a limit
buy that fills ``Vt`` as taker and ``Vm`` as maker, ``Vt + Vm <= N`` (its notional at the
limit price), stay within ``max(maker, taker).of(N) + 1``; with one rate zero, within
``max(...).of(N)``. A market buy's fills are a prefix of the book it walked when placed,
so their value stays within the walked cost and their fee within ``taker_fee.of(cost)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from dpgnode.domain.exchange.pair import Pair


def limit_buy_hold(pair: Pair, ticks: int, lots: int) -> int:
    """Quote units a limit buy of ``lots`` at ``ticks`` puts on hold (value + worst fee)."""
    notional = pair.quote_units(ticks, lots)
    worst = max(pair.maker_fee.of(notional), pair.taker_fee.of(notional))
    both = pair.maker_fee.numerator > 0 and pair.taker_fee.numerator > 0
    return notional + worst + (1 if both else 0)


def market_buy_hold(
    pair: Pair, asks: Iterable[tuple[int, int]], lots: int, protection: int | None
) -> int:
    """Quote units a market buy puts on hold: the cost of walking ``asks`` plus taker fee.

    Args:
        pair: the pair.
        asks: the ask side as ``(ticks, lots)`` levels, best first.
        lots: the order's quantity.
        protection: the highest price the order may trade at, or ``None``.
    """
    cost = 0
    left = lots
    for ticks, available in asks:
        if left == 0 or (protection is not None and ticks > protection):
            break
        take = min(left, available)
        cost += pair.quote_units(ticks, take)
        left -= take
    return cost + pair.taker_fee.of(cost)


def fill_fee(pair: Pair, role_value_before: int, value: int, *, maker: bool) -> int:
    """The fee of one fill of ``value`` quote units.

    Args:
        pair: the pair (its maker and taker rates).
        role_value_before: quote units the order filled before, in the same role.
        value: this fill's value.
        maker: whether the order is the resting side of this fill.
    """
    rate = pair.maker_fee if maker else pair.taker_fee
    return rate.of(role_value_before + value) - rate.of(role_value_before)
