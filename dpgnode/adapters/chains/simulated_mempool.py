"""The simulated chain's transactions and its mempool (see ``simulated``).

The mempool keeps transactions in arrival order, which is also a topological order (a child
always arrives after its parents), and indexes them by the outpoints they spend, so the
conflicts of a new transaction and the descendants of an evicted one are found directly. It
checks nothing itself: the chain decides what may enter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["Mempool", "Output", "SimTx"]


@dataclass(frozen=True, slots=True)
class Output:
    """Units of the chain's asset paid to an address."""

    address: str
    units: int


@dataclass(frozen=True, slots=True)
class SimTx:
    """A transaction; ``seq`` orders arrivals, so a child always sorts after its parents."""

    txid: str
    inputs: tuple[str, ...]
    outputs: tuple[Output, ...]
    replaceable: bool
    seq: int

    def outpoint(self, vout: int) -> str:
        """The outpoint of output ``vout`` (what a child spends)."""
        return f"{self.txid}:{vout}"


def parent_txid(outpoint: str) -> str:
    """The transaction whose output ``outpoint`` is."""
    return outpoint.partition(":")[0]


class Mempool:
    """Unconfirmed transactions in arrival order, indexed by the outpoints they spend."""

    def __init__(self) -> None:
        self._txs: dict[str, SimTx] = {}
        self._spent: dict[str, str] = {}

    def __contains__(self, txid: object) -> bool:
        return txid in self._txs

    def __iter__(self) -> Iterator[SimTx]:
        return iter(self._txs.values())

    def get(self, txid: str) -> SimTx | None:
        """The pending transaction ``txid``, if any."""
        return self._txs.get(txid)

    def spender(self, outpoint: str) -> str | None:
        """The pending transaction spending ``outpoint``, if any."""
        return self._spent.get(outpoint)

    def conflicts(self, inputs: Iterable[str]) -> set[str]:
        """Pending transactions spending any of ``inputs``."""
        return {self._spent[op] for op in inputs if op in self._spent}

    def with_descendants(self, txids: set[str]) -> set[str]:
        """``txids`` and every pending transaction spending their outputs, transitively."""
        found = set(txids)
        for tx in self._txs.values():  # arrival order: parents before children
            if tx.txid not in found and any(parent_txid(op) in found for op in tx.inputs):
                found.add(tx.txid)
        return found

    def add(self, tx: SimTx) -> None:
        """Append ``tx`` (the caller made sure it conflicts with nothing here)."""
        self._txs[tx.txid] = tx
        for op in tx.inputs:
            self._spent[op] = tx.txid

    def evict(self, txids: Iterable[str]) -> None:
        """Remove ``txids`` (alone: descendants stay unless named)."""
        for txid in txids:
            tx = self._txs.pop(txid, None)
            if tx is not None:
                for op in tx.inputs:
                    if self._spent.get(op) == txid:
                        del self._spent[op]

    def drain(self) -> list[SimTx]:
        """Empty the mempool; what it held, in arrival order."""
        held = list(self._txs.values())
        self._txs.clear()
        self._spent.clear()
        return held

    def copy(self) -> Mempool:
        """An independent copy (to put back when a reorganisation is refused)."""
        clone = Mempool()
        clone._txs = dict(self._txs)
        clone._spent = dict(self._spent)
        return clone
