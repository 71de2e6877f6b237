"""Pro-rata allocation of an incoming quantity across the resting orders of one price level.

Invariants :func:`pro_rata_shares` keeps (property-tested):
- the shares sum to exactly the incoming quantity when it is smaller than the level's total,
  and each share is at most the order's remaining quantity;
- each order first gets the floor of its proportional share (quantities are whole lots, so
  flooring is rounding down to the lot size); the lots left over go one at a time to the
  orders in time priority (oldest first), never two to the same order.
"""

from __future__ import annotations

from collections.abc import Sequence


def pro_rata_shares(incoming: int, sizes: Sequence[int]) -> list[int]:
    """Split ``incoming`` lots across resting orders of ``sizes`` lots, oldest first.

    Args:
        incoming: lots the incoming order still wants at this level (> 0).
        sizes: remaining lots of each live resting order, in time priority (all > 0).

    Returns:
        The lots each resting order trades, in the same order as ``sizes``. When
        ``incoming`` covers the whole level, every order is filled completely.
    """
    total = sum(sizes)
    if incoming >= total:
        return list(sizes)
    shares = [size * incoming // total for size in sizes]
    # Fewer lots are left over than there are orders: sum(floor(x)) > sum(x) - len(sizes).
    # An order's floored share is below its size here (incoming < total), so one more lot
    # never overfills it.
    for position in range(incoming - sum(shares)):
        shares[position] += 1
    return shares
