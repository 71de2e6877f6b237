"""Reconciliation on SQLite over the simulated chain: it finds what disagrees, never fixes it.

Each test drives a real node (``build_node`` with the simulated chain injected) through the
watcher, then reconciles: after payments and reorganisations the two views match; a
mismatch injected the way it happens for real (a deposit spent by someone else, a payment
the watcher never saw, a ledger entry reversed behind the watcher's back) is reported with
its address and amounts, recorded once, announced once, and leaves the ledger untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpgnode.adapters.chains.simulated import Output, SimulatedChain
from dpgnode.domain.chains.cursor import IncidentKind
from dpgnode.domain.chains.payments import PaymentStatus
from dpgnode.domain.chains.reconcile import DifferenceKind, ReconcileState
from dpgnode.domain.custody.addresses import parse_address
from dpgnode.domain.custody.btc_spend import Utxo
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import CHANGE_BRANCH
from dpgnode.domain.ledger import AccountRef
from dpgnode.services.chains.reconcile import MISMATCH_EVENT, RESOLVED_EVENT, Reconciler
from dpgnode.services.custody.payout_records import PayoutRequest
from tests.support.custody import BTC_DEST, StaticFunding
from tests.support.memory_signer import MemorySigner
from tests.support.sim_node import CHAIN, SimNode, open_sim_node

STORE = AccountRef.parse("store:st_1:BTC:available")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimNode]:
    chain = SimulatedChain(seed=11)
    chain.mine(3)
    built = open_sim_node(tmp_path, chain)
    try:
        built.poll()
        yield built
    finally:
        built.node.close()


def _reconciler(sim: SimNode) -> Reconciler:
    reconciler = sim.node.chains.reconciler
    assert reconciler is not None
    return reconciler


def _events(sim: SimNode, kind: str) -> list[dict[str, object]]:
    return [dict(e.payload) for e in sim.node.outbox.events(type_prefix=kind, limit=1000)
            if e.type == kind]


def _ledger_fingerprint(sim: SimNode) -> tuple[int, int]:
    """Balance of the store and the journal's head: any ledger write changes one of them."""
    account = sim.node.queries.account(STORE)
    report = sim.node.verify_ledger()
    assert report.ok
    return (0 if account is None else account.balance, report.entries)


def test_views_match_when_payments_are_credited(sim: SimNode) -> None:
    paid = {sim.address(): 50_000, sim.address(): 20_000, sim.address(): 1}
    for address, units in paid.items():
        sim.chain.pay(address, units)
    sim.chain.mine(1)
    sim.poll()
    run = _reconciler(sim).reconcile(CHAIN)
    assert run.state is ReconcileState.MATCHED, run
    assert run.settled_height == sim.chain.tip.height
    [totals] = run.totals
    assert (totals.ledger, totals.chain, totals.addresses) == (50_001 + 20_000,) * 2 + (3,)
    assert _events(sim, MISMATCH_EVENT) == []


def test_confirming_payments_are_on_neither_side_when_the_policy_needs_depth(
    tmp_path: Path,
) -> None:
    chain = SimulatedChain(seed=12)
    chain.mine(3)
    sim = open_sim_node(tmp_path, chain, confirmations=3)
    try:
        sim.poll()
        early, late = sim.address(), sim.address()
        chain.pay(early, 10_000)
        chain.mine(3)
        chain.pay(late, 7_000)
        chain.mine(1)  # `late` has 1 confirmation of 3: not credited, not counted
        sim.poll()
        run = _reconciler(sim).reconcile(CHAIN)
        assert run.state is ReconcileState.MATCHED, run
        assert run.settled_height == chain.tip.height - 2
        assert [(t.ledger, t.chain) for t in run.totals] == [(10_000, 10_000)]
    finally:
        sim.node.close()


