"""The chain watcher on SQLite over the simulated chain: one named scenario per rule.

The randomized harness (``test_chain_simulation``) explores schedules; these pin down each
behaviour the issue and RELIABILITY R9-R11 name, so a regression says which rule broke.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dpgnode.adapters.chains.simulated import Output, SimulatedChain
from dpgnode.adapters.chains.simulated_client import SimulatedChainClient
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage.chains import SqlChainStore
from dpgnode.domain.chains.payments import ConfirmationPolicy, PaymentStatus
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.ledger import AccountRef
from dpgnode.node import Node, build_node
from dpgnode.services.chains.watcher import ChainWatcher, WatchTarget
from dpgnode.settings import load_settings

# The published BIP84 test vector's account key (mainnet): not a secret.
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDK"
    "f31mGDtKsAYz2oz2AGutZYs"
)
STORE = AccountRef.parse("store:st_1:BTC:available")


@dataclass
class Rig:
    node: Node
    chain: SimulatedChain
    store: SqlChainStore
    account_id: str
    confirmations: int = 1
    reorg_limit: int = 6

    def watcher(self) -> ChainWatcher:
        """A new watcher instance (a restart) over the same database and chain."""
        target = WatchTarget("bitcoin", "bitcoin", "mainnet",
                             ConfirmationPolicy(self.confirmations, self.reorg_limit))
        return ChainWatcher(target, SimulatedChainClient(self.chain), self.store,
                            self.node.custody.store, self.node.writer, self.node.clock)

    def address(self, owner: str = "store:st_1") -> str:
        return self.node.custody.addresses.issue(self.account_id, owner=owner).address.address

    def balance(self, ref: AccountRef = STORE) -> int:
        account = self.node.queries.account(ref)
        return 0 if account is None else account.balance

    def status(self, key: str) -> PaymentStatus:
        payment = self.store.payment("bitcoin", key)
        assert payment is not None, key
        return payment.status

    def event_types(self) -> list[str]:
        return [e.type for e in self.node.outbox.events(type_prefix="chain.", limit=10_000)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    settings = load_settings(tmp_path, overrides={"custody": {"network": "mainnet"}})
    node = build_node(settings, clock=FixedClock(), upgrade=True)
    view = node.custody.keychains.add_watch_only(BIP84_ZPUB, network=Network.MAINNET)
    chain = SimulatedChain(seed=7)
    chain.mine(3)
    try:
        yield Rig(node, chain, SqlChainStore(node.engine), view.accounts[0].id)
    finally:
        node.close()


def test_payment_is_seen_unconfirmed_then_credited_once_at_the_policy_depth(rig: Rig) -> None:
    rig.confirmations = 2
    watcher = rig.watcher()
    watcher.poll()
    address = rig.address()
    tx = rig.chain.pay(address, 50_000)
    watcher.poll()
    key = f"{tx.txid}:0"
    assert rig.status(key) is PaymentStatus.PENDING
    rig.chain.mine(1)
    watcher.poll()
    assert rig.status(key) is PaymentStatus.CONFIRMING
    assert rig.balance() == 0
    rig.chain.mine(1)
    watcher.poll()
    watcher.poll()
    assert rig.status(key) is PaymentStatus.CREDITED
    assert rig.balance() == 50_000
    assert rig.event_types() == ["chain.payment_seen", "chain.payment_mined",
                                 "chain.payment_credited"]
    assert rig.node.custody.store.address(address).used  # type: ignore[union-attr]


def test_reorg_that_drops_a_credited_payment_reverses_its_credit(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    tx = rig.chain.pay(rig.address(), 70_000)
    rig.chain.mine(3)
    watcher.poll()
    assert rig.balance() == 70_000
    rig.chain.reorg(3, drop=[tx.txid])
    report = watcher.poll()
    assert report.reorg_depth == 3
    assert rig.status(f"{tx.txid}:0") is PaymentStatus.PENDING
    assert rig.balance() == 0
    assert "chain.payment_reverted" in rig.event_types()
    assert rig.node.verify_ledger().ok


def test_conflict_mined_in_the_new_branch_makes_the_payment_unaccounted(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    tx = rig.chain.pay(rig.address(), 70_000)
    rig.chain.mine(3)
    watcher.poll()
    double_spend = rig.chain.conflict(tx.txid, [Output(rig.chain.new_address(), 69_000)])
    rig.chain.reorg(3, drop=[tx.txid], include=[double_spend])
    watcher.poll()
    payment = rig.store.payment("bitcoin", f"{tx.txid}:0")
    assert payment is not None
    assert payment.status is PaymentStatus.UNACCOUNTED
    assert payment.conflict_txid == double_spend.txid
    assert rig.balance() == 0


def test_replacement_paying_elsewhere_is_unaccounted_and_its_descendant_too(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    parent = rig.chain.pay(rig.address(), 40_000)
    child = rig.chain.pay(rig.address(), 10_000, spend=[parent.outpoint(1)])
    watcher.poll()
    replacement = rig.chain.replace(parent.txid, [Output(rig.chain.new_address(), 79_000)])
    watcher.poll()
    parent_payment = rig.store.payment("bitcoin", f"{parent.txid}:0")
    assert parent_payment is not None
    assert parent_payment.conflict_txid == replacement.txid
    assert rig.status(f"{parent.txid}:0") is PaymentStatus.UNACCOUNTED
    assert rig.status(f"{child.txid}:0") is PaymentStatus.UNACCOUNTED
    rig.chain.mine(2)
    watcher.poll()
    assert rig.balance() == 0


def test_replacement_paying_the_same_address_more_counts_once(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    address = rig.address()
    original = rig.chain.pay(address, 30_000)
    watcher.poll()
    bigger = rig.chain.replace(original.txid, [Output(address, 35_000)])
    rig.chain.mine(1)
    watcher.poll()
    assert rig.status(f"{original.txid}:0") is PaymentStatus.UNACCOUNTED
    assert rig.status(f"{bigger.txid}:0") is PaymentStatus.CREDITED
    assert rig.balance() == 35_000


def test_reorg_deeper_than_the_limit_pauses_the_chain_without_rewriting(rig: Rig) -> None:
    rig.reorg_limit = 2
    watcher = rig.watcher()
    watcher.poll()
    tx = rig.chain.pay(rig.address(), 25_000)
    rig.chain.mine(3)
    watcher.poll()
    rig.chain.reorg(3, drop=[tx.txid])
    report = watcher.poll()
    assert "depth 3 exceeds the limit of 2" in report.paused
    assert rig.balance() == 25_000  # settled history is not silently rewritten
    assert [i.kind for i in rig.store.incidents("bitcoin")] == ["deep_reorg"]
    assert rig.watcher().poll().paused  # a restart does not resume it either
    watcher.resume(accept_reorg=True)
    watcher.poll()
    assert rig.balance() == 0
    assert rig.store.incidents("bitcoin") == []
    assert rig.node.verify_ledger().ok


def test_reorg_back_to_the_original_block_credits_again_under_a_new_key(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    tx = rig.chain.pay(rig.address(), 11_000)
    rig.chain.mine(1)
    watcher.poll()
    first = rig.store.payment("bitcoin", f"{tx.txid}:0")
    assert first is not None
    assert first.credit_key is not None
    rig.chain.reorg(1, drop=[tx.txid])
    watcher.poll()
    assert rig.balance() == 0
    rig.chain.reorg(2)  # mined again, in yet another block
    watcher.poll()
    again = rig.store.payment("bitcoin", f"{tx.txid}:0")
    assert again is not None
    assert again.status is PaymentStatus.CREDITED
    assert again.credit_key != first.credit_key
    assert rig.balance() == 11_000
    assert rig.node.verify_ledger().ok


def test_a_restarted_watcher_resumes_without_crediting_twice(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    rig.chain.pay(rig.address(), 5_000)
    rig.chain.mine(1)
    watcher.poll()
    rig.chain.pay(rig.address(), 6_000)
    rig.chain.mine(1)
    restarted = rig.watcher()
    restarted.poll()
    restarted.poll()
    assert rig.balance() == 11_000


def test_payment_to_the_last_of_many_issued_addresses_is_found(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    for _ in range(300):
        last = rig.address()
    tx = rig.chain.pay(last, 9_000)
    rig.chain.mine(1)
    watcher.poll()
    assert rig.status(f"{tx.txid}:0") is PaymentStatus.CREDITED


def test_address_without_owner_credits_the_operators_unassigned_deposits(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    rig.chain.pay(rig.address(owner=""), 4_000)
    rig.chain.mine(1)
    watcher.poll()
    assert rig.balance(AccountRef.parse("operator:unassigned:BTC:available")) == 4_000
    assert rig.balance(AccountRef.parse("operator:chain:BTC:world")) == -4_000


def test_rescan_finds_payments_to_addresses_issued_after_their_blocks(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    start = rig.chain.tip.height + 1
    # Paid before the node issued the address (an external wallet that ran ahead).
    future = rig.node.custody.addresses.account_key(
        rig.node.custody.store.account(rig.account_id)).address(0, 0)  # type: ignore[arg-type]
    rig.chain.pay(future, 8_000)
    rig.chain.mine(2)
    watcher.poll()
    assert rig.balance() == 0
    assert rig.address() == future
    watcher.rescan(start)
    watcher.poll()
    assert rig.balance() == 8_000
    watcher.rescan(start)
    watcher.poll()
    assert rig.balance() == 8_000
