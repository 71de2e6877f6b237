"""``ChainDriver`` over a real Bitcoin Knots node in regtest (``tests/support/bitcoind.py``).

:func:`open_driver` starts a node of its own (with ZMQ notifications on a free port), makes
an outside wallet ``funder`` and gives it 40 confirmed coins, and yields a
:class:`BitcoindDriver` whose ``client`` is the real :class:`BitcoinChainClient`:

- ``pay`` sends from ``funder`` (lock time 0, so a reorg never makes it non-final); the
  node runs with ``-spendzeroconfchange=0``, so payments never chain on each other's
  change: replacing or dropping one leaves the others alone;
- ``mine`` mines to an address outside every wallet;
- ``reorg`` invalidates the last ``depth`` blocks (their transactions return to the
  mempool), lowers the fee of the transactions to drop far below the block minimum
  (``prioritisetransaction``) so block assembly leaves them and their descendants out, mines
  ``depth + 1`` blocks to a fresh address (never the invalidated blocks again), then takes
  the fee delta back so the dropped transactions can be mined later;
- ``replace`` is a full-RBF replacement (Knots' default ``-mempoolfullrbf=1``): the same
  inputs, one output to the new address, a higher fee than the original and its
  descendants together.

Addresses come from fresh random keys (P2WPKH by default; any type the node issues).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from coincurve import PrivateKey
from pydantic import SecretStr

from dpgnode.adapters.chains.bitcoin_client import BitcoinChainClient
from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.domain.custody.addresses import address_from_public_key
from dpgnode.domain.custody.networks import AddressType, Network
from tests.support.bitcoind import BitcoindNode, btc_to_sats, free_port, start_bitcoind

__all__ = ["BitcoindDriver", "open_driver", "random_address"]

FUNDER = "funder"
BURN = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
"""Blocks of ``mine`` pay here: an address outside every wallet."""
FUNDING_COINS = 40
DROP_DELTA_SATS = 10**8
"""Fee delta that puts a dropped transaction far below any block's minimum fee rate."""
REPLACEMENT_EXTRA_SATS = 5_000
REGTEST = Network.REGTEST


def random_address(address_type: AddressType = AddressType.P2WPKH) -> str:
    """An address of a fresh random key (nobody watches or spends it)."""
    key = PrivateKey(secrets.token_bytes(32)).public_key.format(compressed=True)
    return address_from_public_key(key, address_type, REGTEST)


def sats_to_btc(units: int) -> Decimal:
    """Exact BTC amount of ``units`` satoshis, as RPC takes it."""
    return Decimal(units) / 100_000_000


class BitcoindDriver:
    """Acts on a regtest node; ``client`` reads it through the adapter under test."""

    has_mempool = True
    asset = "BTC"

    def __init__(self, node: BitcoindNode, client: BitcoinChainClient) -> None:
        self.node = node
        self._client = client

    @property
    def client(self) -> BitcoinChainClient:
        return self._client

    def new_address(self, address_type: AddressType = AddressType.P2WPKH) -> str:
        return random_address(address_type)

    def pay(self, address: str, units: int, *, replaceable: bool = True) -> str:
        # Lock time 0: the wallet would set the current height (anti fee sniping), which a
        # reorg below that height makes non-final, and the node would drop the transaction
        # from its mempool instead of taking it back.
        sent = self.node.rpc("send", [{address: sats_to_btc(units)}], None, "unset", None,
                             {"locktime": 0, "replaceable": replaceable}, wallet=FUNDER)
        assert sent["complete"], sent
        txid: str = sent["txid"]
        return txid

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.mine(blocks, BURN)

    def reorg(self, depth: int, *, drop: Sequence[str] = ()) -> None:
        tip = self.node.rpc("getblockcount")
        self.node.rpc("invalidateblock", self.node.rpc("getblockhash", tip - depth + 1))
        for txid in drop:
            self.node.rpc("prioritisetransaction", txid, 0, -DROP_DELTA_SATS)
        try:
            self.node.mine(depth + 1, random_address())
        finally:
            for txid in drop:
                self.node.rpc("prioritisetransaction", txid, 0, DROP_DELTA_SATS)

    def replace(self, txid: str, address: str, units: int | None = None) -> str:
        """Spend what ``txid`` spent, paying ``address`` all of it (or ``units`` and the
        rest back to the funder) with a fee above the original's and its descendants'."""
        tx = self.node.rpc("getrawtransaction", txid, True)
        inputs = [{"txid": i["txid"], "vout": i["vout"]} for i in tx["vin"]]
        value = sum(self._output_value(i["txid"], i["vout"]) for i in tx["vin"])
        entry = self.node.rpc("getmempoolentry", txid)
        fee = btc_to_sats(entry["fees"]["descendant"]) + REPLACEMENT_EXTRA_SATS
        outputs = [{address: sats_to_btc(value - fee if units is None else units)}]
        if units is not None:
            change = self.node.rpc("getrawchangeaddress", wallet=FUNDER)
            outputs.append({change: sats_to_btc(value - fee - units)})
        raw = self.node.rpc("createrawtransaction", inputs, outputs, 0, True)
        signed = self.node.rpc("signrawtransactionwithwallet", raw, wallet=FUNDER)
        assert signed["complete"], signed.get("errors")
        replacement: str = self.node.rpc("sendrawtransaction", signed["hex"])
        return replacement

    def _output_value(self, txid: str, vout: int) -> int:
        return btc_to_sats(self.node.rpc("getrawtransaction", txid, True)["vout"][vout]["value"])


def fund(node: BitcoindNode, coins: int = FUNDING_COINS) -> None:
    """A ``funder`` wallet with ``coins`` confirmed 1-BTC outputs (and a mature coinbase)."""
    node.rpc("createwallet", FUNDER)
    node.mine(1, node.rpc("getnewaddress", wallet=FUNDER))
    node.mine(100, BURN)  # matures the funder's coinbase
    split = {node.rpc("getnewaddress", wallet=FUNDER): Decimal(1) for _ in range(coins)}
    node.rpc("sendmany", "", split, wallet=FUNDER)
    node.mine(1, BURN)


@contextmanager
def open_driver(workdir: Path, *, zmq: bool = True) -> Iterator[BitcoindDriver]:
    """A funded regtest node and its driver; the node stops (by PID) on exit."""
    args = ["-spendzeroconfchange=0"]
    zmq_url = ""
    if zmq:
        zmq_url = f"tcp://127.0.0.1:{free_port()}"
        args += [f"-zmqpubhashblock={zmq_url}", f"-zmqpubrawtx={zmq_url}"]
    with start_bitcoind(workdir, args) as node:
        fund(node)
        rpc = BitcoinRpc.connect(f"http://127.0.0.1:{node.port}", network=REGTEST,
                                 user=node.user, password=SecretStr(node.password), timeout=30)
        client = BitcoinChainClient(rpc, asset="BTC", zmq_url=zmq_url)
        try:
            yield BitcoindDriver(node, client)
        finally:
            client.close()
            rpc.close()