def test_views_match_after_a_reorg_reverses_a_credit(sim: SimNode) -> None:
    kept, dropped = sim.address(), sim.address()
    sim.chain.pay(kept, 30_000)
    gone = sim.chain.pay(dropped, 40_000)
    sim.chain.mine(2)
    sim.poll()
    sim.chain.reorg(2, drop=[gone.txid])
    sim.poll()
    run = _reconciler(sim).reconcile(CHAIN)
    assert run.state is ReconcileState.MATCHED, run
    assert [(t.ledger, t.chain) for t in run.totals] == [(30_000, 30_000)]


def test_deposit_spent_by_someone_else_is_a_mismatch_that_leaves_the_ledger_alone(
    sim: SimNode,
) -> None:
    address = sim.address()
    paid = sim.chain.pay(address, 50_000)
    sim.chain.mine(1)
    sim.poll()
    before = _ledger_fingerprint(sim)
    theft = sim.chain.make_tx([paid.outpoint(0)], [Output(sim.chain.new_address(), 49_000)])
    sim.chain.broadcast(theft)
    sim.chain.mine(1)
    sim.poll()  # the monitor's listener marks the chain due
    [run] = _reconciler(sim).run_due()

    assert run.state is ReconcileState.MISMATCH
    [difference] = run.differences
    assert (difference.address, difference.ledger, difference.chain) == (address, 50_000, 0)
    assert _ledger_fingerprint(sim) == before
    [incident] = sim.node.chains.store.incidents(CHAIN)
    assert incident.kind is IncidentKind.RECONCILIATION_MISMATCH
    assert incident.id == run.incident_id
    assert address in incident.message
    listed = json.loads(incident.details["differences"])
    assert listed == [{"address": address, "asset": "BTC", "chain": "0", "detail": "",
                       "difference": "-50000", "kind": "balance", "ledger": "50000"}]
    [event] = _events(sim, MISMATCH_EVENT)
    assert event["incidentId"] == incident.id
    assert event["differences"] == listed
    cursor = sim.node.chains.store.cursor(CHAIN)
    assert cursor is not None
    assert not cursor.is_paused

    # The watcher goes on: a new payment is credited as usual.
    later = sim.address()
    sim.chain.pay(later, 5_000)
    sim.chain.mine(1)
    sim.poll()
    assert sim.node.queries.account(STORE).balance == before[0] + 5_000  # type: ignore[union-attr]


def test_same_mismatch_is_announced_once_and_closes_when_the_views_agree_again(
    sim: SimNode,
) -> None:
    address = sim.address()
    paid = sim.chain.pay(address, 50_000)
    sim.chain.mine(1)
    sim.poll()
    theft = sim.chain.make_tx([paid.outpoint(0)], [Output(sim.chain.new_address(), 49_000)])
    sim.chain.broadcast(theft)
    sim.chain.mine(1)
    sim.poll()
    reconciler = _reconciler(sim)
    first = reconciler.reconcile(CHAIN)
    again = reconciler.reconcile(CHAIN)
    assert first.incident_id is not None
    assert again.incident_id == first.incident_id
    assert len(_events(sim, MISMATCH_EVENT)) == 1
    assert len(sim.node.chains.store.incidents(CHAIN)) == 1

    sim.chain.reorg(1, drop=[theft.txid])  # the theft leaves the best chain (still pending)
    sim.poll()
    settled = reconciler.reconcile(CHAIN)
    assert settled.state is ReconcileState.MATCHED, settled
    assert sim.node.chains.store.incidents(CHAIN) == []
    [resolved] = _events(sim, RESOLVED_EVENT)
    assert resolved["incidentId"] == first.incident_id
    [closed] = sim.node.chains.store.incidents(CHAIN, open_only=False)
    assert closed.resolved_at is not None


