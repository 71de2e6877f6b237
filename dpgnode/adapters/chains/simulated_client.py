"""``ChainClient`` over a :class:`SimulatedChain`, with the faults of a real node, by seed.

A real node answers late or not at all, reorganises between two questions, and its
notifications (ZMQ) get lost, repeated or reordered. :class:`Faults` sets how often each
happens; one seeded PRNG per client decides when, so a seed replays the same run:

- ``timeout``: the call raises ``UnavailableError`` after ``timeout_seconds`` of simulated
  time (the chain's clock moves on, nothing else changes);
- ``reorg``: just before answering, the chain reorganises (depth 1..``reorg_depth``), so the
  answer disagrees with the previous one, as between two RPC calls to a real node;
- ``drop`` / ``duplicate`` / ``delay``: a notification is lost, delivered twice, or held back
  and delivered after later ones (out of order). Read them with :meth:`notifications`.

Everything else is exact: the answers are the chain's best chain and mempool at the moment
of the call, reduced to watched addresses as the port's contract says. Blocks are built
once per (block, watched set) and cached.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from dpgnode.adapters.chains.simulated import ChainEvent, SimTx, SimulatedChain
from dpgnode.domain.chains.blocks import BlockRef, ChainBlock, ChainTx, MempoolView, Transfer
from dpgnode.errors import UnavailableError

__all__ = ["NO_FAULTS", "Faults", "SimulatedChainClient"]


@dataclass(frozen=True, slots=True)
class Faults:
    """Probabilities (0..1) of each fault, per call or per notification."""

    timeout: float = 0.0
    timeout_seconds: int = 30
    reorg: float = 0.0
    reorg_depth: int = 3
    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0


NO_FAULTS = Faults()


class SimulatedChainClient:
    """The watcher's view of a simulated chain (implements ``ChainClient``)."""

    def __init__(
        self,
        chain: SimulatedChain,
        *,
        faults: Faults = NO_FAULTS,
        seed: int = 0,
        finality_depth: int | None = None,
    ) -> None:
        self._chain = chain
        self.faults = faults
        """The faults in force; a test may change them between calls."""
        self._rng = random.Random(f"{chain.seed}:{seed}:client")  # noqa: S311 (simulation)
        self._finality_depth = finality_depth
        self._watched: set[str] = set()
        self._cache: dict[str, ChainBlock] = {}
        self._inbox: list[ChainEvent] = []
        self._held: list[ChainEvent] = []
        chain.subscribe(self._hear)

    @property
    def chain(self) -> str:
        return self._chain.name

    @property
    def simulation(self) -> SimulatedChain:
        """The chain behind this client (the demo and tests act on it)."""
        return self._chain

    def watch(self, addresses: Iterable[str]) -> None:
        before = len(self._watched)
        self._watched.update(addresses)
        if len(self._watched) != before:
            self._cache.clear()

    def tip(self) -> BlockRef:
        self._call("tip")
        return self._chain.tip

    def block_hash(self, height: int) -> str | None:
        self._call("block_hash")
        block = self._chain.block_at(height)
        return None if block is None else block.hash

    def block(self, height: int) -> ChainBlock | None:
        self._call("block")
        block = self._chain.block_at(height)
        if block is None:
            return None
        cached = self._cache.get(block.hash)
        if cached is None:
            txs = self._chain.block_txs(block)
            transactions, spent, txids = self._reduce(txs)
            cached = ChainBlock(block.height, block.hash, block.prev_hash, block.time,
                                transactions, spent, txids)
            self._cache[block.hash] = cached
        return cached

    def mempool(self) -> MempoolView:
        self._call("mempool")
        return MempoolView(*self._reduce(self._chain.mempool_txs()), complete=True)

    def finalized_height(self) -> int | None:
        self._call("finalized_height")
        if self._finality_depth is None:
            return None
        return max(self._chain.tip.height - self._finality_depth, 0)

    def notifications(self) -> list[ChainEvent]:
        """Notifications delivered since the last call, faults applied (a ZMQ socket read)."""
        delivered, self._inbox = self._inbox, []
        return delivered

    def flush(self) -> None:
        """Deliver every held-back notification now (the end of a delay)."""
        self._inbox.extend(self._held)
        self._held.clear()

    def close(self) -> None:
        """Stop listening to the chain (a client that is dropped hears nothing more)."""
        self._chain.unsubscribe(self._hear)

    def _call(self, name: str) -> None:
        faults = self.faults
        if faults.timeout and self._rng.random() < faults.timeout:
            self._chain.clock.advance(timedelta(seconds=faults.timeout_seconds))
            raise UnavailableError(
                f"simulated {self._chain.name} node did not answer {name} within "
                f"{faults.timeout_seconds} s",
                retry_after=faults.timeout_seconds,
                details={"chain": self._chain.name, "call": name},
            )
        if faults.reorg and self._rng.random() < faults.reorg:
            depth = self._rng.randint(1, max(1, min(faults.reorg_depth, self._chain.tip.height)))
            if depth <= self._chain.tip.height:
                self._chain.reorg(depth)

    def _hear(self, event: ChainEvent) -> None:
        faults = self.faults
        if faults.drop and self._rng.random() < faults.drop:
            return
        if faults.delay and self._rng.random() < faults.delay:
            self._held.append(event)
            return
        self._inbox.append(event)
        if faults.duplicate and self._rng.random() < faults.duplicate:
            self._inbox.append(event)
        self.flush()  # held ones arrive after this newer one: out of order

    def _reduce(
        self, txs: Iterable[SimTx]
    ) -> tuple[tuple[ChainTx, ...], dict[str, str], frozenset[str]]:
        """Transactions paying watched addresses, every conflict key, every txid."""
        watched = self._watched
        asset = self._chain.asset
        transactions: list[ChainTx] = []
        spent: dict[str, str] = {}
        txids: set[str] = set()
        for tx in txs:
            txids.add(tx.txid)
            for op in tx.inputs:
                spent[op] = tx.txid
            transfers = tuple(
                Transfer(tx.outpoint(vout), tx.txid, out.address, asset, out.units)
                for vout, out in enumerate(tx.outputs)
                if out.address in watched
            )
            if transfers:
                transactions.append(ChainTx(tx.txid, transfers, tx.inputs, tx.replaceable))
        return tuple(transactions), spent, frozenset(txids)
