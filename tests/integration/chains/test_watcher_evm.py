"""The chain watcher against a real anvil: ETH and ERC-20 payments, depth, reorgs, finality.

The EVM counterpart of ``test_watcher_bitcoin``: each node is wired by ``build_node`` from
``[chains.evm.ethereum]`` settings (anvil's chain id 31337, the test ERC-20 from
``tests/contracts`` configured as ``USDT-ETH``), so ``followed_chains`` builds the real
``EvmChainClient`` over JSON-RPC, and the watcher, ledger and outbox run on SQLite. Addresses
are issued by the node's address pool from a watch-only EVM account key (``m/44'/60'/k'`` of
the published BIP84 test mnemonic); payments come from anvil's funded dev account (the
outside world, ``tests/support/anvil_driver``). Polls are driven by hand through
``node.chains.monitor.poll``; nothing is asserted against wall time.

EVM chains have no mempool the node can rely on, so a payment is first seen in a block
(``confirming``). Anvil mines every transaction at once, in a block of its own. It declares
``safe`` 32 and ``finalized`` 64 blocks below its head: that is the provider whose tags lag;
a proxy answering both tags with the head is the provider whose tags follow it (R9).

This module runs its own anvil: its reorganisations revert blocks, which must not touch the
blocks other modules' fixtures made. Each node watches a key account of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_typing import HexStr

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.chains.payments import Payment, PaymentStatus
from dpgnode.domain.custody.bip32 import master_from_seed
from dpgnode.domain.custody.mnemonic import mnemonic_to_seed
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import Scheme
from dpgnode.domain.events import OutboxEvent
from dpgnode.domain.ledger import AccountRef
from dpgnode.node import Node, build_node
from dpgnode.services.chains.monitor import ChainHealth
from dpgnode.services.chains.status import ChainStatus
from dpgnode.settings import Settings, load_settings
from tests.support.anvil import CHAIN_ID, AnvilNode, start_anvil
from tests.support.anvil_driver import TOKEN_ASSET, AnvilDriver, deploy_token
from tests.support.bitcoind import free_port
from tests.support.custody import VECTOR_MNEMONIC
from tests.support.evm_proxy import EvmProxy, evm_proxy
from tests.support.jsonrpc_server import Reply, Seen

pytestmark = pytest.mark.integration

CHAIN = "ethereum"
OWNER = "store:st_1"
WEI = 1_234_567_890_123_456_789
"""An ETH payment in wei: above 2**53, so a float anywhere on the way would change it."""
TOKEN_UNITS = 2_500_000_123
TAG_LAG = {"safe": 32, "finalized": 64}
"""Blocks anvil declares each tag below its head."""
_ACCOUNTS = itertools.count()
_SEED = mnemonic_to_seed(VECTOR_MNEMONIC)


def evm_account_key(account: int) -> str:
    """EVM account key ``m/44'/60'/<account>'`` of the published test mnemonic (no secret)."""
    master = master_from_seed(_SEED, Network.REGTEST)
    return master.derive_path(f"m/44'/60'/{account}'").public().serialize("tpub")


def store_account(asset: str) -> AccountRef:
    return AccountRef.parse(f"{OWNER}:{asset}:available")


@pytest.fixture(scope="module")
def chain_node() -> Iterator[AnvilNode]:
    with start_anvil() as running:
        yield running


@pytest.fixture(scope="module")
def token(chain_node: AnvilNode) -> str:
    """The test ERC-20 the nodes follow as ``USDT-ETH``."""
    return deploy_token(chain_node)


@pytest.fixture(scope="module")
def stray_token(chain_node: AnvilNode) -> str:
    """Another deployment of the same contract, configured nowhere."""
    return deploy_token(chain_node)


@pytest.fixture
def eth(chain_node: AnvilNode) -> Iterator[AnvilDriver]:
    """Pays ETH from anvil's dev account 0; mines, and reorganises by snapshot and revert."""
    driver = AnvilDriver(chain_node)
    yield driver
    driver.close()


@pytest.fixture
def usdt(chain_node: AnvilNode, token: str) -> Iterator[AnvilDriver]:
    driver = AnvilDriver(chain_node, token=token)
    yield driver
    driver.close()


