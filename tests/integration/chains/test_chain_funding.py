"""The chain adapters (funding, broadcasting) against a real Bitcoin Knots regtest and anvil.

The node's custody services run over a SQLite file with the in-memory signer (what is
signed matters here, not where the key lives; the end-to-end test uses SoftHSM2). Outputs
come from the real UTXO set, fees from the real node, and every transaction our code signs
is judged by the real node.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_typing import HexStr
from web3 import Web3
from web3.types import Wei

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.custody.addresses import address_from_public_key
from dpgnode.domain.custody.btc_spend import FeeRate
from dpgnode.domain.custody.evm import evm_address_from_public_key
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.custody.wallet import CHANGE_BRANCH
from dpgnode.domain.ledger import AccountRef
from dpgnode.errors import ConfigError, NotFoundError
from dpgnode.node import Node, PayoutChains, build_payout_chains
from dpgnode.ports.custody import BitcoinFunding, EvmFunding
from dpgnode.ports.signer import HotKeyRef
from dpgnode.services.custody.payouts import PayoutRequest
from tests.integration.chains.signing import BURN
from tests.support.anvil import CHAIN_ID, DEV_KEYS, AnvilNode
from tests.support.bitcoind import BitcoindNode, btc_to_sats
from tests.support.custody import custody_node, fund
from tests.support.memory_signer import MemorySigner

pytestmark = pytest.mark.integration

COIN = 100_000_000
RECIPIENT = Account.from_key(DEV_KEYS[1]).address


@pytest.fixture
def signer() -> MemorySigner:
    return MemorySigner()


def chain_settings(bitcoind: BitcoindNode, anvil: AnvilNode, **evm: Any) -> dict[str, Any]:
    return {
        "bitcoin": {"rpc_url": f"http://127.0.0.1:{bitcoind.port}", "rpc_user": bitcoind.user,
                    "rpc_password": bitcoind.password},
        "evm": {"ethereum": {"rpc_url": anvil.url, "chain_id": CHAIN_ID, **evm}},
    }


@pytest.fixture
def node(tmp_path: Path, bitcoind: BitcoindNode, anvil: AnvilNode) -> Iterator[Node]:
    opened = custody_node(
        tmp_path / "data", FixedClock(),
        custody={"network": "regtest", "payout_policies": {
            "BTC": {"require_allowlist": False}, "ETH": {"require_allowlist": False}}},
        chains=chain_settings(bitcoind, anvil),
    )
    yield opened
    opened.close()


@pytest.fixture
def chains(node: Node, signer: MemorySigner) -> Iterator[PayoutChains]:
    built = build_payout_chains(node, public_keys=signer)
    yield built
    built.close()


@pytest.fixture
def alice(node: Node) -> Operator:
    return node.custody.operators.add("alice").operator


def send(bitcoind: BitcoindNode, address: str, btc: str) -> str:
    txid: str = bitcoind.rpc("sendtoaddress", address, Decimal(btc), wallet="funder")
    return txid


def expected_fee_rate(bitcoind: BitcoindNode) -> FeeRate:
    """The 1 sat/vB floor, or the node's estimate or mempool minimum when higher.

    The regtest node is shared by the session: earlier tests' transactions may have given
    it enough data for an estimate.
    """
    estimate = bitcoind.rpc("estimatesmartfee", 6).get("feerate", Decimal(0))
    minimum = bitcoind.rpc("getmempoolinfo")["mempoolminfee"]
    rates = [Decimal(1000), estimate * COIN, minimum * COIN]
    return FeeRate(int(max(rates).to_integral_value(rounding="ROUND_CEILING")))


def pay(
    node: Node, alice: Operator, signer: MemorySigner, chains: PayoutChains, asset: str,
    units: int, to: str, source: str, key: str,
) -> Payout:
    debit = AccountRef.parse(f"store:st_1:{asset}:available")
    fund(node, debit, units, f"fund-{key}")
    request = PayoutRequest(asset, units, to, debit, source, key)
    return node.custody.payouts.request(alice, request, signer=signer, funding=chains.funding)


class TestBitcoinFunding:
    def test_confirmed_outputs_of_issued_addresses_only_when_scanned(
        self, node: Node, signer: MemorySigner, chains: PayoutChains, bitcoind: BitcoindNode
    ) -> None:
        account = node.custody.keychains.create(
            signer, words=12, network=Network.REGTEST).view.accounts[0]
        first = node.custody.addresses.issue(account.id).address
        second = node.custody.addresses.issue(account.id).address
        change = node.custody.addresses.issue(account.id, branch=CHANGE_BRANCH).address
        send(bitcoind, first.address, "1.0")
        send(bitcoind, change.address, "0.25")
        bitcoind.mine(1, BURN)
        send(bitcoind, second.address, "0.5")  # left unconfirmed: not spendable yet

        funds = chains.funding.bitcoin(account.id, Network.REGTEST)

        found = sorted((u.key_id, u.value_sats) for u in funds.utxos)
        assert found == [(f"{account.id}/0/0", COIN), (f"{account.id}/1/0", COIN // 4)]
        assert funds.fee_rate == expected_fee_rate(bitcoind)
        bitcoind.mine(1, BURN)
        assert len(chains.funding.bitcoin(account.id, Network.REGTEST).utxos) == 3

    def test_outputs_are_reserved_from_signing_until_mined_when_a_payout_spends_them(
        self, node: Node, signer: MemorySigner, chains: PayoutChains, bitcoind: BitcoindNode,
        alice: Operator,
    ) -> None:
        account = node.custody.keychains.create(
            signer, words=12, network=Network.REGTEST).view.accounts[0]
        for btc in ("1.0", "0.3"):
            send(bitcoind, node.custody.addresses.issue(account.id).address.address, btc)
        bitcoind.mine(1, BURN)
        destination = bitcoind.rpc("getnewaddress", "", "bech32", wallet="funder")

        payout = pay(node, alice, signer, chains, "BTC", COIN // 2, destination, account.id,
                     "btc-1")
        assert payout.status is PayoutStatus.SIGNED
        left = chains.funding.bitcoin(account.id, Network.REGTEST).utxos
        assert [u.value_sats for u in left] == [30_000_000]  # the 1 BTC output is taken

        result = chains.broadcaster.broadcast("BTC", payout.raw_tx or "", payout.txid or "")
        assert (result.accepted, result.known) == (True, False)
        fee = btc_to_sats(bitcoind.rpc("getmempoolentry", payout.txid)["fees"]["base"])
        node_view = node.custody.payouts  # still signed: only the service records broadcasts
        assert node_view.payout(payout.id).status is PayoutStatus.SIGNED
        assert chains.broadcaster.broadcast("BTC", payout.raw_tx or "", payout.txid or "").known

        bitcoind.mine(1, BURN)
        after = chains.funding.bitcoin(account.id, Network.REGTEST).utxos
        change = [u for u in after if u.key_id.startswith(f"{account.id}/1/")]
        assert [u.value_sats for u in change] == [COIN - COIN // 2 - fee]
        assert chains.broadcaster.broadcast("BTC", payout.raw_tx or "", payout.txid or "").known
        received = bitcoind.rpc("getreceivedbyaddress", destination, 1, wallet="funder")
        assert btc_to_sats(received) == COIN // 2

    def test_node_reason_is_returned_and_nothing_relayed_when_inputs_vanished(
        self, node: Node, signer: MemorySigner, chains: PayoutChains, bitcoind: BitcoindNode,
        alice: Operator,
    ) -> None:
        account = node.custody.keychains.create(
            signer, words=12, network=Network.REGTEST).view.accounts[0]
        funding_txid = send(bitcoind, node.custody.addresses.issue(account.id).address.address,
                            "1.0")
        (block,) = bitcoind.mine(1, BURN)
        destination = bitcoind.rpc("getnewaddress", "", "bech32", wallet="funder")
        payout = pay(node, alice, signer, chains, "BTC", COIN // 2, destination, account.id,
                     "btc-reorg")
        raw, txid = payout.raw_tx or "", payout.txid or ""
        # A reorganisation drops the funding block, and the sender replaces the funding
        # transaction: the output the payout spends no longer exists anywhere.
        bitcoind.rpc("invalidateblock", block)
        bitcoind.rpc("bumpfee", funding_txid, wallet="funder")
        try:
            refused = chains.broadcaster.broadcast("BTC", raw, txid)
            assert (refused.accepted, refused.known) == (False, False)
            assert refused.reason == "missing-inputs"
            assert txid not in bitcoind.rpc("getrawmempool")
        finally:
            bitcoind.rpc("reconsiderblock", block)  # the funding block is back; the bump goes
        accepted = chains.broadcaster.broadcast("BTC", raw, txid)
        assert (accepted.accepted, accepted.known) == (True, False)
        bitcoind.mine(1, BURN)
        assert bitcoind.rpc("getrawtransaction", txid, True)["confirmations"] == 1

    def test_hot_key_address_is_scanned_when_the_signer_names_its_key(
        self, node: Node, signer: MemorySigner, chains: PayoutChains, bitcoind: BitcoindNode
    ) -> None:
        ref = HotKeyRef("hot:BTC:regtest")
        address = address_from_public_key(signer.generate_hot_key(ref.label),
                                          AddressType.P2WPKH, Network.REGTEST)
        send(bitcoind, address, "0.7")
        bitcoind.mine(1, BURN)
        funds = chains.funding.bitcoin(ref.label, Network.REGTEST)
        assert [(u.key_id, u.value_sats) for u in funds.utxos] == [(ref.label, 70_000_000)]
        without_signer = build_payout_chains(node)
        with pytest.raises(ConfigError, match="signer"):
            without_signer.funding.bitcoin(ref.label, Network.REGTEST)
        without_signer.close()

    def test_refused_when_source_or_network_is_wrong(
        self, node: Node, chains: PayoutChains
    ) -> None:
        with pytest.raises(NotFoundError):
            chains.funding.bitcoin("ka_missing", Network.REGTEST)
        with pytest.raises(ConfigError, match="configured for regtest"):
            chains.funding.bitcoin("ka_missing", Network.MAINNET)

    def test_config_error_when_node_is_on_another_network(
        self, tmp_path: Path, bitcoind: BitcoindNode, anvil: AnvilNode
    ) -> None:
        settings = chain_settings(bitcoind, anvil)
        settings["bitcoin"]["network"] = "mainnet"
        opened = custody_node(tmp_path / "other", FixedClock(), chains=settings)
        built = build_payout_chains(opened)
        try:
            with pytest.raises(ConfigError, match="on chain 'regtest', not mainnet"):
                built.check("BTC")
        finally:
            built.close()
            opened.close()

    def test_check_describes_the_node_when_it_is_on_the_right_chain(
        self, chains: PayoutChains
    ) -> None:
        assert "Bitcoin node at http://127.0.0.1:" in chains.check("BTC")
        assert "regtest, height" in chains.check("BTC")
        assert f"chain id {CHAIN_ID}" in chains.check("ETH")


@dataclass
class StaleFunding:
    """What a second, concurrent signer saw: the same outputs / nonce, a higher fee."""

    btc: BitcoinFunding | None = None
    eth: EvmFunding | None = None

    def bitcoin(self, source: str, network: Network) -> BitcoinFunding:
        assert self.btc is not None
        return self.btc

    def evm(self, asset: str, sender: str) -> EvmFunding:
        assert self.eth is not None
        return self.eth


class TestNeverReplace:
    def test_bitcoin_payout_is_refused_when_it_would_replace_a_broadcast_one(
        self, node: Node, signer: MemorySigner, chains: PayoutChains, bitcoind: BitcoindNode,
        alice: Operator,
    ) -> None:
        account = node.custody.keychains.create(
            signer, words=12, network=Network.REGTEST).view.accounts[0]
        send(bitcoind, node.custody.addresses.issue(account.id).address.address, "1.0")
        bitcoind.mine(1, BURN)
        destination = bitcoind.rpc("getnewaddress", "", "bech32", wallet="funder")
        seen = chains.funding.bitcoin(account.id, Network.REGTEST)
        first = pay(node, alice, signer, chains, "BTC", COIN // 4, destination, account.id,
                    "race-a")
        stale = StaleFunding(btc=BitcoinFunding(seen.utxos, FeeRate(seen.fee_rate.sat_per_kvb * 3)))
        debit = AccountRef.parse("store:st_1:BTC:available")
        fund(node, debit, COIN // 4, "fund-race-b")
        second = node.custody.payouts.request(
            alice, PayoutRequest("BTC", COIN // 4, destination, debit, account.id, "race-b"),
            signer=signer, funding=stale,
        )
        assert chains.broadcaster.broadcast("BTC", first.raw_tx or "", first.txid or "").accepted
        (would,) = bitcoind.rpc("testmempoolaccept", [second.raw_tx])
        assert would["allowed"]  # the node itself would let the second replace the first

        refused = chains.broadcaster.broadcast("BTC", second.raw_tx or "", second.txid or "")

        assert not refused.accepted
        assert "broadcasting would replace it" in refused.reason
        mempool = bitcoind.rpc("getrawmempool")
        assert (first.txid in mempool, second.txid in mempool) == (True, False)
        bitcoind.mine(1, BURN)

    def test_evm_payout_is_refused_when_its_nonce_is_taken_by_a_pending_one(
        self, node: Node, signer: MemorySigner, chains: PayoutChains, anvil: AnvilNode,
        alice: Operator,
    ) -> None:
        label = "hot:ETH:race"
        sender = Web3.to_checksum_address(
            evm_address_from_public_key(signer.generate_hot_key(label)))
        w3 = anvil.w3
        w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
            {"from": w3.eth.accounts[0], "to": sender, "value": Wei(3 * 10**18)}))
        seen = chains.funding.evm("ETH", sender)
        first = pay(node, alice, signer, chains, "ETH", 10**17, RECIPIENT, label, "race-1")
        stale = StaleFunding(eth=replace(seen, max_fee_per_gas=seen.max_fee_per_gas * 3,
                                         max_priority_fee_per_gas=seen.max_fee_per_gas * 2))
        debit = AccountRef.parse("store:st_1:ETH:available")
        fund(node, debit, 10**17, "fund-race-2")
        second = node.custody.payouts.request(
            alice, PayoutRequest("ETH", 10**17, RECIPIENT, debit, label, "race-2"),
            signer=signer, funding=stale,
        )
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        try:
            assert chains.broadcaster.broadcast("ETH", first.raw_tx or "",
                                                first.txid or "").accepted
            refused = chains.broadcaster.broadcast("ETH", second.raw_tx or "",
                                                   second.txid or "")
            assert not refused.accepted
            assert "nonce 0" in refused.reason
            assert "broadcasting would replace it" in refused.reason
            assert w3.eth.get_transaction(HexStr(first.txid or ""))["blockNumber"] is None
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        finally:
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        assert w3.eth.get_transaction_receipt(HexStr(first.txid or ""))["status"] == 1


@pytest.fixture
def token(anvil: AnvilNode) -> Any:
    from tests.contracts.compile import load_artifact

    artifact = load_artifact()
    w3 = anvil.w3
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor("Test Tether", "TUSDT", 6).transact({"from": w3.eth.accounts[0]}))
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


class TestEvmFunding:
    def test_nonce_fees_and_gas_come_from_the_node_and_signed_payouts(
        self, node: Node, signer: MemorySigner, chains: PayoutChains, anvil: AnvilNode,
        alice: Operator,
    ) -> None:
        ref = HotKeyRef("hot:ETH:anvil")
        public_key = signer.generate_hot_key(ref.label)
        sender = Web3.to_checksum_address(evm_address_from_public_key(public_key))
        w3 = anvil.w3
        w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
            {"from": w3.eth.accounts[0], "to": sender, "value": Wei(3 * 10**18)}))

        funds = chains.funding.evm("ETH", sender)
        base = w3.eth.fee_history(1, "latest", [50])["baseFeePerGas"][-1]
        assert (funds.chain_id, funds.nonce, funds.token_contract) == (CHAIN_ID, 0, None)
        assert funds.gas == 26_250  # 21,000 plus the default 25 % margin
        assert funds.max_priority_fee_per_gas == w3.eth.max_priority_fee
        assert funds.max_fee_per_gas == 2 * base + funds.max_priority_fee_per_gas

        first = pay(node, alice, signer, chains, "ETH", 10**18, RECIPIENT, ref.label, "e-1")
        second = pay(node, alice, signer, chains, "ETH", 10**17, RECIPIENT, ref.label, "e-2")
        assert chains.funding.evm("ETH", sender).nonce == 2  # both signed, neither sent
        before = w3.eth.get_balance(RECIPIENT)
        for payout in (first, second):
            sent = chains.broadcaster.broadcast("ETH", payout.raw_tx or "", payout.txid or "")
            assert (sent.accepted, sent.known) == (True, False)
        assert w3.eth.get_balance(RECIPIENT) == before + 11 * 10**17
        again = chains.broadcaster.broadcast("ETH", first.raw_tx or "", first.txid or "")
        assert (again.accepted, again.known) == (True, True)

    def test_token_gas_is_estimated_for_a_fresh_recipient_when_asset_is_erc20(
        self, tmp_path: Path, bitcoind: BitcoindNode, anvil: AnvilNode, token: Any
    ) -> None:
        settings = chain_settings(bitcoind, anvil, tokens={"USDT-ETH": token.address})
        opened = custody_node(tmp_path / "t", FixedClock(), chains=settings)
        built = build_payout_chains(opened)
        holder = anvil.w3.eth.accounts[0]
        token.functions.mint(holder, 5_000_000).transact({"from": holder})
        try:
            funds = built.funding.evm("USDT-ETH", holder)
            assert funds.token_contract == token.address
            fresh = token.functions.transfer(
                "0x" + "42" * 20, 1).estimate_gas({"from": holder})
            assert funds.gas == -(-fresh * 125 // 100)
        finally:
            built.close()
            opened.close()

    def test_config_errors_name_the_setting_when_chain_or_token_is_missing(
        self, tmp_path: Path, bitcoind: BitcoindNode, anvil: AnvilNode
    ) -> None:
        opened = custody_node(tmp_path / "none", FixedClock())
        built = build_payout_chains(opened)
        try:
            with pytest.raises(ConfigError, match=r"set chains\.bitcoin\.rpc_url"):
                built.check("BTC")
            with pytest.raises(ConfigError, match=r"set chains\.evm\.ethereum\.rpc_url"):
                built.funding.evm("ETH", RECIPIENT)
        finally:
            built.close()
            opened.close()
        # Chain id 5 is not the registry's (1): the registry's mainnet token contracts are
        # not inherited, so USDT-ETH has none.
        wrong = custody_node(tmp_path / "wrong", FixedClock(),
                             chains={"evm": {"ethereum": {"rpc_url": anvil.url, "chain_id": 5}}})
        built = build_payout_chains(wrong)
        try:
            with pytest.raises(ConfigError, match="serves chain id 31337, not 5"):
                built.funding.evm("ETH", RECIPIENT)
            with pytest.raises(ConfigError, match=r"chains\.evm\.ethereum\.tokens"):
                built.check("USDT-ETH")
        finally:
            built.close()
            wrong.close()
