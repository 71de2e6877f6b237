"""``EvmChainClient`` against a real anvil: transfers, block links, reorgs, endpoints, policy.

This module runs its own anvil (its reorganisations revert blocks, which must not touch the
blocks other modules' fixtures made). Lying providers are a proxy in front of that anvil
(``tests/support/evm_proxy.py``) that alters chosen answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dpgnode.adapters.chains.evm_client import EvmChainClient
from dpgnode.adapters.chains.evm_endpoints import EndpointState
from dpgnode.adapters.chains.evm_logs import TRANSFER_TOPIC, bloom_bits, in_bloom
from dpgnode.domain.custody.evm_tx import erc20_transfer_data
from dpgnode.errors import ConfigError, UnavailableError
from tests.support.anvil import AnvilNode, start_anvil
from tests.support.anvil_driver import TOKEN_ASSET, AnvilDriver, anvil_spec, deploy_token
from tests.support.bitcoind import free_port
from tests.support.evm_proxy import EvmProxy, evm_proxy
from tests.support.jsonrpc_server import Seen, error

pytestmark = pytest.mark.integration

ETHER = 10**18


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with start_anvil() as running:
        yield running


@pytest.fixture(scope="module")
def token(node: AnvilNode) -> str:
    return deploy_token(node)


@pytest.fixture
def eth(node: AnvilNode) -> Iterator[AnvilDriver]:
    driver = AnvilDriver(node)
    yield driver
    driver.close()


@pytest.fixture
def usdt(node: AnvilNode, token: str) -> Iterator[AnvilDriver]:
    driver = AnvilDriver(node, token=token)
    yield driver
    driver.close()


@pytest.fixture
def proxy(node: AnvilNode) -> Iterator[EvmProxy]:
    with evm_proxy(node.url) as running:
        yield running


def client_of(urls: str | list[str], token: str | None = None, **chain: Any) -> EvmChainClient:
    return EvmChainClient.connect(anvil_spec(urls, token=token, **chain))


def receipt(driver: AnvilDriver, txid: str) -> dict[str, Any]:
    found: dict[str, Any] = driver.rpc("eth_getTransactionReceipt", txid)
    return found


class TestTransfers:
    def test_native_payment_reported_with_key_amount_and_conflict_key(
        self, eth: AnvilDriver
    ) -> None:
        watched, other = eth.new_address(), eth.new_address()
        eth.client.watch([watched.lower()])  # any case in, EIP-55 out
        paid = eth.pay(watched, 3 * ETHER + 1)
        unwatched = eth.pay(other, 5)
        height = int(receipt(eth, paid)["blockNumber"], 16)
        block = eth.client.block(height)
        assert block is not None
        [tx] = block.transactions
        [transfer] = tx.transfers
        assert (transfer.key, transfer.txid, transfer.address, transfer.asset, transfer.units) == (
            f"{paid}:native", paid, watched, "ETH", 3 * ETHER + 1)
        sent = eth.rpc("eth_getTransactionByHash", paid)
        conflict = f"{sent['from'].lower()}:{int(sent['nonce'], 16)}"
        assert tx.spends == (conflict,)
        assert block.spent == {conflict: paid}
        assert block.txids == frozenset({paid})
        other_block = eth.client.block(height + 1)
        assert other_block is not None
        assert other_block.transactions == ()  # paid an unwatched address
        assert other_block.txids == frozenset({unwatched})

    def test_token_payment_reported_with_log_key_and_bloom_bits(
        self, usdt: AnvilDriver, token: str
    ) -> None:
        watched = usdt.new_address()
        usdt.client.watch([watched])
        paid = usdt.pay(watched, 1_234_567)
        height = int(receipt(usdt, paid)["blockNumber"], 16)
        block = usdt.client.block(height)
        assert block is not None
        [tx] = block.transactions
        assert [(t.key, t.address, t.asset, t.units) for t in tx.transfers] == [
            (f"{paid}:log:0", watched, TOKEN_ASSET, 1_234_567)]
        header = usdt.rpc("eth_getBlockByNumber", hex(height), False)
        bloom = int(header["logsBloom"], 16)  # our bloom arithmetic agrees with the node's
        assert in_bloom(bloom, bloom_bits(bytes.fromhex(token[2:])))
        assert in_bloom(bloom, bloom_bits(bytes.fromhex(TRANSFER_TOPIC[2:])))

    def test_every_payment_found_when_many_share_a_block(
        self, usdt: AnvilDriver, proxy: EvmProxy, token: str
    ) -> None:
        client = client_of(proxy.url, token=token)
        addresses = [usdt.new_address() for _ in range(4)]
        client.watch(addresses)
        txids = usdt.pay_many([(a, 10 + i) for i, a in enumerate(addresses)])
        height = int(receipt(usdt, txids[0])["blockNumber"], 16)
        block = client.block(height)
        assert block is not None
        found = {(t.txid, t.address, t.units) for tx in block.transactions for t in tx.transfers}
        paid = zip(txids, addresses, strict=True)
        assert found == {(txid, a, 10 + i) for i, (txid, a) in enumerate(paid)}
        assert len(proxy.calls("eth_getBlockReceipts")) == 1  # one call, not one per payment
        assert proxy.calls("eth_getTransactionReceipt") == []
        client.close()

    def test_log_key_stays_when_transaction_is_mined_again_at_another_position(
        self, usdt: AnvilDriver, token: str
    ) -> None:
        watched, elsewhere = usdt.new_address(), usdt.new_address()
        usdt.client.watch([watched])
        second = usdt.rpc("eth_accounts")[1]
        usdt.pay(second, 1000)  # a second token holder, before the block that will be redone
        paid = usdt.pay(watched, 77)
        raw = usdt.rpc("eth_getRawTransactionByHash", paid)
        height = int(receipt(usdt, paid)["blockNumber"], 16)
        before = usdt.client.block(height)
        assert before is not None
        usdt.rewind(1)
        # The same signed transaction, now after another token transfer that pays a higher
        # tip (anvil orders by fees): the block-wide logIndex of our log becomes 1.
        usdt.rpc("evm_setAutomine", False)
        try:
            data = erc20_transfer_data(bytes.fromhex(elsewhere[2:]), 5)
            usdt.rpc("eth_sendTransaction", {"from": second, "to": token,
                                             "data": "0x" + data.hex(),
                                             "maxPriorityFeePerGas": hex(100 * 10**9),
                                             "maxFeePerGas": hex(200 * 10**9)})
            assert usdt.rpc("eth_sendRawTransaction", raw) == paid
        finally:
            usdt.rpc("evm_setAutomine", True)
        usdt.mine(1)
        assert int(receipt(usdt, paid)["logs"][0]["logIndex"], 16) == 1
        after = usdt.client.block(height)
        assert after is not None
        assert after.hash != before.hash
        keys = [t.key for tx in after.transactions for t in tx.transfers]
        assert keys == [f"{paid}:log:0"] == [t.key for t in before.transactions[0].transfers]


class TestBlocks:
    def test_blocks_link_by_hash_to_the_tip(self, eth: AnvilDriver) -> None:
        eth.mine(3)
        tip = eth.client.tip()
        assert eth.client.block_hash(tip.height) == tip.hash
        for height in range(tip.height - 2, tip.height + 1):
            block = eth.client.block(height)
            assert block is not None
            assert block.hash == eth.client.block_hash(height)
            assert block.prev_hash == eth.client.block_hash(height - 1)
        assert eth.client.block(tip.height + 1) is None
        assert eth.client.block_hash(tip.height + 1) is None
        assert eth.client.mempool().transactions == ()

    def test_reorged_payment_disappears_when_branch_is_replaced(self, eth: AnvilDriver) -> None:
        watched = eth.new_address()
        eth.client.watch([watched])
        paid = eth.pay(watched, 9)
        eth.mine(1)
        height = int(receipt(eth, paid)["blockNumber"], 16)
        old = eth.client.block(height)
        assert old is not None
        assert old.transactions
        eth.reorg(2)
        new = eth.client.block(height)
        assert new is not None
        assert new.hash != old.hash
        assert paid not in new.txids
        assert new.transactions == ()
        assert new.prev_hash == old.prev_hash
        assert eth.client.tip().height == height + 2

    def test_token_payment_found_when_cached_range_went_stale_in_a_reorg(
        self, usdt: AnvilDriver, proxy: EvmProxy, token: str
    ) -> None:
        client = client_of(proxy.url, token=token)
        watched = usdt.new_address()
        client.watch([watched])
        usdt.mine(5)
        tip = client.tip()
        start = tip.height - 4
        assert client.block(start) is not None  # logs of start..tip fetched: none
        [ranged] = proxy.calls("eth_getLogs")
        assert int(ranged.params[0]["toBlock"], 16) == tip.height
        usdt.rewind(3)
        paid = usdt.pay(watched, 31)  # in the new branch, at a height the cache calls empty
        usdt.mine(3)
        height = int(receipt(usdt, paid)["blockNumber"], 16)
        assert start < height <= tip.height
        block = client.block(height)
        assert block is not None
        assert [t.txid for tx in block.transactions for t in tx.transfers] == [paid]
        # The block's bloom contradicted the cached empty answer: fetched again by its hash.
        assert [s.params[0].get("blockHash") for s in proxy.calls("eth_getLogs")[1:]] == [
            block.hash]
        client.close()


class TestLogRanges:
    def test_get_logs_bounded_by_log_range_when_scanning(
        self, usdt: AnvilDriver, proxy: EvmProxy, token: str
    ) -> None:
        client = client_of(proxy.url, token=token, log_range=4)
        watched = usdt.new_address()
        client.watch([watched])
        start = usdt.height() + 1
        txids = [usdt.pay(watched, n) for n in range(1, 11)]  # ten blocks, one payment each
        tip = client.tip()
        found = []
        for height in range(start, tip.height + 1):
            block = client.block(height)
            assert block is not None
            found += [t.txid for tx in block.transactions for t in tx.transfers]
        assert found == txids
        spans = [int(s.params[0]["toBlock"], 16) - int(s.params[0]["fromBlock"], 16) + 1
                 for s in proxy.calls("eth_getLogs") if "fromBlock" in s.params[0]]
        assert max(spans) <= 4
        assert len(spans) == 3  # 10 blocks in ranges of 4, not one request per block
        client.close()

    def test_range_halved_when_provider_refuses_its_size(
        self, usdt: AnvilDriver, proxy: EvmProxy, token: str
    ) -> None:
        def refuse(seen: Seen) -> Any:
            query = seen.params[0] if seen.method == "eth_getLogs" else {}
            if "fromBlock" in query and (
                int(query["toBlock"], 16) - int(query["fromBlock"], 16) >= 2
            ):
                return error(-32005, "query returned more than 10000 results")
            return None

        proxy.refuse = refuse
        client = client_of(proxy.url, token=token, log_range=8)
        watched = usdt.new_address()
        client.watch([watched])
        start = usdt.height() + 1
        txids = [usdt.pay(watched, n) for n in range(1, 6)]
        client.tip()
        found = [t.txid for h in range(start, start + 5)
                 for tx in (client.block(h) or pytest.fail("no block")).transactions
                 for t in tx.transfers]
        assert found == txids
        assert client.logs.span == 2
        client.close()


class TestEndpoints:
    def test_failover_from_a_dead_endpoint_to_a_live_one(self, eth: AnvilDriver) -> None:
        dead = f"http://127.0.0.1:{free_port()}/v3/secret-key"
        client = client_of([dead, eth.node.url])
        assert client.tip().height == eth.height()
        first, second = client.endpoint_health()
        assert first.state is EndpointState.DOWN
        assert "cannot be reached" in first.problem
        assert "secret-key" not in first.name + first.problem
        assert second.state is EndpointState.OK
        assert second.head == eth.height()
        client.close()

    def test_head_going_backwards_leaves_the_endpoint_aside(
        self, eth: AnvilDriver, proxy: EvmProxy
    ) -> None:
        eth.mine(3)
        client = client_of([proxy.url, eth.node.url], reorg_limit=2)
        real = client.tip()
        earlier = eth.rpc("eth_getBlockByNumber", hex(real.height - 3), False)
        proxy.rewrite = lambda seen, result: earlier if seen.params[:1] == ["latest"] else result
        assert client.tip() == real  # answered by the honest endpoint
        liar, honest = client.endpoint_health()
        assert liar.state is EndpointState.UNTRUSTED
        assert "went back" in liar.problem
        assert honest.state is EndpointState.OK
        client.close()

    def test_missing_block_below_its_head_is_unavailable_from_a_lone_liar(
        self, eth: AnvilDriver, proxy: EvmProxy
    ) -> None:
        eth.mine(2)
        client = client_of(proxy.url)
        tip = client.tip()
        missing = hex(tip.height - 1)
        proxy.rewrite = lambda seen, result: None if seen.params[:1] == [missing] else result
        with pytest.raises(UnavailableError, match="no block"):
            client.block(tip.height - 1)
        [liar] = client.endpoint_health()
        assert liar.state is EndpointState.UNTRUSTED
        client.close()

    def test_block_not_linking_to_its_parent_is_untrusted(
        self, eth: AnvilDriver, proxy: EvmProxy
    ) -> None:
        eth.mine(2)
        client = client_of([proxy.url, eth.node.url])
        tip = client.tip()
        assert client.block_hash(tip.height - 1) is not None
        forged = hex(tip.height)

        def rewrite(seen: Seen, result: Any) -> Any:
            if seen.params[:1] == [forged] and isinstance(result, dict):
                return {**result, "parentHash": "0x" + "ab" * 32}
            return result

        proxy.rewrite = rewrite
        block = client.block(tip.height)
        assert block is not None
        assert block.prev_hash == client.block_hash(tip.height - 1)
        assert client.endpoint_health()[0].state is EndpointState.UNTRUSTED
        client.close()

    def test_wrong_chain_id_is_a_config_error_when_every_endpoint_has_it(
        self, eth: AnvilDriver
    ) -> None:
        client = EvmChainClient.connect(anvil_spec(eth.node.url, chain_id=5))
        with pytest.raises(ConfigError, match="serves chain id 31337, not 5"):
            client.tip()
        assert client.endpoint_health()[0].state is EndpointState.MISCONFIGURED
        client.close()


class TestFinality:
    def test_finalized_height_is_none_under_a_depth_policy(self, eth: AnvilDriver) -> None:
        assert eth.client.finalized_height() is None

    def test_finalized_height_lags_the_head_as_anvil_declares_it(self, eth: AnvilDriver) -> None:
        eth.mine(70)
        client = client_of(eth.node.url, confirmations="finalized")
        tip = client.tip()
        finalized = client.finalized_height()
        assert finalized == int(eth.rpc("eth_getBlockByNumber", "finalized", False)["number"], 16)
        assert finalized is not None
        assert finalized < tip.height
        safe = client_of(eth.node.url, confirmations="safe")
        safe_height = safe.finalized_height()
        assert safe_height is not None
        assert finalized < safe_height < tip.height
        client.close()
        safe.close()

    def test_finalized_height_follows_a_provider_whose_finalized_is_the_head(
        self, eth: AnvilDriver, proxy: EvmProxy
    ) -> None:
        def at_head(seen: Seen, result: Any) -> Any:
            if seen.params[:1] == ["finalized"]:
                return eth.rpc("eth_getBlockByNumber", "latest", False)
            return result

        proxy.rewrite = at_head
        client = client_of(proxy.url, confirmations="finalized")
        eth.mine(1)
        assert client.finalized_height() == client.tip().height
        client.close()

    def test_finalized_going_back_leaves_the_endpoint_aside(
        self, eth: AnvilDriver, proxy: EvmProxy
    ) -> None:
        eth.mine(70)
        client = client_of([proxy.url, eth.node.url], confirmations="finalized")
        honest = client.finalized_height()
        assert honest is not None
        genesis = eth.rpc("eth_getBlockByNumber", "0x0", False)
        proxy.rewrite = lambda seen, result: genesis if seen.params[:1] == ["finalized"] else result
        assert client.finalized_height() == honest  # from the second endpoint
        assert client.endpoint_health()[0].state is EndpointState.UNTRUSTED
        client.close()


class TestAccountReads:
    def test_balances_fees_and_nonce_reservations(
        self, usdt: AnvilDriver, token: str
    ) -> None:
        watched = usdt.new_address()
        usdt.pay(watched, 500)
        rpc = usdt.client.rpc
        assert rpc.token_balance(token, watched) == 500
        assert rpc.balance(watched) == 0
        levels = rpc.fee_levels()
        assert levels.base_fee_per_gas > 0
        assert levels.slow.max_fee_per_gas >= 2 * levels.base_fee_per_gas
        pending = rpc.nonce(usdt.payer)
        with usdt.client.nonces.reserve(usdt.payer) as first, \
                usdt.client.nonces.reserve(usdt.payer) as second:
            assert (first.nonce, second.nonce) == (pending, pending + 1)
        with usdt.client.nonces.reserve(usdt.payer) as again:
            assert again.nonce == pending  # released, not lost
