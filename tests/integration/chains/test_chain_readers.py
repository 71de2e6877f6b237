"""Balances and fee estimates from real nodes (Bitcoin Knots regtest, anvil), and a node
reconciling against regtest end to end.

Expected values are read from the nodes themselves through their own RPC (``getbalance`` of
the UTXO set's view, ``eth_getBalance``, ``estimatesmartfee``, ``eth_feeHistory``), never
written into the test.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey
from web3.types import Wei

from dpgnode.adapters.assets import load_registry
from dpgnode.adapters.chains.balances import BitcoinRpcBalances
from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.adapters.chains.readers import ConfiguredChainReaders
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.chains.fees import FeeKind
from dpgnode.domain.chains.reconcile import ReconcileState
from dpgnode.domain.custody.addresses import address_from_public_key
from dpgnode.domain.custody.evm import checksum_encode
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.node import Node
from dpgnode.settings import ChainsSettings
from tests.contracts.compile import load_artifact
from tests.support.anvil import CHAIN_ID, AnvilNode
from tests.support.anvil_driver import TOKEN_ASSET, deploy_token
from tests.support.bitcoind import BitcoindNode, btc_to_sats
from tests.support.custody import custody_node
from tests.support.memory_signer import MemorySigner

pytestmark = pytest.mark.integration

COIN = 100_000_000


def _regtest_address() -> str:
    key = PrivateKey(secrets.token_bytes(32)).public_key.format()
    return address_from_public_key(key, AddressType.P2WPKH, Network.REGTEST)


def _send(bitcoind: BitcoindNode, address: str, btc: str) -> str:
    txid: str = bitcoind.rpc("sendtoaddress", address, Decimal(btc), wallet="funder")
    return txid


def _mine(bitcoind: BitcoindNode, blocks: int = 1) -> None:
    bitcoind.rpc("generatetoaddress", blocks, _regtest_address())


def _chains(bitcoind: BitcoindNode | None = None, anvil: AnvilNode | None = None,
            token: str | None = None) -> dict[str, Any]:
    chains: dict[str, Any] = {}
    if bitcoind is not None:
        chains["bitcoin"] = {"rpc_url": f"http://127.0.0.1:{bitcoind.port}",
                             "rpc_user": bitcoind.user, "rpc_password": bitcoind.password,
                             "network": "regtest"}
    if anvil is not None:
        evm: dict[str, Any] = {"rpc_url": anvil.url, "chain_id": CHAIN_ID, "confirmations": 1}
        if token is not None:
            evm["tokens"] = {TOKEN_ASSET: token}
        chains["evm"] = {"ethereum": evm}
    return chains


def _readers(chains: dict[str, Any]) -> ConfiguredChainReaders:
    return ConfiguredChainReaders(ChainsSettings.model_validate(chains), load_registry(),
                                  Network.REGTEST)


class TestBitcoinBalances:
    @pytest.fixture
    def rpc(self, bitcoind: BitcoindNode) -> Iterator[BitcoinRpc]:
        from pydantic import SecretStr

        client = BitcoinRpc.connect(f"http://127.0.0.1:{bitcoind.port}", network=Network.REGTEST,
                                    user=bitcoind.user, password=SecretStr(bitcoind.password))
        yield client
        client.close()

    def test_confirmed_outputs_count_up_to_the_asked_height(
        self, bitcoind: BitcoindNode, rpc: BitcoinRpc
    ) -> None:
        paid, other, unpaid = _regtest_address(), _regtest_address(), _regtest_address()
        _send(bitcoind, paid, "0.3")
        _mine(bitcoind)
        first_height = bitcoind.rpc("getblockcount")
        _send(bitcoind, paid, "0.02")
        _send(bitcoind, other, "0.5")
        _mine(bitcoind)
        _send(bitcoind, other, "0.1")  # unconfirmed: in no view
        reader = BitcoinRpcBalances(rpc)

        now = reader.balances("BTC", [paid, other, unpaid])
        earlier = reader.balances("BTC", [paid, other, unpaid], at_height=first_height)

        def utxo_total(address: str) -> int:
            found = bitcoind.rpc("scantxoutset", "start", [f"addr({address})"])
            return btc_to_sats(found["total_amount"])

        assert now == {paid: utxo_total(paid), other: utxo_total(other)}
        assert now[paid] == btc_to_sats(Decimal("0.32"))
        assert earlier == {paid: btc_to_sats(Decimal("0.3"))}
        _mine(bitcoind)  # leave no unconfirmed transaction behind for other tests

    def test_an_asset_the_chain_does_not_carry_is_refused(self, rpc: BitcoinRpc) -> None:
        with pytest.raises(ValidationError) as caught:
            BitcoinRpcBalances(rpc).balances("ETH", [_regtest_address()])
        assert caught.value.field == "asset"


class TestEvmBalances:
    def test_native_and_token_balances_are_read_at_the_asked_block(
        self, anvil: AnvilNode
    ) -> None:
        token = deploy_token(anvil)
        readers = _readers(_chains(anvil=anvil, token=token))
        try:
            reader = readers.reader("ethereum")
            w3 = anvil.w3
            payer = w3.eth.accounts[0]
            address = checksum_encode(secrets.token_bytes(20))
            before = w3.eth.block_number
            sent = w3.eth.send_transaction({"from": payer, "to": address, "value": Wei(12345)})
            w3.eth.wait_for_transaction_receipt(sent, timeout=30)
            contract = w3.eth.contract(address=w3.to_checksum_address(token),
                                       abi=load_artifact()["abi"])
            moved = contract.functions.transfer(address, 777).transact({"from": payer})
            w3.eth.wait_for_transaction_receipt(moved, timeout=30)

            assert reader.balances("ETH", [address]) == {
                address: w3.eth.get_balance(w3.to_checksum_address(address))}
            assert reader.balances(TOKEN_ASSET, [address]) == {
                address: contract.functions.balanceOf(address).call()}
            assert reader.balances("ETH", [address], at_height=before) == {}
            assert reader.balances(TOKEN_ASSET, [address], at_height=before) == {}
        finally:
            readers.close()


class TestFeeEstimates:
    def test_bitcoin_levels_are_the_nodes_estimates_above_the_floor(
        self, bitcoind: BitcoindNode
    ) -> None:
        readers = _readers(_chains(bitcoind=bitcoind))
        try:
            estimate = readers.estimate("bitcoin")
        finally:
            readers.close()

        def node_rate(target: int) -> int:
            found = bitcoind.rpc("estimatesmartfee", target).get("feerate", Decimal(0))
            minimum = bitcoind.rpc("getmempoolinfo")["mempoolminfee"]
            best = max(Decimal(1000), found * COIN, minimum * COIN)  # the 1 sat/vB floor
            return int(best.to_integral_value(rounding="ROUND_CEILING"))

        assert estimate.kind is FeeKind.BITCOIN
        assert [(level.name, level.target_blocks) for level in estimate.levels] == [
            ("slow", 24), ("normal", 6), ("fast", 2)]
        for level in estimate.levels:
            assert level.target_blocks is not None
            assert level.sat_per_kvb == node_rate(level.target_blocks)

    def test_evm_levels_come_from_the_fee_history(self, anvil: AnvilNode) -> None:
        readers = _readers(_chains(anvil=anvil))
        try:
            estimate = readers.estimate("ethereum")
        finally:
            readers.close()
        history = anvil.w3.eth.fee_history(20, "latest", [10, 50, 90])
        assert estimate.kind is FeeKind.EIP1559
        assert estimate.base_fee_per_gas == history["baseFeePerGas"][-1]
        fees = [level.max_fee_per_gas for level in estimate.levels]
        tips = [level.max_priority_fee_per_gas for level in estimate.levels]
        assert [level.name for level in estimate.levels] == ["slow", "normal", "fast"]
        assert all(tip is not None and fee == 2 * history["baseFeePerGas"][-1] + tip
                   for fee, tip in zip(fees, tips, strict=True))
        assert tips == sorted(tips)  # type: ignore[type-var]

    def test_a_chain_without_a_node_is_not_found(self) -> None:
        readers = _readers({})
        with pytest.raises(NotFoundError) as caught:
            readers.estimate("polygon")
        assert caught.value.details["field"] == "chain"


class TestReconcilingAgainstRegtest:
    @pytest.fixture
    def node(self, tmp_path: Path, bitcoind: BitcoindNode) -> Iterator[Node]:
        opened = custody_node(tmp_path / "data", FixedClock(), chains=_chains(bitcoind=bitcoind))
        yield opened
        opened.close()

    def test_node_reconciles_credits_against_the_utxo_set_and_finds_a_missed_payment(
        self, node: Node, bitcoind: BitcoindNode
    ) -> None:
        assert node.chains.monitor.chains == ["bitcoin"], "the node follows [chains.bitcoin]"
        account = node.custody.keychains.create(
            MemorySigner(), words=12, network=Network.REGTEST).view.accounts[0]
        address = node.custody.addresses.issue(account.id, owner="store:st_1").address.address
        _send(bitcoind, address, "0.01")  # before the watcher's first block: missed
        _mine(bitcoind)
        missed_at = bitcoind.rpc("getblockcount")
        monitor = node.chains.monitor
        assert not monitor.poll("bitcoin", force=True).error
        _send(bitcoind, address, "0.05")
        _mine(bitcoind)
        assert not monitor.poll("bitcoin", force=True).error
        reconciler = node.chains.reconciler
        assert reconciler is not None

        [run] = reconciler.run_due()
        assert run.state is ReconcileState.MISMATCH, run
        [difference] = run.differences
        assert (difference.address, difference.ledger, difference.chain) == (
            address, btc_to_sats(Decimal("0.05")), btc_to_sats(Decimal("0.06")))

        monitor.watcher("bitcoin").rescan(missed_at)
        while (health := monitor.poll("bitcoin", force=True)).lag:
            assert not health.error
        settled = reconciler.reconcile("bitcoin")
        assert settled.state is ReconcileState.MATCHED, settled
        assert [(t.ledger, t.chain) for t in settled.totals] == [
            (btc_to_sats(Decimal("0.06")),) * 2]
        assert node.chains.store.incidents("bitcoin") == []
