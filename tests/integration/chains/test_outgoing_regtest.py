"""The node's own Bitcoin transactions on a real Bitcoin Knots regtest node.

A node with ``[chains.bitcoin]`` follows regtest with the real ``BitcoinChainClient``; its
payouts are signed (in-memory signer) from deposits the watcher credited, broadcast through
the real broadcaster, and then decided by the chain: confirmed once final (hold captured,
the fee the signed transaction pays booked), back to ``broadcast`` when a reorganisation
drops its block, failed and released when a conflicting spend of its input is final.
A sweep of several deposit outputs into one transaction is confirmed the same way. The
ledger verifies after each.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from coincurve import PrivateKey

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.chains.reconcile import ReconcileState
from dpgnode.domain.chains.sweeps import SweepStatus
from dpgnode.domain.custody.addresses import address_from_public_key, parse_address
from dpgnode.domain.custody.btc_spend import FeeRate, Payment, build_spend
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.custody.wallet import Chain
from dpgnode.domain.ledger import AccountRef
from dpgnode.node import Node, PayoutChains, build_node, build_payout_chains, build_sweeps
from dpgnode.services.custody.payout_tx import resolve_source
from dpgnode.services.custody.payouts import PayoutRequest
from dpgnode.services.custody.tx_signing import sign_bitcoin
from dpgnode.settings import load_settings
from tests.integration.chains.signing import BURN
from tests.support.bitcoind import BitcoindNode, btc_to_sats
from tests.support.custody import fund
from tests.support.memory_signer import MemorySigner

pytestmark = pytest.mark.integration

COIN = 100_000_000
REORG_LIMIT = 2
DEBIT = AccountRef.parse("store:st_1:BTC:available")
HELD = AccountRef.parse("store:st_1:BTC:held")
WORLD = AccountRef.parse("operator:chain:BTC:world")
FEES = AccountRef.parse("operator:network_fees:BTC:fees")
DROP_DELTA_SATS = 10**8


def random_address() -> str:
    key = PrivateKey(secrets.token_bytes(32)).public_key.format(compressed=True)
    return address_from_public_key(key, AddressType.P2WPKH, Network.REGTEST)


@dataclass
class Rig:
    node: Node
    bitcoind: BitcoindNode
    signer: MemorySigner
    chains: PayoutChains
    alice: Operator
    account_id: str

    def deposit(self, btc: str) -> str:
        address = self.node.custody.addresses.issue(self.account_id).address.address
        self.bitcoind.rpc("sendtoaddress", address, Decimal(btc), wallet="funder")
        return address

    def follow(self, blocks: int = 0) -> None:
        if blocks:
            self.bitcoind.mine(blocks, BURN)
        self.node.chains.monitor.poll("bitcoin", force=True)
        self.node.chains.outgoing["bitcoin"].run_once()

    def pay(self, units: int, key: str) -> Payout:
        fund(self.node, DEBIT, units, f"fund-{key}")
        request = PayoutRequest("BTC", units, random_address(), DEBIT, self.account_id, key)
        signed = self.node.custody.payouts.request(self.alice, request, signer=self.signer,
                                                   funding=self.chains.funding)
        assert signed.status is PayoutStatus.SIGNED, signed.failure
        outcome = self.node.custody.payouts.broadcast(signed.id, self.alice,
                                                      self.chains.broadcaster)
        assert outcome.accepted, outcome.reason
        return outcome.payout

    def reconciled(self) -> bool:
        reconciler = self.node.chains.reconciler
        assert reconciler is not None
        run = reconciler.reconcile("bitcoin")
        assert run.state is ReconcileState.MATCHED, run
        return True

    def payout(self, payout_id: str) -> Payout:
        return self.node.custody.payouts.payout(payout_id)

    def balance(self, ref: AccountRef) -> int:
        account = self.node.queries.account(ref)
        return 0 if account is None else account.balance

    def reorg(self, depth: int, drop: str) -> None:
        """Replace the last ``depth`` blocks by ``depth + 1`` that leave ``drop`` out."""
        tip = self.bitcoind.rpc("getblockcount")
        self.bitcoind.rpc("invalidateblock", self.bitcoind.rpc("getblockhash", tip - depth + 1))
        self.bitcoind.rpc("prioritisetransaction", drop, 0, -DROP_DELTA_SATS)
        try:
            self.bitcoind.mine(depth + 1, random_address())
        finally:
            self.bitcoind.rpc("prioritisetransaction", drop, 0, DROP_DELTA_SATS)


@pytest.fixture
def rig(tmp_path: Path, bitcoind: BitcoindNode) -> Iterator[Rig]:
    settings = load_settings(tmp_path, overrides={
        "custody": {"network": "regtest",
                    "payout_policies": {"BTC": {"require_allowlist": False}}},
        "chains": {"bitcoin": {
            "rpc_url": f"http://127.0.0.1:{bitcoind.port}", "rpc_user": bitcoind.user,
            "rpc_password": bitcoind.password, "confirmations": 1,
            "reorg_limit": REORG_LIMIT, "treasury_address": random_address(),
        }},
    })
    node = build_node(settings, clock=FixedClock(), upgrade=True)
    signer = MemorySigner()
    chains = build_payout_chains(node, public_keys=signer)
    account = next(a for a in node.custody.keychains.create(
        signer, words=12, network=Network.REGTEST).view.accounts if a.chain is Chain.BITCOIN)
    rig = Rig(node, bitcoind, signer, chains, node.custody.operators.add("alice").operator,
              account.id)
    rig.follow()  # the watcher starts at the tip
    try:
        yield rig
    finally:
        chains.close()
        node.close()


def test_payout_confirmed_once_final_captures_its_hold_and_books_the_fee_it_paid(
    rig: Rig,
) -> None:
    rig.deposit("0.4")
    rig.follow(1)
    payout = rig.pay(COIN // 10, "btc-confirm")
    fee = btc_to_sats(rig.bitcoind.rpc("getmempoolentry", payout.txid)["fees"]["base"])
    assert payout.fee_units == fee  # recorded at signing: inputs minus outputs
    rig.follow(1)
    assert rig.payout(payout.id).status is PayoutStatus.MINED
    assert rig.balance(HELD) == COIN // 10
    rig.follow(REORG_LIMIT)
    done = rig.payout(payout.id)
    assert (done.status, done.fee_units) == (PayoutStatus.CONFIRMED, fee)
    assert (rig.balance(HELD), rig.balance(DEBIT)) == (0, 0)
    assert rig.balance(FEES) == -fee
    deposits = 40_000_000  # credited to the unassigned operator account by the watcher
    assert rig.balance(WORLD) == COIN // 10 + fee - deposits
    assert rig.node.verify_ledger().ok
    assert rig.reconciled()  # the deposit spent, the change back: the chain agrees


def test_reorg_before_finality_puts_the_mined_payout_back_to_broadcast(rig: Rig) -> None:
    rig.deposit("0.3")
    rig.follow(1)
    payout = rig.pay(COIN // 20, "btc-reorg")
    rig.follow(1)
    mined = rig.payout(payout.id)
    assert mined.status is PayoutStatus.MINED
    assert mined.block is not None
    rig.reorg(1, drop=payout.txid or "")
    rig.follow()
    back = rig.payout(payout.id)
    assert (back.status, back.block) == (PayoutStatus.BROADCAST, None)
    assert rig.balance(HELD) == COIN // 20
    assert rig.balance(FEES) == 0
    assert rig.node.verify_ledger().ok
    rig.follow(1 + REORG_LIMIT)  # back in the mempool: mined again, then final
    done = rig.payout(payout.id)
    assert done.status is PayoutStatus.CONFIRMED
    assert done.block != mined.block
    assert rig.balance(FEES) == -(done.fee_units or 0)
    assert rig.node.verify_ledger().ok


def test_conflicting_spend_final_on_chain_fails_the_payout_and_releases_its_hold(
    rig: Rig,
) -> None:
    rig.deposit("0.25")
    rig.follow(1)
    funds = rig.chains.funding.bitcoin(rig.account_id, Network.REGTEST)
    payout = rig.pay(COIN // 10, "btc-conflict")
    spent = {s for s in payout.spends}
    # The same key spends the same deposit elsewhere, at a higher fee (a full-RBF
    # replacement): what an attacker holding the key, or a second wallet, could do.
    utxos = [u for u in funds.utxos if f"{u.txid}:{u.vout}" in spent]
    elsewhere = parse_address(random_address(), Network.REGTEST).script_pubkey
    total = sum(u.value_sats for u in utxos)
    higher = FeeRate(3 * funds.fee_rate.sat_per_kvb)  # what a replacement must outbid
    plan = build_spend(utxos, [Payment(elsewhere, total - 100_000)], change_script=elsewhere,
                       fee_rate=higher)
    source = resolve_source(rig.account_id, rig.node.custody.store, rig.node.assets["BTC"])
    refs = {u.key_id: source.hd_ref(*map(int, u.key_id.split("/")[1:])) for u in utxos}
    conflict = sign_bitcoin(rig.signer, plan, refs)
    assert rig.bitcoind.rpc("sendrawtransaction", conflict.raw_hex) == conflict.txid
    rig.follow(1)
    contested = rig.payout(payout.id)
    assert (contested.status, contested.conflict_txid) == (PayoutStatus.BROADCAST,
                                                           conflict.txid)
    assert rig.balance(HELD) == COIN // 10
    rig.follow(REORG_LIMIT)
    lost = rig.payout(payout.id)
    assert lost.status is PayoutStatus.FAILED
    assert conflict.txid in lost.failure
    assert (rig.balance(HELD), rig.balance(DEBIT)) == (0, COIN // 10)
    assert rig.balance(FEES) == 0
    actions = [r.action for r in rig.node.custody.audit.records(subject=payout.id)]
    assert actions[-1] == "payout.lost"
    assert rig.node.verify_ledger().ok


def test_sweep_spends_every_deposit_output_in_one_transaction_to_the_treasury(
    rig: Rig,
) -> None:
    deposits = [rig.deposit(btc) for btc in ("0.1", "0.2", "0.05")]
    rig.follow(1)
    sweeping = build_sweeps(rig.node, rig.chains)
    [plan] = sweeping.service.plan("bitcoin", sweeping.chain)
    assert len(plan.sweeps) == 1
    assert len(plan.sweeps[0].inputs) == 3
    report = sweeping.service.sweep([plan], operator=rig.alice, signer=rig.signer,
                                    chain=sweeping.chain)
    assert report.problems == ()
    [sweep] = report.sweeps
    assert sweep.status is SweepStatus.BROADCAST
    assert sweep.units + (sweep.fee_units or 0) == 35_000_000
    decoded = rig.bitcoind.rpc("getrawtransaction", sweep.txid, True)
    assert len(decoded["vin"]) == 3
    assert len(decoded["vout"]) == 1
    assert decoded["vout"][0]["scriptPubKey"]["address"] == plan.treasury
    assert btc_to_sats(decoded["vout"][0]["value"]) == sweep.units
    rig.follow(1 + REORG_LIMIT)
    done = sweeping.service.sweep_record(sweep.id)
    assert done.status is SweepStatus.CONFIRMED
    assert rig.balance(FEES) == -(sweep.fee_units or 0)
    assert sorted(s.units for a in deposits for s in sweeping.service.swept_from(a)) == [
        5_000_000, 10_000_000, 20_000_000]
    assert rig.node.verify_ledger().ok
    assert rig.reconciled()
