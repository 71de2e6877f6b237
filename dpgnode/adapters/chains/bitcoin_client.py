"""``ChainClient`` of a Bitcoin Core / Knots node (contract: ``dpgnode/ports/chains.py``).

Reads the node over JSON-RPC through :class:`BitcoinRpc` (which checks, at first use, that
the node is on the expected network) and reduces what it reads with ``bitcoin_blocks``:

- ``block(h)``: ``getblockhash`` then ``getblock <hash> 0``; the hash of the header received
  must be the hash asked for (``IntegrityError`` otherwise: the node contradicts itself);
- ``mempool()`` is incremental: ``getrawmempool`` lists the ids, and only transactions not
  seen before are fetched (``getrawtransaction`` in batches) and parsed; the parsed ones are
  kept by id and forgotten when the node drops them. With an unchanged mempool a call costs
  one ``getrawmempool`` and a set comparison, and returns the same view as before. Each
  kept transaction holds its conflict keys and outputs (about 0.5-1 kB), so that addresses
  watched later are matched against transactions already pending;
- ``watch`` decodes addresses into scriptPubKeys (``bitcoin_watchset``: ~2 s and ~100 MB per
  million addresses);
- :meth:`BitcoinChainClient.wait_for_news` ends the watcher's wait early when ZMQ is
  configured (``bitcoin_zmq``); :meth:`BitcoinChainClient.rebroadcast` hands one of our
  transactions to the node again (``broadcast.broadcast_bitcoin``).

Errors: a node that cannot be reached, times out, sends malformed data or refuses a read
(pruned block, RPC error) -> ``UnavailableError``; a block whose hash is not the one asked
for, or a transaction whose id is not the one listed -> ``IntegrityError``.

One watcher thread uses a client; ``rebroadcast`` keeps no state and may be called from
another thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from dpgnode.adapters.chains.bitcoin_blocks import RawTx, block_hash, parse_block, parse_tx
from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.adapters.chains.bitcoin_watchset import WatchedScripts
from dpgnode.adapters.chains.bitcoin_zmq import ZmqWakeup
from dpgnode.adapters.chains.broadcast import broadcast_bitcoin
from dpgnode.adapters.chains.connections import BITCOIN_NETWORK
from dpgnode.adapters.chains.jsonrpc import RpcError
from dpgnode.domain.chains.blocks import BlockRef, ChainBlock, ChainTx, MempoolView
from dpgnode.errors import IntegrityError, UnavailableError, ValidationError
from dpgnode.ports.chains import BroadcastResult


class BitcoinChainClient:
    """One Bitcoin node as the watcher reads it (see the module docstring)."""

    def __init__(self, rpc: BitcoinRpc, *, asset: str, zmq_url: str = "") -> None:
        """Read through ``rpc``; transfers are in ``asset`` (the network's coin, ``BTC``).

        Raises:
            ConfigError: a malformed ``zmq_url``.
        """
        self._rpc = rpc
        self._asset = asset
        self._watched = WatchedScripts(rpc.network)
        self._pool: dict[str, RawTx] = {}
        self._paying: dict[str, ChainTx] = {}
        self._spent: dict[str, str] = {}
        self._view: MempoolView | None = None
        self._rematch = False
        self._wakeup = ZmqWakeup(zmq_url) if zmq_url else None

    @property
    def chain(self) -> str:
        """``bitcoin``."""
        return BITCOIN_NETWORK

    @property
    def watched(self) -> int:
        """How many scripts are watched."""
        return len(self._watched)

    def watch(self, addresses: Iterable[str]) -> None:
        """Report transfers to ``addresses`` from now on (see ``WatchedScripts.add``)."""
        before = len(self._watched)
        try:
            self._watched.add(addresses)
        finally:  # also when a malformed address stopped it: those before it are watched
            if len(self._watched) != before and self._pool:
                self._rematch = True  # pending transactions may pay the new addresses

    def tip(self) -> BlockRef:
        """The node's best block."""
        with _refusals(self._rpc):
            height, best = self._rpc.best_block()
        return BlockRef(height, best)

    def block_hash(self, height: int) -> str | None:
        """The best chain's hash at ``height``; ``None`` above the tip."""
        if type(height) is not int or height < 0:
            raise ValidationError("a block height is a non-negative integer", field="height")
        with _refusals(self._rpc):
            return self._rpc.block_hash(height)

    def block(self, height: int) -> ChainBlock | None:
        """The best chain's block at ``height``; ``None`` above the tip."""
        wanted = self.block_hash(height)
        if wanted is None:
            return None
        with _refusals(self._rpc):
            raw = self._rpc.raw_block(wanted)
        received = block_hash(raw)
        if received != wanted:
            raise IntegrityError(f"{self._rpc.name} sent block {received} when asked for "
                                 f"block {wanted} (height {height})")
        return parse_block(raw, self._watched, self._asset, height=height)

    def mempool(self) -> MempoolView:
        """Unconfirmed transactions; only those not seen before are fetched."""
        with _refusals(self._rpc):
            listed = self._rpc.mempool_txids()
        current = set(listed)
        if self._view is not None and not self._rematch and current == self._pool.keys():
            return self._view
        self._view = None  # until the pool is consistent again (a fetch below may fail)
        for txid in self._pool.keys() - current:
            self._forget(txid)
        new = [txid for txid in current if txid not in self._pool]
        with _refusals(self._rpc):
            fetched = self._rpc.raw_transactions(new)
        for txid, raw in fetched.items():
            self._keep(txid, parse_tx(raw))
        if self._rematch:
            self._paying = {}
            for txid, tx in self._pool.items():
                matched = tx.matched(self._watched, self._asset)
                if matched is not None:
                    self._paying[txid] = matched
            self._rematch = False
        self._view = MempoolView(tuple(self._paying.values()), dict(self._spent),
                                 frozenset(self._pool), complete=True)
        return self._view

    def _keep(self, txid: str, tx: RawTx) -> None:
        if tx.txid != txid:
            raise IntegrityError(f"{self._rpc.name} sent transaction {tx.txid} when asked "
                                 f"for {txid}")
        self._pool[txid] = tx
        for key in tx.spends:
            self._spent[key] = txid
        matched = tx.matched(self._watched, self._asset)
        if matched is not None:
            self._paying[txid] = matched

    def _forget(self, txid: str) -> None:
        tx = self._pool.pop(txid)
        self._paying.pop(txid, None)
        for key in tx.spends:
            if self._spent.get(key) == txid:
                del self._spent[key]

    def finalized_height(self) -> int | None:
        """``None``: on Bitcoin only depth counts."""
        return None

    def rebroadcast(self, raw_tx: str) -> BroadcastResult:
        """Hand one of our unconfirmed transactions to the node again (idempotent).

        The checks of a first broadcast apply (``broadcast.broadcast_bitcoin``): a
        transaction whose inputs another pending transaction spends is refused, never
        relayed as a replacement.

        Raises:
            IntegrityError: ``raw_tx`` (a recorded transaction) does not parse.
            UnavailableError: the node cannot be reached.
        """
        try:
            txid = parse_tx(bytes.fromhex(raw_tx)).txid
        except (ValueError, UnavailableError) as exc:
            raise IntegrityError("a recorded raw Bitcoin transaction does not parse") from exc
        return broadcast_bitcoin(self._rpc, raw_tx, txid)

    def wait_for_news(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a ZMQ notification; True when one came.

        Without ZMQ configured this returns False at once: the caller sleeps its poll
        interval itself (it owns the clock).
        """
        if self._wakeup is None:
            return False
        return self._wakeup.wait(timeout)

    def close(self) -> None:
        """Stop listening for ZMQ notifications (the RPC client belongs to the caller)."""
        if self._wakeup is not None:
            self._wakeup.close()
            self._wakeup = None


@contextmanager
def _refusals(rpc: BitcoinRpc) -> Iterator[None]:
    """A read the node refuses (pruned block, unexpected RPC error) pauses the watcher."""
    try:
        yield
    except RpcError as exc:
        raise UnavailableError(f"{rpc.name} refused a read: {exc.rpc_message}",
                               retry_after=30) from exc