@dataclass
class Rig:
    """A node following anvil as ``ethereum``, and what the tests ask of it."""

    settings: Settings
    clock: FixedClock
    node: Node
    account_id: str

    def poll(self) -> ChainHealth:
        """One watcher poll through the monitor, as the node's worker runs it."""
        health = self.node.chains.monitor.poll(CHAIN, force=True)
        assert not health.error, health.error
        return health

    def address(self, owner: str = OWNER) -> str:
        return self.node.custody.addresses.issue(self.account_id, owner=owner).address.address

    def restart(self) -> None:
        """Close the node and open a new one on the same database (a new watcher)."""
        self.node.close()
        self.clock = FixedClock()
        self.node = build_node(self.settings, clock=self.clock)

    def balance(self, asset: str = "ETH") -> int:
        account = self.node.queries.account(store_account(asset))
        return 0 if account is None else account.balance

    def payment(self, key: str) -> Payment:
        found = self.node.chains.store.payment(CHAIN, key)
        assert found is not None, key
        return found

    def events(self, kind: str = "chain.") -> list[OutboxEvent]:
        return list(self.node.outbox.events(type_prefix=kind, limit=10_000))

    def kinds(self, key: str) -> list[str]:
        """Types of the events about the payment ``key``, in commit order."""
        return [e.type for e in self.events("chain.payment_") if e.payload["paymentKey"] == key]


OpenRig = Callable[..., Rig]


@pytest.fixture
def open_rig(tmp_path: Path, chain_node: AnvilNode, token: str) -> Iterator[OpenRig]:
    """Opens a node on anvil (``confirmations``, ``rpc_urls``, the key ``account``, more
    ``[chains.evm.ethereum]`` fields); its first poll puts the watcher at the tip."""
    rigs: list[Rig] = []

    def make(*, confirmations: int | str = 1, rpc_urls: list[str] | None = None,
             account: int | None = None, **chain: Any) -> Rig:
        urls = rpc_urls or [chain_node.url]
        settings = load_settings(tmp_path / f"node-{len(rigs)}", overrides={
            "custody": {"network": "regtest"},
            "chains": {"evm": {CHAIN: {
                "rpc_url": urls[0], "rpc_urls": urls[1:], "chain_id": CHAIN_ID,
                "confirmations": confirmations, "tokens": {TOKEN_ASSET: token}, **chain,
            }}},
        })
        clock = FixedClock()
        node = build_node(settings, clock=clock, upgrade=True)
        key = evm_account_key(next(_ACCOUNTS) if account is None else account)
        view = node.custody.keychains.add_watch_only(key, network=Network.REGTEST,
                                                     scheme=Scheme.EVM)
        rig = Rig(settings, clock, node, view.accounts[0].id)
        rigs.append(rig)
        rig.poll()
        return rig

    yield make
    for rig in rigs:
        rig.node.close()


def mined_at(driver: AnvilDriver, txid: str) -> int:
    return int(driver.rpc("eth_getTransactionReceipt", txid)["blockNumber"], 16)


def send_again(driver: AnvilDriver, raw: str) -> str:
    """Broadcast signed bytes again (anvil mines them at once); the txid."""
    txid = str(driver.rpc("eth_sendRawTransaction", raw))
    receipt = driver.node.w3.eth.wait_for_transaction_receipt(HexStr(txid), timeout=30)
    assert receipt["status"] == 1
    return txid


# -- native ETH: seen in a block, credited once at the policy depth ----------------------------


def test_eth_payment_is_confirming_in_its_block_and_credited_once_at_three_confirmations(
    open_rig: OpenRig, eth: AnvilDriver
) -> None:
    rig = open_rig(confirmations=3)
    address = rig.address()
    txid = eth.pay(address, WEI)
    key = f"{txid}:native"

    health = rig.poll()
    seen = rig.payment(key)
    assert (seen.status, seen.units, seen.asset, seen.owner, seen.address) == (
        PaymentStatus.CONFIRMING, WEI, "ETH", OWNER, address)
    assert seen.block is not None
    assert seen.block.height == mined_at(eth, txid)
    assert health.mempool_size == 0  # no mempool view: first seen in its block
    assert rig.balance() == 0

    rig.restart()  # a new watcher between two confirmations resumes from its cursor
    eth.mine(1)
    rig.poll()
    assert rig.payment(key).status is PaymentStatus.CONFIRMING
    assert rig.balance() == 0

    eth.mine(1)
    rig.poll()
    credited = rig.payment(key)
    assert credited.status is PaymentStatus.CREDITED
    assert rig.balance() == WEI

    rig.poll()
    rig.restart()
    eth.mine(2)
    rig.poll()
    rig.poll()
    assert rig.balance() == WEI
    assert rig.payment(key).credit_key == credited.credit_key
    assert rig.kinds(key) == ["chain.payment_seen", "chain.payment_credited"]
    assert rig.node.custody.store.address(address).used  # type: ignore[union-attr]
    assert rig.node.verify_ledger().ok
    assert rig.node.chains.reconciler is not None
    assert rig.node.chains.reconciler.reconcile(CHAIN).matched  # the ledger agrees with anvil


