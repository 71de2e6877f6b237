"""The node's own transactions on the simulated chain, through the real watcher and SQLite.

One named scenario per rule of ``services/chains/outgoing.py``: a broadcast payout mined,
confirmed at the final depth (hold captured, fee booked), put back by a reorganisation,
failed and released when a conflicting spend becomes final, re-sent while unmined; the EVM
path where the fee comes from a receipt; a sweep counted as the node's own transaction.
Real Bitcoin Knots and anvil cover the same rules in ``test_outgoing_regtest`` and
``test_sweeps_anvil``; here the chain is the seeded simulator, so every step is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from dpgnode.adapters.chains.simulated import Output, SimTx, SimulatedChain
from dpgnode.adapters.chains.simulated_client import SimulatedChainClient
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage.chains import SqlChainStore
from dpgnode.adapters.storage.outgoing import SqlOutgoingStore
from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.chains.sweeps import Sweep, SweepInput, SweepKind, SweepStatus
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import (
    Payout,
    PayoutStatus,
    mark_broadcast,
    mark_signed,
    transition,
)
from dpgnode.domain.ledger import AccountRef
from dpgnode.errors import UnavailableError
from dpgnode.node import Node, build_node
from dpgnode.ports.chains import BroadcastResult
from dpgnode.ports.outgoing import PaidFee
from dpgnode.ports.uow import Tx
from dpgnode.services.chains.outgoing import OutgoingChain, OutgoingTracker
from dpgnode.services.chains.outgoing_effects import OutgoingEffects
from dpgnode.services.chains.rebroadcast import Rebroadcaster
from dpgnode.services.chains.watcher import ChainWatcher, WatchTarget
from dpgnode.services.custody.payouts import PayoutRequest
from dpgnode.settings import load_settings
from tests.support.custody import BTC_DEST, fund
from tests.support.memory_signer import MemorySigner

pytestmark = pytest.mark.integration

DEBIT = AccountRef.parse("store:st_1:BTC:available")
HELD = AccountRef.parse("store:st_1:BTC:held")
WORLD = AccountRef.parse("operator:chain:BTC:world")
FEES = AccountRef.parse("operator:network_fees:BTC:fees")
UNITS = 250_000
FEE = 1_400
REORG_LIMIT = 3


@dataclass
class FakeFees:
    """Receipts by txid, as an EVM node would report them (the simulator has no fees)."""

    paid: dict[str, PaidFee] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def fee_paid(self, chain: str, txid: str) -> PaidFee | None:
        self.asked.append(txid)
        return self.paid.get(txid)


@dataclass
class SimBroadcaster:
    """Hands transactions to the simulated chain by txid (the bytes are the simulator's)."""

    chain: SimulatedChain
    sent: list[str] = field(default_factory=list)

    def broadcast(self, asset: str, raw_tx: str, txid: str) -> BroadcastResult:
        self.sent.append(txid)
        known = self.chain.in_mempool(txid) or self.chain.height_of(txid) is not None
        if not known:
            self.chain.broadcast(self.chain.tx(txid))
        return BroadcastResult(True, txid, known=known)


@dataclass
class Rig:
    node: Node
    chain: SimulatedChain
    clock: FixedClock
    alice: Operator
    fees: FakeFees = field(default_factory=FakeFees)
    fee_from_receipt: bool = False

    @property
    def target(self) -> OutgoingChain:
        return OutgoingChain("bitcoin", "BTC", ("BTC",), REORG_LIMIT, self.fee_from_receipt)

    def tracker(self) -> OutgoingTracker:
        store = SqlOutgoingStore(self.node.engine)
        effects = OutgoingEffects(self.node.custody.store, store, self.node.custody.audit)
        return OutgoingTracker(self.target, store, effects, SqlChainStore(self.node.engine),
                               self.node.writer, self.clock, self.fees)

    def watcher(self, tracker: OutgoingTracker | None = None) -> ChainWatcher:
        target = WatchTarget("bitcoin", "bitcoin", "regtest",
                             ConfirmationPolicy(1, REORG_LIMIT))
        return ChainWatcher(target, SimulatedChainClient(self.chain),
                            SqlChainStore(self.node.engine), self.node.custody.store,
                            self.node.writer, self.clock, observers=[tracker or self.tracker()])

    def payout_for(self, sim: SimTx, *, broadcast: bool = True, fee: int | None = FEE) -> Payout:
        """A payout whose signed transaction is ``sim`` (held in the ledger like any)."""
        key = f"req-{sim.txid[:12]}"
        fund(self.node, DEBIT, UNITS, f"fund-{key}")
        requested = self.node.custody.payouts.request(
            self.alice, PayoutRequest("BTC", UNITS, BTC_DEST, DEBIT, "hot:BTC:regtest", key))
        at = self.clock.now()

        def command(tx: Tx) -> Payout:
            signing = transition(requested, PayoutStatus.SIGNING, at)
            signed = mark_signed(signing, "02" + sim.txid, sim.txid, at, fee_units=fee,
                                 spends=sim.inputs)
            done = mark_broadcast(signed, at) if broadcast else signed
            self.node.custody.store.save_payout(tx, done)
            return done

        return self.node.writer.run(command)

    def payout(self, payout_id: str) -> Payout:
        return self.node.custody.payouts.payout(payout_id)

    def balance(self, ref: AccountRef) -> int:
        account = self.node.queries.account(ref)
        return 0 if account is None else account.balance

    def events(self, prefix: str) -> list[str]:
        return [e.type for e in self.node.outbox.events(type_prefix=prefix, limit=10_000)]

    def audit_actions(self, subject: str) -> list[str]:
        return [r.action for r in self.node.custody.audit.records(subject=subject, limit=100)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = FixedClock()
    settings = load_settings(tmp_path, overrides={"custody": {
        "network": "regtest",
        "payout_policies": {"BTC": {"require_allowlist": False, "approval_threshold": "0",
                                    "approvals_required": 1}}}})
    node = build_node(settings, clock=clock, upgrade=True)
    chain = SimulatedChain(seed=11, clock=clock)
    chain.mine(2)
    try:
        yield Rig(node, chain, clock, node.custody.operators.add("alice").operator)
    finally:
        node.close()


def send(rig: Rig) -> SimTx:
    """Our payout's transaction: a coin of ours to the destination, change back."""
    return rig.chain.pay(rig.chain.new_address(), UNITS)


def test_payout_is_mined_then_confirmed_once_final_capturing_its_hold_and_booking_its_fee(
    rig: Rig,
) -> None:
    watcher = rig.watcher()
    watcher.poll()
    sim = send(rig)
    payout = rig.payout_for(sim)
    assert rig.balance(HELD) == UNITS
    rig.chain.mine(1)
    watcher.poll()
    mined = rig.payout(payout.id)
    assert mined.status is PayoutStatus.MINED
    assert mined.block is not None
    assert mined.block.height == rig.chain.height_of(sim.txid)
    rig.chain.mine(REORG_LIMIT - 1)  # REORG_LIMIT confirmations: a reorg that deep is undone
    watcher.poll()
    assert rig.payout(payout.id).status is PayoutStatus.MINED
    assert rig.balance(HELD) == UNITS
    rig.chain.mine(1)
    watcher.poll()
    done = rig.payout(payout.id)
    assert (done.status, done.fee_units) == (PayoutStatus.CONFIRMED, FEE)
    assert (rig.balance(DEBIT), rig.balance(HELD)) == (0, 0)  # funded with exactly UNITS
    assert rig.balance(WORLD) == UNITS + FEE  # the amount and the fee left the node
    assert rig.balance(FEES) == -FEE
    assert rig.events("custody.payout_") == [
        "custody.payout_requested", "custody.payout_mined", "custody.payout_confirmed"]
    assert rig.audit_actions(payout.id)[-1] == "payout.confirmed"
    assert rig.node.verify_ledger().ok
    rig.chain.mine(2)
    watcher.poll()  # final is final: nothing more is posted
    assert rig.balance(FEES) == -FEE
    assert rig.node.verify_ledger().ok


def test_reorg_before_finality_puts_a_mined_payout_back_to_broadcast(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    sim = send(rig)
    payout = rig.payout_for(sim)
    rig.chain.mine(2)
    watcher.poll()
    first = rig.payout(payout.id).block
    assert first is not None
    rig.chain.reorg(2, drop=[sim.txid])
    watcher.poll()
    back = rig.payout(payout.id)
    assert (back.status, back.block, back.fee_units) == (PayoutStatus.BROADCAST, None, FEE)
    assert rig.balance(HELD) == UNITS
    assert rig.balance(FEES) == 0
    rig.chain.mine(1)  # mined again, in another block
    watcher.poll()
    again = rig.payout(payout.id)
    assert again.status is PayoutStatus.MINED
    assert again.block != first
    rig.chain.mine(REORG_LIMIT)
    watcher.poll()
    assert rig.payout(payout.id).status is PayoutStatus.CONFIRMED
    assert rig.events("custody.payout_")[1:] == [
        "custody.payout_mined", "custody.payout_unmined", "custody.payout_mined",
        "custody.payout_confirmed"]
    assert rig.balance(WORLD) == UNITS + FEE
    assert rig.node.verify_ledger().ok


def test_conflicting_spend_final_on_chain_fails_the_payout_and_releases_its_hold(
    rig: Rig,
) -> None:
    watcher = rig.watcher()
    watcher.poll()
    sim = send(rig)
    payout = rig.payout_for(sim)
    double_spend = rig.chain.conflict(sim.txid, [Output(rig.chain.new_address(), 90_000)])
    rig.chain.mine(1, include=[double_spend])
    watcher.poll()
    contested = rig.payout(payout.id)
    assert contested.status is PayoutStatus.BROADCAST  # a reorg could still undo the conflict
    assert contested.conflict_txid == double_spend.txid
    assert rig.balance(HELD) == UNITS
    rig.chain.mine(REORG_LIMIT)
    watcher.poll()
    lost = rig.payout(payout.id)
    assert lost.status is PayoutStatus.FAILED
    assert double_spend.txid in lost.failure
    assert lost.txid == sim.txid
    assert (rig.balance(HELD), rig.balance(DEBIT)) == (0, UNITS)
    assert rig.balance(WORLD) == 0
    assert rig.balance(FEES) == 0
    assert "custody.payout_failed" in rig.events("custody.payout_")
    assert rig.audit_actions(payout.id)[-1] == "payout.lost"
    assert rig.node.verify_ledger().ok


def test_conflict_dropped_by_a_reorg_before_finality_is_forgotten(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    sim = send(rig)
    payout = rig.payout_for(sim)
    double_spend = rig.chain.conflict(sim.txid, [Output(rig.chain.new_address(), 90_000)])
    rig.chain.mine(1, include=[double_spend])
    watcher.poll()
    rig.chain.reorg(1, include=[rig.chain.tx(sim.txid)])  # the new branch mines ours instead
    watcher.poll()
    state = rig.payout(payout.id)
    assert (state.status, state.conflict_txid) == (PayoutStatus.MINED, None)
    rig.chain.mine(REORG_LIMIT)
    watcher.poll()
    assert rig.payout(payout.id).status is PayoutStatus.CONFIRMED
    assert rig.node.verify_ledger().ok


def test_payout_spending_the_change_of_a_lost_payout_fails_with_it(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    parent = send(rig)
    child = rig.chain.pay(rig.chain.new_address(), 50_000, spend=[parent.outpoint(1)])
    first, second = rig.payout_for(parent), rig.payout_for(child)
    double_spend = rig.chain.conflict(parent.txid, [Output(rig.chain.new_address(), 90_000)])
    rig.chain.mine(1 + REORG_LIMIT, include=[double_spend])
    watcher.poll()
    assert rig.payout(first.id).status is PayoutStatus.FAILED
    lost_child = rig.payout(second.id)
    assert lost_child.status is PayoutStatus.FAILED
    assert parent.txid in lost_child.failure
    assert rig.balance(HELD) == 0
    assert rig.balance(DEBIT) == 2 * UNITS
    assert rig.node.verify_ledger().ok


def test_signed_payout_seen_in_a_block_is_recorded_broadcast_then_mined(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    sim = send(rig)  # the node's broadcast reached the chain, the record of it did not
    payout = rig.payout_for(sim, broadcast=False)
    assert payout.status is PayoutStatus.SIGNED
    rig.chain.mine(1)
    watcher.poll()
    assert rig.payout(payout.id).status is PayoutStatus.MINED
    assert rig.events("custody.payout_")[1:] == ["custody.payout_broadcast",
                                                  "custody.payout_mined"]


def test_receipt_fee_is_read_outside_the_block_and_confirms_when_recorded(rig: Rig) -> None:
    rig.fee_from_receipt = True
    tracker = rig.tracker()
    watcher = rig.watcher(tracker)
    watcher.poll()
    sim = send(rig)
    payout = rig.payout_for(sim, fee=None)
    rig.chain.mine(1 + REORG_LIMIT)
    watcher.poll()
    assert rig.payout(payout.id).status is PayoutStatus.MINED  # final, but the fee is unknown
    rig.fees.paid[sim.txid] = PaidFee("ff" * 32, 31_500)  # a receipt of another block
    assert tracker.refresh().fees_recorded == 0
    mined_in = rig.payout(payout.id).block
    assert mined_in is not None
    rig.fees.paid[sim.txid] = PaidFee(mined_in.hash, 31_500)
    report = tracker.refresh()
    assert (report.fees_recorded, report.confirmed) == (1, 1)
    done = rig.payout(payout.id)
    assert (done.status, done.fee_units) == (PayoutStatus.CONFIRMED, 31_500)
    assert rig.balance(FEES) == -31_500
    assert tracker.refresh() == type(report)()  # nothing left to do
    assert rig.node.verify_ledger().ok


def test_receipt_fee_is_forgotten_when_its_block_is_reorganised_away(rig: Rig) -> None:
    rig.fee_from_receipt = True
    tracker = rig.tracker()
    watcher = rig.watcher(tracker)
    watcher.poll()
    sim = send(rig)
    payout = rig.payout_for(sim, fee=None)
    rig.chain.mine(1)
    watcher.poll()
    block = rig.payout(payout.id).block
    assert block is not None
    rig.fees.paid[sim.txid] = PaidFee(block.hash, 42_000)
    tracker.refresh()
    assert rig.payout(payout.id).fee_units == 42_000
    rig.chain.reorg(1)  # mined again in the new branch's first block
    watcher.poll()
    again = rig.payout(payout.id)
    assert again.status is PayoutStatus.MINED
    assert again.fee_units is None


def test_unmined_broadcast_payout_is_re_sent_once_the_interval_passed(rig: Rig) -> None:
    watcher = rig.watcher()
    watcher.poll()
    broadcaster = SimBroadcaster(rig.chain)
    store = SqlOutgoingStore(rig.node.engine)
    resender = Rebroadcaster(rig.target, store, rig.node.custody.store, rig.node.writer,
                             rig.clock, broadcaster, timedelta(minutes=10))
    sim = rig.chain.make_tx([rig.chain.fund()], [Output(rig.chain.new_address(), UNITS)])
    payout = rig.payout_for(sim)  # "broadcast", but no mempool has it (say, it was evicted)
    rig.clock.advance(timedelta(minutes=9))
    assert resender.resend_due().sent == 0
    rig.clock.advance(timedelta(minutes=2))
    assert resender.resend_due().sent == 1
    assert broadcaster.sent == [sim.txid]
    assert rig.chain.in_mempool(sim.txid)
    assert rig.payout(payout.id).sent_at == rig.clock.now()
    assert resender.resend_due().sent == 0  # sent just now
    rig.chain.mine(1)
    watcher.poll()
    assert rig.payout(payout.id).status is PayoutStatus.MINED
    rig.clock.advance(timedelta(hours=1))
    assert resender.resend_due().sent == 0  # mined: nothing to re-send
    assert broadcaster.sent == [sim.txid]


def test_sweep_is_the_nodes_own_transaction_and_only_its_fee_reaches_the_ledger(
    rig: Rig,
) -> None:
    view = rig.node.custody.keychains.create(MemorySigner(), words=12,
                                             network=Network.REGTEST).view
    deposit = rig.node.custody.addresses.issue(view.accounts[0].id).address.address
    treasury = rig.node.custody.addresses.issue(view.accounts[0].id).address.address
    watcher = rig.watcher()
    watcher.poll()
    coin = rig.chain.fund()
    sim = rig.chain.make_tx([coin], [Output(treasury, 80_000)])
    at = rig.clock.now()
    sweep = Sweep("sw_1", "swb_1", "bitcoin", SweepKind.SWEEP, "BTC", treasury, 80_000,
                  (SweepInput(deposit, 81_000, "ka/0/0", coin),), "BTC", sim.txid,
                  "02" + sim.txid, SweepStatus.BROADCAST, at, at, spends=sim.inputs,
                  fee_units=1_000, sent_at=at)
    store = SqlOutgoingStore(rig.node.engine)
    rig.node.writer.run(lambda tx: store.add_sweep(tx, sweep))
    rig.chain.broadcast(sim)
    rig.chain.mine(1 + REORG_LIMIT)
    watcher.poll()
    assert rig.node.chains.store.payments("bitcoin", address=treasury) == []  # not a deposit
    done = store.sweep("sw_1")
    assert done is not None
    assert done.status is SweepStatus.CONFIRMED
    assert rig.balance(FEES) == -1_000
    assert rig.balance(WORLD) == 1_000
    assert [s.units for s in store.swept_from(deposit)] == [81_000]
    assert rig.events("chain.sweep_") == ["chain.sweep_mined", "chain.sweep_confirmed"]
    assert rig.node.verify_ledger().ok


@dataclass
class RefusingBroadcaster:
    """A node that is down (``error``) or refuses every transaction."""

    error: bool

    def broadcast(self, asset: str, raw_tx: str, txid: str) -> BroadcastResult:
        if self.error:
            raise UnavailableError("the node cannot be reached")
        return BroadcastResult(False, txid, reason="bad-txns-inputs-missingorspent")


def test_rebroadcast_round_stops_when_the_node_is_down_and_records_refusals(rig: Rig) -> None:
    sim = rig.chain.make_tx([rig.chain.fund()], [Output(rig.chain.new_address(), UNITS)])
    payout = rig.payout_for(sim)
    rig.clock.advance(timedelta(minutes=11))
    store = SqlOutgoingStore(rig.node.engine)

    def resender(error: bool) -> Rebroadcaster:
        return Rebroadcaster(rig.target, store, rig.node.custody.store, rig.node.writer,
                             rig.clock, RefusingBroadcaster(error), timedelta(minutes=10))

    down = resender(error=True).resend_due()
    assert (down.sent, down.error) == (0, "unavailable: the node cannot be reached")
    assert rig.payout(payout.id).sent_at == payout.sent_at  # nothing was sent
    refused = resender(error=False).resend_due()
    assert refused.refused == (f"{sim.txid}: bad-txns-inputs-missingorspent",)
    assert rig.payout(payout.id).status is PayoutStatus.BROADCAST  # the watcher decides
    assert rig.payout(payout.id).sent_at == rig.clock.now()  # tried: next round in 10 min
