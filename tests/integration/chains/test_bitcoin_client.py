"""``BitcoinChainClient`` against a real Bitcoin Knots node in regtest (R9, R10, R11 cases).

The node, its funded outside wallet and the client come from ``tests/support/bitcoind_driver``
(ZMQ notifications on); the chain-port contract tests run the same driver too. Every test uses
fresh addresses, so they share one node.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from dpgnode.adapters.chains.bitcoin_client import BitcoinChainClient
from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.domain.chains.blocks import ChainBlock, MempoolView, Transfer
from dpgnode.domain.custody.encoding import b58check_encode, encode_segwit
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.errors import ConfigError
from tests.support.bitcoind_driver import BitcoindDriver, open_driver, sats_to_btc

pytestmark = pytest.mark.integration

UNITS = 25_000
BITCOIN_TYPES = [AddressType.P2WPKH, AddressType.P2TR, AddressType.P2SH_P2WPKH, AddressType.P2PKH]


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BitcoindDriver]:
    with open_driver(tmp_path_factory.mktemp("bitcoin-client")) as opened:
        yield opened


@pytest.fixture
def client(driver: BitcoindDriver) -> BitcoinChainClient:
    return driver.client


def to(txs: MempoolView | ChainBlock, address: str) -> list[Transfer]:
    return [t for tx in txs.transactions for t in tx.transfers if t.address == address]


def tip_block(driver: BitcoindDriver) -> ChainBlock:
    block = driver.client.block(driver.client.tip().height)
    assert block is not None
    return block


class TestPayments:
    def test_every_address_type_is_seen_pending_then_confirmed_with_the_same_keys(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        addresses = [driver.new_address(t) for t in BITCOIN_TYPES]
        client.watch(addresses)
        txids = {a: driver.pay(a, UNITS + i) for i, a in enumerate(addresses)}

        pending = client.mempool()
        driver.mine(1)
        block = tip_block(driver)

        for i, address in enumerate(addresses):
            [seen] = to(pending, address)
            assert (seen.txid, seen.units, seen.asset) == (txids[address], UNITS + i, "BTC")
            assert to(block, address) == [seen]
        assert not set(txids.values()) & client.mempool().txids

    def test_a_payment_to_the_last_of_10000_watched_addresses_is_found(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        hrp = "bcrt"
        issued = []
        for index in range(10_000):  # R11: the watcher follows every issued address
            kind = index % 4
            if kind == 0:
                issued.append(encode_segwit(hrp, 0, secrets.token_bytes(20)))
            elif kind == 1:
                issued.append(encode_segwit(hrp, 1, secrets.token_bytes(32)))
            else:
                issued.append(b58check_encode(bytes([0xC4 if kind == 2 else 0x6F])
                                              + secrets.token_bytes(20)))
        issued.append(driver.new_address())
        client.watch(issued)
        txid = driver.pay(issued[-1], UNITS)

        [pending] = to(client.mempool(), issued[-1])
        driver.mine(1)
        [confirmed] = to(tip_block(driver), issued[-1])

        assert pending == confirmed
        assert confirmed.txid == txid

    def test_an_unchanged_mempool_gives_the_same_view(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        driver.pay(driver.new_address(), UNITS)

        first = client.mempool()

        assert client.mempool() is first
        driver.mine(1)
        assert client.mempool() is not first


class TestReorgs:
    def test_a_depth_3_reorg_drops_a_confirmed_payment_back_into_the_mempool(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        address = driver.new_address()
        client.watch([address])
        txid = driver.pay(address, UNITS)
        driver.mine(1)
        height = client.tip().height
        [credited] = to(tip_block(driver), address)
        driver.mine(2)
        old_hash = client.block_hash(height)

        driver.reorg(3, drop=[txid])

        replaced = client.block(height)
        assert replaced is not None
        assert replaced.hash != old_hash
        assert txid not in replaced.txids
        assert client.tip().height == height + 3
        assert to(client.mempool(), address) == [credited]
        driver.mine(1)
        assert to(tip_block(driver), address) == [credited], "mined again under the same key"

    def test_a_conflict_mined_in_the_new_branch_takes_the_payments_inputs(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        address, elsewhere = driver.new_address(), driver.new_address()
        client.watch([address])
        txid = driver.pay(address, UNITS)
        driver.mine(1)
        [paid] = [tx for tx in tip_block(driver).transactions if tx.txid == txid]
        driver.mine(2)

        driver.reorg(3, drop=[txid])
        conflict = driver.replace(txid, elsewhere)
        driver.mine(1)

        block = tip_block(driver)
        assert {key: block.spent[key] for key in paid.spends} == dict.fromkeys(
            paid.spends, conflict)
        assert to(block, address) == []
        assert txid not in client.mempool().txids


class TestReplacements:
    @pytest.mark.parametrize("signals", [True, False], ids=["bip125", "full-rbf"])
    def test_a_replacement_paying_elsewhere_takes_the_payments_inputs_in_the_mempool(
        self, driver: BitcoindDriver, client: BitcoinChainClient, signals: bool
    ) -> None:
        address, elsewhere = driver.new_address(), driver.new_address()
        client.watch([address])
        txid = driver.pay(address, UNITS, replaceable=signals)
        [original] = [tx for tx in client.mempool().transactions if tx.txid == txid]

        replacement = driver.replace(txid, elsewhere)
        view = client.mempool()

        assert original.replaceable is signals
        assert {key: view.spent[key] for key in original.spends} == dict.fromkeys(
            original.spends, replacement)
        assert txid not in view.txids
        assert replacement in view.txids
        assert to(view, address) == []
        driver.mine(1)

    def test_a_replacement_paying_the_same_address_more_is_one_new_transfer(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        address = driver.new_address()
        client.watch([address])
        txid = driver.pay(address, UNITS)
        client.mempool()

        replacement = driver.replace(txid, address, units=UNITS + 1_000)

        [transfer] = to(client.mempool(), address)
        assert (transfer.txid, transfer.units) == (replacement, UNITS + 1_000)
        driver.mine(1)


class TestNodeAndNotifications:
    def test_zmq_wakes_the_watcher_on_a_block_and_a_transaction(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        while client.wait_for_news(0.05):  # whatever earlier tests left queued
            pass

        driver.mine(1)
        assert client.wait_for_news(30) is True
        driver.pay(driver.new_address(), UNITS)
        assert client.wait_for_news(30) is True
        driver.mine(1)

    def test_rebroadcast_relays_once_then_reports_the_transaction_known(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        node = driver.node
        raw = node.rpc("createrawtransaction", [], [{driver.new_address(): sats_to_btc(UNITS)}])
        funded = node.rpc("fundrawtransaction", raw, wallet="funder")
        signed = node.rpc("signrawtransactionwithwallet", funded["hex"], wallet="funder")

        first = client.rebroadcast(signed["hex"])
        again = client.rebroadcast(signed["hex"])

        assert (first.accepted, first.known) == (True, False)
        assert (again.accepted, again.known, again.txid) == (True, True, first.txid)
        assert first.txid in client.mempool().txids
        driver.mine(1)

    def test_nothing_above_the_tip_and_heights_link_by_hash(
        self, driver: BitcoindDriver, client: BitcoinChainClient
    ) -> None:
        tip = client.tip()
        block = client.block(tip.height)

        assert block is not None
        assert block.ref == tip
        assert block.prev_hash == client.block_hash(tip.height - 1)
        assert client.block(tip.height + 1) is None
        assert client.block_hash(tip.height + 1) is None
        assert client.finalized_height() is None

    def test_a_node_on_another_network_is_refused(self, driver: BitcoindDriver) -> None:
        rpc = BitcoinRpc.connect(f"http://127.0.0.1:{driver.node.port}", network=Network.MAINNET,
                                 user=driver.node.user, password=SecretStr(driver.node.password))
        try:
            with pytest.raises(ConfigError, match="regtest"):
                BitcoinChainClient(rpc, asset="BTC").tip()
        finally:
            rpc.close()