# -- ERC-20 -------------------------------------------------------------------------------------


def test_token_transfer_to_an_issued_address_is_credited_in_usdt_units_and_others_ignored(
    open_rig: OpenRig, usdt: AnvilDriver, chain_node: AnvilNode, stray_token: str
) -> None:
    rig = open_rig()
    address, other = rig.address(), rig.address()
    paid = usdt.pay(address, TOKEN_UNITS)
    stray = AnvilDriver(chain_node, token=stray_token)
    try:
        unconfigured = stray.pay(other, 5_000_000)  # a token the node does not follow
    finally:
        stray.close()
    elsewhere = usdt.pay(usdt.new_address(), 7_000_000)  # to an address the node never issued

    rig.poll()

    credited = rig.payment(f"{paid}:log:0")
    assert (credited.status, credited.asset, credited.units, credited.address) == (
        PaymentStatus.CREDITED, TOKEN_ASSET, TOKEN_UNITS, address)
    assert rig.balance(TOKEN_ASSET) == TOKEN_UNITS
    assert rig.balance("ETH") == 0
    assert rig.node.chains.store.payments(CHAIN, txid=unconfigured) == []
    assert rig.node.chains.store.payments(CHAIN, txid=elsewhere) == []
    assert [p.key for p in rig.node.chains.store.payments(CHAIN)] == [credited.key]
    assert len(rig.events("chain.payment_credited")) == 1
    assert rig.node.verify_ledger().ok
    assert rig.node.chains.reconciler is not None
    assert rig.node.chains.reconciler.reconcile(CHAIN).matched


# -- R9: a reorganisation by evm_snapshot / evm_revert ---------------------------------------------


def test_reorg_dropping_credited_payments_reverses_them_and_the_same_txs_mined_again_recredit(
    open_rig: OpenRig, eth: AnvilDriver, usdt: AnvilDriver
) -> None:
    rig = open_rig()
    address = rig.address()
    eth_txid = eth.pay(address, WEI)
    usdt_txid = usdt.pay(address, TOKEN_UNITS)
    raws = [eth.rpc("eth_getRawTransactionByHash", t) for t in (eth_txid, usdt_txid)]
    eth.mine(1)
    rig.poll()
    keys = (f"{eth_txid}:native", f"{usdt_txid}:log:0")
    first = [rig.payment(key) for key in keys]
    assert {p.status for p in first} == {PaymentStatus.CREDITED}
    assert (rig.balance("ETH"), rig.balance(TOKEN_ASSET)) == (WEI, TOKEN_UNITS)

    eth.reorg(3)  # revert to below both payments; a longer branch without them
    health = rig.poll()

    assert health.our_height == health.node_height == eth.height()
    [reorg] = rig.events("chain.reorg")
    assert (reorg.payload["depth"], reorg.payload["reverted"]) == (3, 2)
    assert {rig.payment(key).status for key in keys} == {PaymentStatus.PENDING}
    assert (rig.balance("ETH"), rig.balance(TOKEN_ASSET)) == (0, 0)
    assert [rig.kinds(key)[-1] for key in keys] == ["chain.payment_reverted"] * 2
    assert rig.node.verify_ledger().ok

    assert [send_again(eth, raw) for raw in raws] == [eth_txid, usdt_txid]
    rig.poll()

    again = [rig.payment(key) for key in keys]
    assert {p.status for p in again} == {PaymentStatus.CREDITED}
    for before, after in zip(first, again, strict=True):
        assert after.credit_key != before.credit_key  # credited again under a new key
        assert after.block is not None
        assert after.block.height == mined_at(eth, after.txid)
    assert (rig.balance("ETH"), rig.balance(TOKEN_ASSET)) == (WEI, TOKEN_UNITS)
    assert rig.kinds(keys[0]) == ["chain.payment_seen", "chain.payment_credited",
                                  "chain.payment_reverted", "chain.payment_mined",
                                  "chain.payment_credited"]
    assert rig.node.verify_ledger().ok


# -- R9: finality tags, a provider whose tags lag and one whose tags follow the head -------------


def tag_height(driver: AnvilDriver, tag: str) -> int:
    return int(driver.rpc("eth_getBlockByNumber", tag, False)["number"], 16)


def answer_tag_with_head(proxy: EvmProxy, tag: str) -> None:
    """Make the proxy a provider whose ``tag`` block is always the head."""
    def rewrite(seen: Seen, result: Any) -> Any:
        if seen.method == "eth_getBlockByNumber" and seen.params[:1] == [tag]:
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber",
                    "params": ["latest", False]}
            return proxy.client.post(proxy.upstream, json=body).json()["result"]
        return result

    proxy.rewrite = rewrite


