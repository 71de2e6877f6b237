"""Stop orders: the trigger lists and the firing rounds (mixed into the engine).

Pending stops sit in two sorted lists keyed ``(trigger, seq, id)``: the falling list (sell
stop-loss, buy take-profit: fire at ``last <= trigger``) is read from its high end, the
rising list (buy stop-loss, sell take-profit: fire at ``last >= trigger``) from its low end,
so finding what fires is O(fired). Stops that fire in one round run in placement order
(``seq``); their trades may fire more stops in the next round. While any stop is pending the
engine's ``_slow`` flag sends new orders through the checked path, which fires stops after
each command; with none pending, the hot path pays nothing for this feature.
"""

from __future__ import annotations

from dpgnode.domain.exchange.matching import BookCore
from dpgnode.domain.exchange.types import BUY, MAX_PRICE, OrderId, StopOrder, TimeInForce

_GTC = TimeInForce.GTC
_IOC = TimeInForce.IOC


class StopBook(BookCore):
    """The stop-order part of the engine's state transitions."""

    __slots__ = ()

    def _add_stop(self, entry: StopOrder) -> None:
        self._stops[entry.oid] = entry
        (self._stops_falling if entry.falling else self._stops_rising).add(entry.key)
        self._n_stops += 1
        self._slow = True

    def _forget_stop(self, entry: StopOrder) -> None:
        self._n_stops -= 1
        self._slow = self._halted or bool(self._n_stops)

    def _cancel_stop(self, oid: OrderId) -> None:
        entry = self._stops.pop(oid)
        (self._stops_falling if entry.falling else self._stops_rising).remove(entry.key)
        self._forget_stop(entry)
        self._emit(("cancelled", oid, entry.qty, "cancelled"))

    def _fire_stops(self) -> None:
        """Fire every stop whose condition holds, round after round (see module docstring).

        Called by commands after their own matching; a fired stop's order matches through
        ``_execute``, which never calls back here, so the rounds run in this one loop.
        """
        while self._last is not None:
            last = self._last
            fired: list[tuple[int, int, OrderId]] = []
            falling = self._stops_falling
            while falling and falling[-1][0] >= last:
                fired.append(falling.pop())
            rising = self._stops_rising
            while rising and rising[0][0] <= last:
                fired.append(rising.pop(0))
            if not fired:
                return
            fired.sort(key=lambda key: key[1])
            for _, _, oid in fired:
                self._run_stop(self._stops.pop(oid))

    def _run_stop(self, entry: StopOrder) -> None:
        self._forget_stop(entry)
        self._emit(("triggered", entry.oid))
        if entry.price is None:
            bound = MAX_PRICE if entry.side == BUY else 1
            self._execute(entry.oid, entry.account, entry.side, bound, entry.qty, _IOC, "market")
        else:
            self._execute(entry.oid, entry.account, entry.side, entry.price, entry.qty, _GTC, "")
