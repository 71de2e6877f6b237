"""An order book kept current from the trading feed: snapshot, then consecutive deltas.

The feed sends a ``snapshot`` (``seq`` N) and then ``delta`` messages N+1, N+2, ... whose
levels carry the new total quantity at a price (zero: the level is gone). A delta that does
not follow on means messages were lost: :meth:`BookState.apply` says so, and the caller
asks for a fresh snapshot instead of showing a wrong book.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .formatting import dec

Level = tuple[str, str]


@dataclass
class BookState:
    """Levels of one pair by price string; ``seq`` is the last applied sequence number."""

    pair: str
    seq: int = -1
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    @property
    def synced(self) -> bool:
        return self.seq >= 0

    def load(self, seq: int, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]
             ) -> None:
        """Replace everything with a snapshot (REST or feed)."""
        self.seq = seq
        self.bids = {str(p): str(q) for p, q in bids}
        self.asks = {str(p): str(q) for p, q in asks}

    def apply(self, message_type: str, data: Mapping[str, Any]) -> bool:
        """Apply a feed ``snapshot`` or ``delta``; ``False`` when a delta does not follow on.

        A delta the book already covers (``seq`` at or below ours) is ignored.
        """
        seq = data.get("seq")
        if not isinstance(seq, int):
            return False
        if message_type == "snapshot":
            self.load(seq, data.get("bids", []), data.get("asks", []))
            return True
        if seq <= self.seq:
            return True
        if not self.synced or seq != self.seq + 1:
            return False
        for side, levels in ((self.bids, data.get("bids", [])), (self.asks, data.get("asks", []))):
            for price, quantity in levels:
                if dec(quantity) == 0:
                    side.pop(str(price), None)
                else:
                    side[str(price)] = str(quantity)
        self.seq = seq
        return True

    def best_bids(self, count: int) -> list[Level]:
        """Highest bids first."""
        return sorted(self.bids.items(), key=lambda level: dec(level[0]), reverse=True)[:count]

    def best_asks(self, count: int) -> list[Level]:
        """Lowest asks first."""
        return sorted(self.asks.items(), key=lambda level: dec(level[0]))[:count]

    def spread(self) -> Decimal | None:
        bids, asks = self.best_bids(1), self.best_asks(1)
        if not bids or not asks:
            return None
        return dec(asks[0][0]) - dec(bids[0][0])
