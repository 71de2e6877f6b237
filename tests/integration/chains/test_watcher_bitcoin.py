"""The chain watcher against a real Bitcoin Knots regtest node (RELIABILITY R9, R10, R11).

The rules of ``test_watcher_scenarios`` (the simulator), here through everything real: the
node is wired by ``build_node`` from ``[chains.bitcoin]`` settings (the real
``BitcoinChainClient`` over JSON-RPC, the watcher, the ledger, SQLite; the basic flow on
PostgreSQL too), addresses come from the node's address pool over a watch-only regtest
account, and payments from Knots' own wallet, the outside world (``tests/support/
regtest_watch``, ``bitcoind_driver``). Polls are driven by hand through
``node.chains.monitor.poll``: "within 5 s of the watcher seeing the new tip" (R9) and
"≤ 2 s after the replacement enters the mempool" (R10) are asserted as "the first poll
after the node has the change applies it", never against wall time.

The tests share one regtest node (per module and xdist worker); each builds its own node
database that starts at the chain's tip and watches a key account of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dpgnode.domain.chains.payments import PaymentStatus
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import CHANGE_BRANCH, IssuedAddress
from dpgnode.domain.doctor import Status
from dpgnode.domain.ledger import AccountRef
from dpgnode.node import build_payout_chains, chain_sync_findings
from dpgnode.services.custody.payouts import PayoutRequest
from tests.support.bitcoind_driver import (
    FUNDER,
    BitcoindDriver,
    open_driver,
    random_address,
    sats_to_btc,
)
from tests.support.memory_signer import MemorySigner
from tests.support.regtest_watch import (
    CHAIN,
    OWNER,
    STORE,
    Rig,
    double_spend,
    key_of,
    regtest_rig,
    spend_output,
    txid_of,
)

pytestmark = pytest.mark.integration

UNITS = 70_000
UNASSIGNED = AccountRef.parse("operator:unassigned:BTC:available")
_ACCOUNTS = itertools.count()
"""Account numbers of the test mnemonic: each test watches an account of its own."""

OpenRig = Callable[..., Rig]


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BitcoindDriver]:
    with open_driver(tmp_path_factory.mktemp("watcher-bitcoin"), zmq=False) as opened:
        yield opened


@pytest.fixture
def open_rig(tmp_path: Path, driver: BitcoindDriver) -> Iterator[OpenRig]:
    """Opens nodes following the regtest chain (options of ``regtest_rig``)."""
    rigs: list[Rig] = []

    def make(**options: Any) -> Rig:
        rig = regtest_rig(driver, tmp_path / f"node-{len(rigs)}", next(_ACCOUNTS), **options)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.node.close()


# -- seen, confirmed, credited once ------------------------------------------------------------


def test_payment_is_pending_in_the_mempool_then_credited_once_at_two_confirmations(
    open_rig: OpenRig, driver: BitcoindDriver, database_url: str
) -> None:
    rig = open_rig(confirmations=2, database_url=database_url)
    address = rig.address()
    txid = driver.pay(address, UNITS)
    key = key_of(driver, txid, address)

    rig.poll()
    seen = rig.payment(key)
    assert (seen.status, seen.units, seen.owner, seen.asset) == (
        PaymentStatus.PENDING, UNITS, OWNER, "BTC")
    assert rig.balance() == 0

    rig.restart()  # each step below runs in another watcher over the same database
    driver.mine(1)
    rig.poll()
    assert rig.payment(key).status is PaymentStatus.CONFIRMING
    assert rig.balance() == 0

    rig.restart()
    driver.mine(1)
    rig.poll()
    rig.poll()
    credited = rig.payment(key)
    assert credited.status is PaymentStatus.CREDITED
    assert rig.balance() == UNITS

    rig.restart()
    driver.mine(1)
    rig.poll()
    rig.poll()
    assert rig.balance() == UNITS
    assert rig.payment(key).credit_key == credited.credit_key
    assert rig.kinds(key) == ["chain.payment_seen", "chain.payment_mined",
                              "chain.payment_credited"]
    issued = rig.node.custody.store.address(address)
    assert issued is not None
    assert issued.used
    assert rig.node.verify_ledger().ok


def test_address_issued_without_owner_credits_the_operators_unassigned_deposits(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    rig = open_rig()
    driver.pay(rig.address(owner=""), UNITS)
    driver.mine(1)

    rig.poll()

    assert rig.balance(UNASSIGNED) == UNITS
    assert rig.balance(AccountRef.parse("operator:chain:BTC:world")) == -UNITS
    assert rig.balance() == 0


# -- R9: reorganisations ---------------------------------------------------------------------------


def credited_three_deep(rig: Rig, driver: BitcoindDriver) -> tuple[str, str]:
    """A payment credited at one confirmation and buried under two more blocks."""
    address = rig.address()
    txid = driver.pay(address, UNITS)
    driver.mine(3)
    rig.poll()
    key = key_of(driver, txid, address)
    assert rig.payment(key).status is PaymentStatus.CREDITED
    assert rig.balance() == UNITS
    return txid, key


def reorg_event(rig: Rig) -> dict[str, Any]:
    [reorg] = rig.events("chain.reorg")
    return dict(reorg.payload)


def test_depth_3_reorg_reverses_the_credit_at_the_first_poll_and_the_tx_is_pending_again(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    rig = open_rig()
    txid, key = credited_three_deep(rig, driver)

    driver.reorg(3, drop=[txid])  # invalidateblock 3 deep; a longer branch without the payment
    health = rig.poll()

    assert health.our_height == health.node_height == driver.node.rpc("getblockcount")
    assert reorg_event(rig)["depth"] == 3
    assert rig.payment(key).status is PaymentStatus.PENDING
    assert txid in driver.node.rpc("getrawmempool")
    assert rig.balance() == 0
    assert rig.kinds(key)[-1] == "chain.payment_reverted"
    assert rig.node.verify_ledger().ok

    driver.mine(1)  # mined again in the new branch: credited again, once
    rig.poll()
    assert rig.payment(key).status is PaymentStatus.CREDITED
    assert rig.balance() == UNITS
    assert rig.node.verify_ledger().ok


def test_conflict_mined_in_the_new_branch_makes_the_reverted_payment_unaccounted(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    rig = open_rig()
    txid, key = credited_three_deep(rig, driver)
    node = driver.node
    fork = node.rpc("getblockcount") - 3

    node.rpc("invalidateblock", node.rpc("getblockhash", fork + 1))
    conflict = double_spend(driver, txid, random_address(), UNITS)
    node.rpc("generateblock", random_address(), [conflict])
    node.mine(3, random_address())  # 4 blocks replace 3: the new branch wins
    rig.poll()

    lost = rig.payment(key)
    assert lost.status is PaymentStatus.UNACCOUNTED
    assert lost.conflict_txid == txid_of(driver, conflict)
    assert lost.conflict_height == fork + 1
    assert rig.balance() == 0
    assert reorg_event(rig)["depth"] == 3
    assert rig.kinds(key)[-2:] == ["chain.payment_reverted", "chain.payment_unaccounted"]
    assert txid not in node.rpc("getrawmempool")
    driver.mine(1)
    rig.poll()
    assert rig.balance() == 0
    assert rig.node.verify_ledger().ok


def test_reorg_deeper_than_the_limit_pauses_the_chain_until_resumed_with_accept_reorg(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    rig = open_rig(reorg_limit=2)
    txid, key = credited_three_deep(rig, driver)

    driver.reorg(3, drop=[txid])
    health = rig.poll()

    assert "depth 3 exceeds the limit of 2" in health.paused
    assert health.state == "paused"
    assert rig.balance() == UNITS  # settled history is not silently rewritten
    assert [i.kind for i in rig.node.chains.store.incidents(CHAIN)] == ["deep_reorg"]
    assert [e.payload["kind"] for e in rig.events("chain.incident")] == ["deep_reorg"]
    rig.restart()
    assert rig.poll().paused  # a restart does not resume it
    assert rig.payment(key).status is PaymentStatus.CREDITED

    rig.node.chains.monitor.watcher(CHAIN).resume(accept_reorg=True)
    health = rig.poll()

    assert not health.paused
    assert health.our_height == driver.node.rpc("getblockcount")
    assert rig.payment(key).status is PaymentStatus.PENDING
    assert rig.balance() == 0
    assert rig.node.chains.store.incidents(CHAIN) == []
    assert rig.node.verify_ledger().ok


def test_reorged_payment_that_vanishes_non_final_from_the_mempool_stops_counting(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    # Wallets set nLockTime to the current height (anti fee sniping). A reorg to below that
    # height makes the transaction non-final: the node drops it instead of taking it back
    # into its mempool. Without a conflict it must stay pending, not become unaccounted.
    rig = open_rig()
    node = driver.node
    driver.mine(1)
    height = node.rpc("getblockcount")
    address = rig.address()
    sent = node.rpc("send", [{address: sats_to_btc(UNITS)}], None, "unset", None,
                    {"locktime": height, "replaceable": True}, wallet=FUNDER)
    txid = sent["txid"]
    key = key_of(driver, txid, address)
    raw = node.rpc("getrawtransaction", txid)
    driver.mine(3)
    rig.poll()
    assert rig.balance() == UNITS

    node.rpc("invalidateblock", node.rpc("getblockhash", height))  # tip: height - 1
    node.mine(5, random_address())
    rig.poll()
    rig.poll()

    assert txid not in node.rpc("getrawmempool")
    assert reorg_event(rig)["depth"] == 4
    assert rig.payment(key).status is PaymentStatus.UNACCOUNTED  # gone: it stops counting
    assert rig.balance() == 0
    assert "chain.payment_unaccounted" in rig.kinds(key)

    node.rpc("sendrawtransaction", raw)  # final again at the new height: the sender re-sends
    driver.mine(1)
    rig.poll()
    again = rig.payment(key)
    assert again.status is PaymentStatus.CREDITED
    assert rig.balance() == UNITS
    assert rig.node.verify_ledger().ok


# -- R10: replacements -----------------------------------------------------------------------------


@pytest.mark.parametrize("signals", [True, False], ids=["bip125", "full-rbf"])
def test_replacement_paying_elsewhere_makes_the_payment_unaccounted_at_the_next_poll(
    open_rig: OpenRig, driver: BitcoindDriver, signals: bool
) -> None:
    rig = open_rig()
    address = rig.address()
    txid = driver.pay(address, UNITS, replaceable=signals)
    key = key_of(driver, txid, address)
    rig.poll()
    assert rig.payment(key).status is PaymentStatus.PENDING

    replacement = driver.replace(txid, random_address())
    rig.poll()

    lost = rig.payment(key)
    assert (lost.status, lost.conflict_txid) == (PaymentStatus.UNACCOUNTED, replacement)
    assert rig.kinds(key) == ["chain.payment_seen", "chain.payment_unaccounted"]
    driver.mine(1)
    rig.poll()
    assert rig.payment(key).conflict_height == driver.node.rpc("getblockcount")
    assert rig.balance() == 0
    assert rig.node.verify_ledger().ok


def test_replacement_paying_the_same_address_more_is_credited_once(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    rig = open_rig()
    address = rig.address()
    txid = driver.pay(address, UNITS)
    key = key_of(driver, txid, address)
    rig.poll()

    bigger = driver.replace(txid, address, units=UNITS + 1_000)
    rig.poll()
    assert rig.payment(key).status is PaymentStatus.UNACCOUNTED
    driver.mine(1)
    rig.poll()
    rig.poll()

    assert rig.payment(key).status is PaymentStatus.UNACCOUNTED
    assert rig.payment(key_of(driver, bigger, address)).status is PaymentStatus.CREDITED
    assert rig.balance() == UNITS + 1_000
    assert len(rig.events("chain.payment_credited")) == 1
    assert rig.node.verify_ledger().ok


def test_descendant_of_a_replaced_transaction_is_unaccounted_too(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    rig = open_rig()
    first, second = rig.address(), rig.address()
    parent = driver.pay(first, UNITS)
    outputs = driver.node.rpc("getrawtransaction", parent, True)["vout"]
    [change] = [o["n"] for o in outputs if o["scriptPubKey"].get("address") != first]
    child = spend_output(driver, parent, change, second, 10_000)
    rig.poll()
    parent_key, child_key = key_of(driver, parent, first), key_of(driver, child, second)
    assert rig.payment(child_key).status is PaymentStatus.PENDING

    replacement = driver.replace(parent, random_address())
    rig.poll()

    assert rig.payment(parent_key).conflict_txid == replacement
    lost_child = rig.payment(child_key)
    assert (lost_child.status, lost_child.conflict_txid) == (PaymentStatus.UNACCOUNTED, parent)
    rig.poll()  # every poll re-evaluates: the child stays lost while its parent is
    assert rig.payment(child_key).status is PaymentStatus.UNACCOUNTED
    driver.mine(1)
    rig.poll()
    rig.poll()
    assert rig.payment(child_key).status is PaymentStatus.UNACCOUNTED
    assert rig.kinds(child_key) == ["chain.payment_seen", "chain.payment_unaccounted"]
    assert rig.balance() == 0


# -- R11: every issued address is watched ----------------------------------------------------------


def issue_many(rig: Rig, count: int) -> IssuedAddress:
    """Issue ``count`` addresses concurrently (the writer commits them in groups); the last."""
    def one(_: int) -> IssuedAddress:
        return rig.node.custody.addresses.issue(rig.account_id, owner=OWNER).address

    with ThreadPoolExecutor(16) as pool:
        issued = list(pool.map(one, range(count)))
    assert sorted(a.index for a in issued) == list(range(count))
    return max(issued, key=lambda a: a.index)


@pytest.mark.parametrize("count", [
    1_000, pytest.param(10_000, marks=pytest.mark.slow, id="10000"),
])
def test_payment_to_the_last_of_many_issued_addresses_is_found_and_credited(
    open_rig: OpenRig, driver: BitcoindDriver, count: int
) -> None:
    rig = open_rig()
    last = issue_many(rig, count)
    txid = driver.pay(last.address, UNITS)
    key = key_of(driver, txid, last.address)

    rig.poll()
    assert rig.payment(key).status is PaymentStatus.PENDING
    driver.mine(1)
    rig.poll()

    assert rig.payment(key).status is PaymentStatus.CREDITED
    assert rig.balance() == UNITS
    gap = rig.node.custody.addresses.gap(rig.account_id)
    assert (gap.last_used_index, gap.trailing_unused) == (count - 1, 0)


# -- the node's own transactions -------------------------------------------------------------------


def test_change_of_the_nodes_own_payout_is_not_a_deposit(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    rig = open_rig(custody={"payout_policies": {"BTC": {"require_allowlist": False}}})
    signer = MemorySigner()
    node = rig.node
    account = node.custody.keychains.create(signer, words=12, network=Network.REGTEST)
    source = account.view.accounts[0].id
    deposit = node.custody.addresses.issue(source, owner=OWNER).address.address
    deposit_key = key_of(driver, driver.pay(deposit, 1_000_000), deposit)
    driver.mine(1)
    rig.poll()
    assert rig.payment(deposit_key).status is PaymentStatus.CREDITED

    chains = build_payout_chains(node, public_keys=signer)
    try:
        alice = node.custody.operators.add("alice").operator
        payout = node.custody.payouts.request(alice, PayoutRequest(
            "BTC", 400_000, random_address(), STORE, source, "payout-1"),
            signer=signer, funding=chains.funding)
        node.custody.payouts.broadcast(payout.id, alice, chains.broadcaster)
    finally:
        chains.close()
    assert payout.txid is not None
    tx = driver.node.rpc("getrawtransaction", payout.txid, True)
    change = [node.custody.store.address(o["scriptPubKey"]["address"]) for o in tx["vout"]]
    assert [a.branch for a in change if a is not None] == [CHANGE_BRANCH]  # issued by the node

    rig.poll()
    driver.mine(1)
    rig.poll()

    assert node.chains.store.payments(CHAIN, txid=payout.txid) == []
    assert [p.key for p in node.chains.store.payments(CHAIN)] == [deposit_key]
    assert rig.balance(UNASSIGNED) == 0  # the change address has no owner: nothing credited
    assert node.verify_ledger().ok


# -- dpg doctor reads the watcher's state ------------------------------------------------------


def test_doctor_reports_a_caught_up_watcher_then_a_paused_chain(
    open_rig: OpenRig, driver: BitcoindDriver
) -> None:
    rig = open_rig(reorg_limit=2)
    [finding] = chain_sync_findings(rig.settings)
    assert (finding.check, finding.status) == ("chain sync bitcoin", Status.OK)

    txid = driver.pay(rig.address(), UNITS)
    driver.mine(3)
    rig.poll()
    driver.reorg(3, drop=[txid])  # deeper than the limit of 2: the watcher pauses
    rig.poll()
    [paused] = chain_sync_findings(rig.settings)
    assert paused.status is Status.FAIL
    assert "dpg chain resume" in paused.fix
