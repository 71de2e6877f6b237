"""Positions by the average-cost method, in exact integers. Pure arithmetic.

A position holds a signed quantity of base units and the signed quote units that quantity
cost (a short's cost is negative: what selling it brought). A fill in the position's
direction adds to both. A fill against it closes part or all of the position: the closed
part releases its share of the cost (``cost * closed / |quantity|``, truncated toward zero
so the rest stays in the remaining cost and nothing is lost) and realizes the difference
with the fill's value for that part; what exceeds the position opens one the other way.
Fees are kept apart from realized P&L. Unrealized P&L is the position's value at a price
minus its cost.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dpgnode.ports.trading import Position, Side


def _share(amount: int, part: int, whole: int) -> int:
    """``amount * part / whole`` truncated toward zero (``0 < part <= whole``)."""
    magnitude = abs(amount) * part // whole
    return magnitude if amount >= 0 else -magnitude


def empty_position(user_id: str, pair: str, at: datetime) -> Position:
    """A user's position before their first trade in ``pair``."""
    return Position(user_id, pair, 0, 0, 0, 0, at)


def apply_fill(
    position: Position, side: Side, units: int, value: int, fee: int, at: datetime
) -> Position:
    """The position after a fill of ``units`` base units worth ``value`` quote units."""
    signed = units if side is Side.BUY else -units
    cash = value if side is Side.BUY else -value
    quantity, cost, realized = position.quantity, position.cost, position.realized_pnl
    if quantity == 0 or (quantity > 0) == (signed > 0):
        quantity, cost = quantity + signed, cost + cash
    else:
        held = abs(quantity)
        closed = min(units, held)
        released = _share(cost, closed, held)
        closed_cash = cash if closed == units else _share(cash, closed, units)
        # Closing a long sells (cash < 0 received as |cash|); closing a short buys back.
        realized += -closed_cash - released
        cost -= released
        quantity += signed
        cost += cash - closed_cash
    return replace(
        position, quantity=quantity, cost=cost, realized_pnl=realized,
        fees=position.fees + fee, updated_at=at,
    )


def unrealized(position: Position, mark_value: int) -> int:
    """P&L of the open quantity if it were valued at ``mark_value`` quote units (|quantity|)."""
    signed_value = mark_value if position.quantity >= 0 else -mark_value
    return signed_value - position.cost