@pytest.mark.parametrize("tag", ["finalized", "safe"])
def test_tag_policy_credits_at_once_behind_a_following_provider_and_later_behind_a_lagging_one(
    open_rig: OpenRig, eth: AnvilDriver, chain_node: AnvilNode, tag: str
) -> None:
    account = next(_ACCOUNTS)  # both nodes watch the same key, so one payment reaches both
    lagging = open_rig(confirmations=tag, account=account)
    with evm_proxy(chain_node.url) as proxy:
        answer_tag_with_head(proxy, tag)
        following = open_rig(confirmations=tag, account=account, rpc_urls=[proxy.url])
        address = lagging.address()
        assert following.address() == address
        txid = eth.pay(address, WEI)
        key = f"{txid}:native"
        height = mined_at(eth, txid)

        following.poll()
        lagging.poll()
        assert following.payment(key).status is PaymentStatus.CREDITED
        assert following.kinds(key) == ["chain.payment_seen", "chain.payment_credited"]
        assert lagging.payment(key).status is PaymentStatus.CONFIRMING

        eth.rpc("anvil_mine", hex(TAG_LAG[tag] - 1))
        lagging.poll()
        assert tag_height(eth, tag) == height - 1  # one block short of the payment
        assert lagging.payment(key).status is PaymentStatus.CONFIRMING
        assert lagging.balance() == 0

        eth.rpc("anvil_mine", "0x1")
        lagging.poll()
        following.poll()

    assert tag_height(eth, tag) == height
    assert lagging.payment(key).status is PaymentStatus.CREDITED
    for rig in (lagging, following):
        assert rig.balance() == WEI
        assert len(rig.events("chain.payment_credited")) == 1
        assert rig.node.verify_ledger().ok


# -- endpoints: failover, all down, back ----------------------------------------------------------


def chain_status(rig: Rig) -> list[ChainStatus]:
    """What ``server/info`` and ``dpg chain status`` show (no probing of the nodes)."""
    reader = rig.node.chains.status
    assert reader is not None
    return reader.status()


def dead_url() -> str:
    """An endpoint nothing listens on, with a provider-style API key in its path."""
    return f"http://127.0.0.1:{free_port()}/v3/secret-key"


def test_dead_first_endpoint_is_passed_over_and_the_chain_followed_through_the_next(
    open_rig: OpenRig, eth: AnvilDriver, chain_node: AnvilNode
) -> None:
    rig = open_rig(rpc_urls=[dead_url(), chain_node.url])
    txid = eth.pay(rig.address(), WEI)

    health = rig.poll()

    assert health.state == "synced"
    assert rig.payment(f"{txid}:native").status is PaymentStatus.CREDITED
    assert rig.balance() == WEI
    [status] = chain_status(rig)
    dead, live = status.endpoints
    assert (dead.state, live.state, live.head) == ("down", "ok", eth.height())
    assert "cannot be reached" in dead.problem
    assert all("secret-key" not in e.name + e.problem for e in status.endpoints)


def test_all_endpoints_dead_reports_failing_backs_off_and_resumes_when_one_is_back(
    open_rig: OpenRig, eth: AnvilDriver, chain_node: AnvilNode
) -> None:
    with evm_proxy(chain_node.url) as proxy:
        rig = open_rig(rpc_urls=[dead_url(), proxy.url])
        monitor = rig.node.chains.monitor
        proxy.refuse = lambda seen: Reply(502, b"<html>502 Bad Gateway</html>")  # node gone
        txid = eth.pay(rig.address(), WEI)

        failing = monitor.poll(CHAIN, force=True)

        assert failing.state == "failing"
        assert "no usable RPC endpoint" in failing.error
        assert failing.next_poll_at is not None
        assert failing.last_poll_at is not None
        assert failing.next_poll_at > failing.last_poll_at  # backing off
        [status] = chain_status(rig)
        assert [e.state for e in status.endpoints] == ["down", "down"]
        assert rig.node.chains.store.payments(CHAIN) == []

        asked = len(proxy.server.seen)
        assert monitor.poll(CHAIN) == failing  # within the backoff: nothing is asked
        assert len(proxy.server.seen) == asked

        proxy.refuse = None  # the node behind the proxy is back
        rig.clock.advance(failing.next_poll_at - rig.clock.now())
        resumed = monitor.poll(CHAIN)

    assert (resumed.state, resumed.error, resumed.failures) == ("synced", "", 0)
    assert resumed.our_height == eth.height()
    assert rig.payment(f"{txid}:native").status is PaymentStatus.CREDITED
    assert rig.balance() == WEI
    assert rig.node.verify_ledger().ok
