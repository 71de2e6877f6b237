"""A seeded, in-process, Bitcoin-like chain: clearly a simulation, never a real network.

It exists for two users: the R8 simulation tests, which drive the real watcher through
every reorganisation and replacement a Bitcoin node can show, and the one-command demo,
which needs *a* chain when no real development node can be had. Both need the same thing:
the same seed and the same calls give the same blocks, hashes and txids, in any process.

The model, kept to what a watcher can observe through ``ChainClient``:

- a block tree with one best chain: the longest (every block has the same work), a tie keeps
  the current tip, so a reorganisation always brings a strictly longer branch;
- UTXO transactions: inputs are outpoints (``txid:vout``), which are also their conflict keys;
  outputs pay opaque address strings in the chain's one asset. An outside wallet spends
  *coins*: outpoints that existed before the genesis block (``fund``);
- a mempool with Bitcoin's acceptance rules that matter here: inputs must exist and be
  unspent in the best chain; a transaction that spends what a mempool transaction spends
  replaces it (and evicts its descendants) when full RBF is on or every replaced
  transaction signals BIP125; a block evicts the mempool transactions it conflicts with;
- blocks disconnected by a reorganisation return their transactions to the mempool, which
  keeps those still valid on the new branch (as Bitcoin Core does); a reorganisation whose
  new branch cannot be built changes nothing (a node never shows a shorter chain);
- block times come from a simulated clock, advanced by ``block_interval`` per block.

Invariants kept after every public call: the best chain links by ``prev_hash`` from genesis;
no outpoint is spent twice in the best chain; no two mempool transactions conflict, and none
conflicts with the best chain; every mempool input exists (a coin, a confirmed output or an
earlier mempool transaction's output). Fees are not modelled: replacements always pay
enough. Listeners (``subscribe``) hear of every connected block and accepted transaction,
inside the call that caused it. Transactions and the mempool's bookkeeping live in
``simulated_mempool``; ``simulated_client`` is the ``ChainClient`` over this chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from dpgnode.adapters.chains.simulated_mempool import Mempool, Output, SimTx, parent_txid
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.chains.blocks import BlockRef
from dpgnode.errors import ConflictError, NotFoundError, ValidationError

__all__ = ["ChainEvent", "Output", "SimBlock", "SimTx", "SimulatedChain"]

GENESIS_PREV = "00" * 32
SUBSIDY = 50 * 100_000_000
MINER = "sim-miner"
"""Where coinbases pay: never an address the node issues."""
CHANGE = "sim-change"
"""The outside wallet's change address."""


@dataclass(frozen=True, slots=True)
class SimBlock:
    """A block of the tree; ``txids`` starts with its coinbase."""

    hash: str
    prev_hash: str
    height: int
    time: int
    txids: tuple[str, ...]

    @property
    def ref(self) -> BlockRef:
        """Height and hash."""
        return BlockRef(self.height, self.hash)


@dataclass(frozen=True, slots=True)
class ChainEvent:
    """What a node would announce (ZMQ ``hashblock`` / ``hashtx``): a block or a transaction."""

    kind: str
    """``block`` (a block joined the best chain) or ``tx`` (accepted into the mempool)."""
    id: str
    height: int | None = None