def test_payment_before_the_watcher_started_is_a_mismatch_until_a_rescan_finds_it(
    tmp_path: Path,
) -> None:
    chain = SimulatedChain(seed=13)
    chain.mine(3)
    sim = open_sim_node(tmp_path, chain)
    try:
        address = sim.address()  # issued (an imported xpub, say) and paid before watching
        chain.pay(address, 2_500)
        chain.mine(1)
        missed_at = chain.tip.height
        sim.poll()  # the watcher starts at the tip: the earlier block is not read
        chain.pay(address, 10_000)
        chain.mine(1)
        sim.poll()
        run = _reconciler(sim).reconcile(CHAIN)
        assert run.state is ReconcileState.MISMATCH
        [difference] = run.differences
        assert (difference.address, difference.ledger, difference.chain) == (
            address, 10_000, 12_500)
        assert difference.delta == 2_500

        sim.node.chains.monitor.watcher(CHAIN).rescan(missed_at)  # the operator's fix
        sim.poll()
        assert _reconciler(sim).reconcile(CHAIN).state is ReconcileState.MATCHED
        assert sim.node.chains.store.incidents(CHAIN) == []
    finally:
        sim.node.close()


def test_credit_reversed_behind_the_watcher_is_a_ledger_record_mismatch(sim: SimNode) -> None:
    address = sim.address()
    sim.chain.pay(address, 8_000)
    sim.chain.mine(1)
    sim.poll()
    [payment] = sim.node.chains.store.payments(CHAIN, address=address)
    assert payment.status is PaymentStatus.CREDITED
    assert payment.credit_key is not None
    entry = sim.node.queries.entry_by_key(payment.credit_key)
    assert entry is not None
    sim.node.ledger.reverse(entry.id, "by-hand", "reversed by hand")
    run = _reconciler(sim).reconcile(CHAIN)
    kinds = {(d.kind, d.address) for d in run.differences}
    assert (DifferenceKind.LEDGER_RECORD, address) in kinds
    assert (DifferenceKind.BALANCE, address) in kinds  # the ledger now says 0, chain 8000


def test_reconcile_is_skipped_when_the_chain_is_paused(sim: SimNode) -> None:
    sim.chain.pay(sim.address(), 1_000)
    sim.chain.mine(8)
    sim.poll()
    sim.chain.reorg(7)  # deeper than the reorg limit of 6: the watcher pauses
    sim.poll()
    run = _reconciler(sim).reconcile(CHAIN)
    assert run.state is ReconcileState.SKIPPED
    assert "paused" in run.reason


def test_address_a_signed_payout_spends_from_is_left_out_until_its_height_is_known(
    tmp_path: Path,
) -> None:
    chain = SimulatedChain(seed=14)
    chain.mine(3)
    sim = open_sim_node(tmp_path, chain, network="regtest", custody={
        "network": "regtest", "payout_policies": {"BTC": {"require_allowlist": False}}})
    try:
        sim.poll()
        signer = MemorySigner()
        account = sim.node.custody.keychains.create(
            signer, words=12, network=Network.REGTEST).view.accounts[0]
        issued = sim.node.custody.addresses.issue(account.id, owner="store:st_1").address
        kept = sim.node.custody.addresses.issue(account.id, owner="store:st_1").address.address
        paid = chain.pay(issued.address, 60_000)
        chain.pay(kept, 1_000)
        chain.mine(1)
        sim.poll()
        script = parse_address(issued.address, Network.REGTEST).script_pubkey
        funding = StaticFunding(network=Network.REGTEST, utxos={account.id: [
            Utxo(paid.txid, 0, 60_000, script, f"{account.id}/0/{issued.index}")]})
        alice = sim.node.custody.operators.add("alice").operator
        payout = sim.node.custody.payouts.request(alice, PayoutRequest(
            "BTC", 20_000, BTC_DEST, STORE, account.id, "po-1"),
            signer=signer, funding=funding)
        assert payout.raw_tx is not None

        run = _reconciler(sim).reconcile(CHAIN)
        assert run.state is ReconcileState.MATCHED, run
        # The deposit it spends and the change address it pays are both left out until
        # the payout's height is known (own movements read the signed transaction).
        change = next(a.address for a in sim.node.custody.store.addresses(
            account.id, CHANGE_BRANCH, used=None, offset=0, limit=10))
        assert sorted(run.unsettled) == sorted([("BTC", issued.address), ("BTC", change)])
        [totals] = run.totals
        assert (totals.ledger, totals.chain) == (1_000, 1_000)
        assert totals.unsettled == 2
    finally:
        sim.node.close()