class SimulatedChain:
    """The chain itself: build it, pay, mine, replace and reorganise it, read its state."""

    def __init__(
        self,
        seed: int = 0,
        *,
        name: str = "bitcoin",
        asset: str = "BTC",
        full_rbf: bool = True,
        clock: FixedClock | None = None,
        block_interval: timedelta = timedelta(minutes=10),
    ) -> None:
        self.seed = seed
        self.name = name
        self.asset = asset
        self.full_rbf = full_rbf
        self.clock = clock or FixedClock()
        self.block_interval = block_interval
        self.reorgs = 0
        """Reorganisations so far (the harness compares states after each)."""
        self._counter = 0
        self._txs: dict[str, SimTx] = {}
        self._blocks: dict[str, SimBlock] = {}
        self._best: list[SimBlock] = []
        self._confirmed: dict[str, int] = {}
        self._spent: dict[str, str] = {}
        self._coins: set[str] = set()
        self._mempool = Mempool()
        self._listeners: list[Callable[[ChainEvent], None]] = []
        self._connect(self._new_block(GENESIS_PREV, 0, ()))

    # -- reading ---------------------------------------------------------------------------

    @property
    def tip(self) -> BlockRef:
        """The best block."""
        return self._best[-1].ref

    def block_at(self, height: int) -> SimBlock | None:
        """The best chain's block at ``height`` (``None`` outside it)."""
        return self._best[height] if 0 <= height < len(self._best) else None

    def block_by_hash(self, block_hash: str) -> SimBlock:
        """Any block of the tree, stale ones too."""
        try:
            return self._blocks[block_hash]
        except KeyError:
            raise NotFoundError(f"no block {block_hash}", details={"hash": block_hash}) from None

    def tx(self, txid: str) -> SimTx:
        """Any transaction the chain has seen (mined, pending, replaced or dropped)."""
        try:
            return self._txs[txid]
        except KeyError:
            raise NotFoundError(f"no transaction {txid}", details={"txid": txid}) from None

    def height_of(self, txid: str) -> int | None:
        """The best-chain height that confirms ``txid``, ``None`` when unconfirmed."""
        return self._confirmed.get(txid)

    def confirmations(self, txid: str) -> int:
        """Best-chain confirmations of ``txid`` (0 when unconfirmed)."""
        height = self._confirmed.get(txid)
        return 0 if height is None else self.tip.height - height + 1

    def spender(self, outpoint: str) -> str | None:
        """The transaction spending ``outpoint`` in the best chain, else in the mempool."""
        return self._spent.get(outpoint) or self._mempool.spender(outpoint)

    def in_mempool(self, txid: str) -> bool:
        """Whether ``txid`` waits in the mempool."""
        return txid in self._mempool

    def mempool_txs(self) -> list[SimTx]:
        """Unconfirmed transactions in arrival order."""
        return list(self._mempool)

    def block_txs(self, block: SimBlock) -> list[SimTx]:
        """The transactions of ``block``, coinbase first."""
        return [self._txs[txid] for txid in block.txids]

    def subscribe(self, listener: Callable[[ChainEvent], None]) -> None:
        """Call ``listener`` for every connected block and every accepted transaction."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[ChainEvent], None]) -> None:
        """Stop calling ``listener`` (a no-op when it is not subscribed)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- acting ----------------------------------------------------------------------------

    def new_address(self) -> str:
        """A fresh address, labelled as simulated (``sim1q…``)."""
        return "sim1q" + self._digest("address", self._next())[:38]

    def fund(self) -> str:
        """A new outside coin: an unspent outpoint older than genesis, for the outside wallet."""
        coin = f"{self._digest('coin', self._next())}:0"
        self._coins.add(coin)
        return coin

    def make_tx(
        self,
        inputs: Sequence[str],
        outputs: Sequence[Output],
        *,
        replaceable: bool = True,
    ) -> SimTx:
        """Build (not broadcast) a transaction; its txid is new even for the same contents."""
        if not inputs:
            raise ValidationError("a transaction spends at least one outpoint", field="inputs")
        if not outputs or any(type(o.units) is not int or o.units <= 0 for o in outputs):
            raise ValidationError("a transaction pays positive whole units", field="outputs")
        if len(set(inputs)) != len(inputs):
            raise ValidationError("a transaction spends an outpoint once", field="inputs")
        seq = self._next()
        txid = self._digest("tx", seq, *inputs, *(f"{o.address}={o.units}" for o in outputs))
        tx = SimTx(txid, tuple(inputs), tuple(outputs), replaceable, seq)
        self._txs[txid] = tx
        return tx

    def broadcast(self, tx: SimTx) -> bool:
        """Offer ``tx`` to the mempool; False when the chain has it already.

        Raises ``ValidationError`` for an input that does not exist, ``ConflictError`` for
        one spent in the best chain or a replacement the RBF rules refuse.
        """
        if tx.txid in self._mempool or tx.txid in self._confirmed:
            return False
        self._check_inputs(tx)
        conflicts = self._mempool.conflicts(tx.inputs)
        if conflicts and not self.full_rbf:
            refusing = sorted(t.txid for t in self._mempool
                              if t.txid in conflicts and not t.replaceable)
            if refusing:
                raise ConflictError(
                    f"{tx.txid} would replace {refusing[0]}, which does not signal BIP125",
                    details={"txid": tx.txid, "conflict": refusing[0]},
                )
        evicted = self._mempool.with_descendants(conflicts)
        if any(parent_txid(op) in evicted for op in tx.inputs):
            raise ValidationError(
                f"{tx.txid} spends an output of a transaction it replaces", field="inputs"
            )
        self._mempool.evict(evicted)
        self._mempool.add(tx)
        self._emit(ChainEvent("tx", tx.txid))
        return True

    def pay(
        self,
        address: str,
        units: int,
        *,
        spend: Sequence[str] = (),
        replaceable: bool = True,
    ) -> SimTx:
        """The outside wallet pays ``units`` to ``address`` (plus change) and broadcasts it.

        ``spend`` names the outpoints to use (e.g. a parent's change, for a descendant);
        by default a fresh coin.
        """
        inputs = tuple(spend) or (self.fund(),)
        tx = self.make_tx(inputs, [Output(address, units), Output(CHANGE, units)],
                          replaceable=replaceable)
        self.broadcast(tx)
        return tx

    def replace(
        self, txid: str, outputs: Sequence[Output], *, replaceable: bool = True
    ) -> SimTx:
        """Broadcast a transaction spending exactly what ``txid`` spends, paying ``outputs``."""
        tx = self.make_tx(self.tx(txid).inputs, outputs, replaceable=replaceable)
        self.broadcast(tx)
        return tx

    def conflict(self, txid: str, outputs: Sequence[Output]) -> SimTx:
        """A private double spend of ``txid`` (not broadcast), for ``include=`` of mine/reorg."""
        return self.make_tx(self.tx(txid).inputs, outputs)

    def mine(
        self,
        blocks: int = 1,
        *,
        include: Sequence[SimTx] = (),
        leave: Iterable[str] = (),
    ) -> list[str]:
        """Mine ``blocks`` blocks on the tip; their hashes.

        The first block takes the whole mempool except ``leave`` (and their descendants),
        plus ``include``: transactions the miner got privately, which evict what they
        conflict with. Further blocks take what arrived meanwhile (nothing, here).
        """
        if blocks < 1:
            raise ValidationError("mine at least one block", field="blocks")
        hashes = [self._mine_one(include, set(leave))]
        hashes += [self._mine_one((), set(leave)) for _ in range(blocks - 1)]
        return hashes

    def reorg(
        self,
        depth: int,
        *,
        drop: Iterable[str] = (),
        include: Sequence[SimTx] = (),
        length: int | None = None,
    ) -> list[str]:
        """Replace the last ``depth`` blocks by a branch of ``length`` (default ``depth + 1``).

        The disconnected blocks' transactions return to the mempool, and the new branch's
        first block mines the mempool except ``drop`` (and descendants), which stay pending,
        plus ``include`` (e.g. a double spend of a dropped payment). The new hashes.
        """
        if not 1 <= depth <= self.tip.height:
            raise ValidationError(
                f"reorg depth {depth} outside 1..{self.tip.height}", field="depth"
            )
        length = depth + 1 if length is None else length
        if length <= depth:
            raise ValidationError("a new branch must be longer than the one it replaces",
                                  field="length")
        leave = set(drop) - {tx.txid for tx in include}
        mempool = self._mempool.copy()
        old = self._best[-depth:]
        returned: list[SimTx] = []
        for _ in range(depth):
            returned = self._disconnect_tip() + returned
        self._restore(returned)
        try:
            hashes = self.mine(length, include=include, leave=leave)
        except (ConflictError, ValidationError):
            # ``include`` cannot be mined on the fork: nothing happened (a node never shows
            # a shorter chain, so the old branch and mempool come back as they were).
            for block in old:
                self._connect(block, announce=False)
            self._mempool = mempool
            raise
        self.reorgs += 1
        return hashes

    # -- internals -------------------------------------------------------------------------

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _digest(self, *parts: object) -> str:
        text = "|".join(str(p) for p in (self.seed, self.name, *parts))
        return hashlib.sha256(text.encode()).hexdigest()

    def _output_exists(self, outpoint: str, pending: Container[str]) -> bool:
        if outpoint in self._coins:
            return True
        txid, _, vout = outpoint.partition(":")
        parent = self._txs.get(txid)
        if parent is None or not (txid in self._confirmed or txid in pending):
            return False
        return vout.isdigit() and int(vout) < len(parent.outputs)

    def _check_inputs(self, tx: SimTx, pending: Container[str] | None = None) -> None:
        pool = self._mempool if pending is None else pending
        for op in tx.inputs:
            if not self._output_exists(op, pool):
                raise ValidationError(f"{tx.txid} spends unknown outpoint {op}", field="inputs")
            if op in self._spent:
                raise ConflictError(
                    f"{tx.txid} spends {op}, already spent by {self._spent[op]} in a block",
                    details={"txid": tx.txid, "outpoint": op},
                )

    def _restore(self, returned: list[SimTx]) -> None:
        """Refill the mempool, oldest first, with what is still valid on the shorter chain."""
        for tx in sorted([*returned, *self._mempool.drain()], key=lambda t: t.seq):
            if self._mempool.conflicts(tx.inputs):
                continue
            try:
                self._check_inputs(tx)
            except (ValidationError, ConflictError):
                continue  # its parent is gone or conflicted: it vanishes, as in a node
            self._mempool.add(tx)

    def _mine_one(self, include: Sequence[SimTx], leave: set[str]) -> str:
        conflicted = self._mempool.conflicts(op for tx in include for op in tx.inputs)
        skipped = self._mempool.with_descendants(
            {txid for txid in leave if txid in self._mempool} | conflicted)
        chosen = [tx for tx in self._mempool if tx.txid not in skipped]
        chosen += [tx for tx in include if tx.txid not in self._mempool]
        self._check_block(chosen)
        self.clock.advance(self.block_interval)
        block = self._new_block(self.tip.hash, self.tip.height + 1, [tx.txid for tx in chosen])
        self._connect(block)
        return block.hash

    def _check_block(self, txs: Sequence[SimTx]) -> None:
        """Every input exists (earlier in the block too) and is spent once, nowhere else."""
        earlier: dict[str, SimTx] = {}
        spent_here: set[str] = set()
        for tx in txs:
            if tx.txid in self._confirmed or tx.txid in earlier:
                raise ConflictError(f"{tx.txid} is already in the best chain",
                                    details={"txid": tx.txid})
            self._check_inputs(tx, earlier)
            if spent_here.intersection(tx.inputs):
                raise ConflictError(f"{tx.txid} double-spends within the block",
                                    details={"txid": tx.txid})
            spent_here.update(tx.inputs)
            earlier[tx.txid] = tx

    def _new_block(self, prev_hash: str, height: int, txids: Sequence[str]) -> SimBlock:
        nonce = self._next()
        coinbase = SimTx(self._digest("coinbase", height, nonce), (),
                         (Output(MINER, SUBSIDY),), False, nonce)
        self._txs[coinbase.txid] = coinbase
        all_ids = (coinbase.txid, *txids)
        block_hash = self._digest("block", prev_hash, height, nonce, *all_ids)
        prev_time = self._blocks[prev_hash].time if prev_hash in self._blocks else 0
        time = max(int(self.clock.now().timestamp()), prev_time + 1)
        block = SimBlock(block_hash, prev_hash, height, time, all_ids)
        self._blocks[block_hash] = block
        return block

    def _connect(self, block: SimBlock, *, announce: bool = True) -> None:
        self._best.append(block)
        txs = self.block_txs(block)
        for tx in txs:
            self._confirmed[tx.txid] = block.height
            for op in tx.inputs:
                self._spent[op] = tx.txid
        # Confirmed ones leave alone (their children stay valid); losers take their children.
        self._mempool.evict(tx.txid for tx in txs)
        losers = self._mempool.conflicts(op for tx in txs for op in tx.inputs)
        self._mempool.evict(self._mempool.with_descendants(losers))
        if announce:
            self._emit(ChainEvent("block", block.hash, block.height))

    def _disconnect_tip(self) -> list[SimTx]:
        block = self._best.pop()
        txs = self.block_txs(block)
        for tx in txs:
            del self._confirmed[tx.txid]
            for op in tx.inputs:
                del self._spent[op]
        return txs[1:]

    def _emit(self, event: ChainEvent) -> None:
        for listener in self._listeners:
            listener(event)
