"""Sweeping EVM deposits to the treasury against a real anvil, followed by the real watcher.

The node's custody runs over a SQLite file with the in-memory signer (what is signed matters
here; ``test_payout_end_to_end`` covers SoftHSM2); every sweep is built, signed and sent by
the node, judged by anvil, and then followed by the node's own watcher (``EvmChainClient``)
to confirmation, where its fee reaches the ledger. Anvil's dev account 0 only funds deposit
addresses and the gas hot key, and deploys the test ERC-20.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.types import Wei

from dpgnode.adapters.assets import load_registry
from dpgnode.adapters.chains.clients import FollowedChain
from dpgnode.adapters.chains.evm_client import EvmChainClient
from dpgnode.adapters.chains.evm_registry import evm_chain_specs
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.chains.reconcile import ReconcileState
from dpgnode.domain.chains.sweeps import Sweep, SweepKind, SweepStatus
from dpgnode.domain.custody.evm import checksum_encode, evm_address_from_public_key
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.wallet import Chain
from dpgnode.domain.ledger import AccountRef
from dpgnode.node import Node, PayoutChains, Sweeping, build_node, build_payout_chains, build_sweeps
from dpgnode.services.chains.watcher import WatchTarget
from dpgnode.settings import load_settings
from tests.support.anvil import CHAIN_ID, AnvilNode
from tests.support.anvil_driver import deploy_token
from tests.support.memory_signer import MemorySigner

pytestmark = pytest.mark.integration

ETHER = 10**18
REORG_LIMIT = 2
FEES = AccountRef.parse("operator:network_fees:ETH:fees")
WORLD = AccountRef.parse("operator:chain:ETH:world")


def _checksum(address: str) -> ChecksumAddress:
    return Web3.to_checksum_address(address)


@pytest.fixture(scope="module")
def token_address(anvil: AnvilNode) -> str:
    return deploy_token(anvil)


@dataclass
class Rig:
    node: Node
    anvil: AnvilNode
    signer: MemorySigner
    alice: Operator
    account_id: str
    treasury: str
    token: Any
    chains: PayoutChains
    sweeping: Sweeping

    @property
    def w3(self) -> Web3:
        return self.anvil.w3

    def deposit(self, wei: int = 0, tokens: int = 0) -> str:
        """A used deposit address holding ``wei`` and ``tokens``."""
        address = self.node.custody.addresses.issue(self.account_id).address.address
        self.node.custody.addresses.mark_used(address)
        funder = self.w3.eth.accounts[0]
        if wei:
            self._wait(self.w3.eth.send_transaction(
                {"from": funder, "to": address, "value": Wei(wei)}))
        if tokens:
            self._wait(self.token.functions.transfer(address, tokens).transact({"from": funder}))
        return address

    def _wait(self, txid: Any) -> None:
        assert self.w3.eth.wait_for_transaction_receipt(txid, timeout=30)["status"] == 1

    def follow(self, blocks: int = 0) -> None:
        """Mine ``blocks`` more, then let the watcher and the own-transaction work run."""
        if blocks:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]
        self.node.chains.monitor.poll("ethereum", force=True)
        self.node.chains.outgoing["ethereum"].run_once()

    def balance(self, ref: AccountRef) -> int:
        account = self.node.queries.account(ref)
        return 0 if account is None else account.balance

    def reconciled(self) -> bool:
        reconciler = self.node.chains.reconciler
        assert reconciler is not None
        run = reconciler.reconcile("ethereum")
        assert run.state is ReconcileState.MATCHED, run
        return True

    def paid_fee(self, sweep: Sweep) -> int:
        receipt = self.w3.eth.get_transaction_receipt(HexStr(sweep.txid))
        return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])

    def sweep(self, selector: str) -> list[Sweep]:
        plans = self.sweeping.service.plan(selector, self.sweeping.chain)
        report = self.sweeping.service.sweep(plans, operator=self.alice, signer=self.signer,
                                             chain=self.sweeping.chain)
        assert report.problems == ()
        return list(report.sweeps)


@pytest.fixture
def rig(tmp_path: Path, anvil: AnvilNode, token_address: str) -> Iterator[Rig]:
    signer = MemorySigner()
    gas_key = f"hot:gas:{uuid.uuid4().hex[:10]}"
    gas_address = checksum_encode(bytes.fromhex(
        evm_address_from_public_key(signer.generate_hot_key(gas_key))[2:]))
    w3 = anvil.w3
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": gas_address, "value": Wei(ETHER)}))
    treasury = checksum_encode(secrets.token_bytes(20))
    settings = load_settings(tmp_path, overrides={
        "custody": {"network": "regtest"},
        "chains": {"evm": {"ethereum": {
            "rpc_url": anvil.url, "chain_id": CHAIN_ID, "confirmations": 1,
            "reorg_limit": REORG_LIMIT, "tokens": {"USDT-ETH": token_address},
            "treasury_address": treasury, "gas_source": gas_key,
        }}},
    })
    spec = evm_chain_specs(settings.chains, load_registry(settings.assets))["ethereum"]
    client = EvmChainClient.connect(spec)
    target = WatchTarget("ethereum", "evm", "", ConfirmationPolicy(1, REORG_LIMIT))
    node = build_node(settings, clock=FixedClock(), upgrade=True,
                      chains={"ethereum": FollowedChain(client, target, 1.0,
                                                        closers=(client.close,))})
    chains = build_payout_chains(node, public_keys=signer)
    account = next(a for a in node.custody.keychains.create(
        signer, words=12, network=Network.REGTEST).view.accounts if a.chain is Chain.EVM)
    contract = w3.eth.contract(address=Web3.to_checksum_address(token_address),
                               abi=_token_abi())
    rig = Rig(node, anvil, signer, node.custody.operators.add("alice").operator, account.id,
              treasury, contract, chains, build_sweeps(node, chains))
    rig.follow()  # the watcher starts at the tip
    try:
        yield rig
    finally:
        chains.close()
        node.close()


def _token_abi() -> Any:
    from tests.contracts.compile import load_artifact

    return load_artifact()["abi"]


def test_native_sweep_of_several_addresses_pays_the_treasury_and_books_each_fee(
    rig: Rig,
) -> None:
    deposits = [rig.deposit(wei=w) for w in (ETHER // 2, ETHER // 4, ETHER // 10)]
    unused = rig.node.custody.addresses.issue(rig.account_id).address.address
    rig.w3.eth.send_transaction({"from": rig.w3.eth.accounts[0], "to": unused,
                                 "value": Wei(ETHER)})  # never seen paid: not swept
    [plan] = rig.sweeping.service.plan("ETH", rig.sweeping.chain)
    assert sorted(s.inputs[0].address for s in plan.sweeps) == sorted(deposits)
    sweeps = rig.sweep("ETH")
    assert {s.status for s in sweeps} == {SweepStatus.BROADCAST}
    assert rig.w3.eth.get_balance(_checksum(rig.treasury)) == sum(s.units for s in sweeps)
    for planned in plan.sweeps:  # only the gas the base fee left unspent stays behind
        assert rig.w3.eth.get_balance(_checksum(planned.inputs[0].address)) <= planned.fee
    assert rig.w3.eth.get_balance(_checksum(unused)) == ETHER
    rig.follow()
    own = {s.txid for s in sweeps}
    assert [p for p in rig.node.chains.store.payments("ethereum", limit=1000)
            if p.txid in own] == []
    rig.follow(REORG_LIMIT + 1)
    done = [rig.sweeping.service.sweep_record(s.id) for s in sweeps]
    assert {s.status for s in done} == {SweepStatus.CONFIRMED}
    fees = [rig.paid_fee(s) for s in sweeps]
    assert [s.fee_units for s in done] == fees
    assert rig.balance(FEES) == -sum(fees)
    credited = ETHER // 2 + ETHER // 4 + ETHER // 10 + ETHER  # the watcher saw four deposits
    assert rig.balance(WORLD) == sum(fees) - credited  # the sweeps moved nothing else out
    assert rig.node.verify_ledger().ok
    assert rig.reconciled()  # what left each address, fee included, is what the chain shows
    actions = [r.action for r in rig.node.custody.audit.records(limit=1000)
               if r.subject == sweeps[0].id]
    assert actions == ["sweep.signed", "sweep.broadcast", "sweep.confirmed"]


def test_token_sweep_tops_up_gas_from_the_hot_key_first_when_the_address_has_none(
    rig: Rig,
) -> None:
    empty = rig.deposit(tokens=7_000_000)
    funded = rig.deposit(wei=ETHER // 100, tokens=3_000_000)
    [plan] = rig.sweeping.service.plan("USDT-ETH", rig.sweeping.chain)
    by_address = {s.inputs[0].address: s for s in plan.sweeps}
    assert by_address[empty].top_up > 0
    assert by_address[funded].top_up == 0
    sweeps = rig.sweep("USDT-ETH")
    kinds = sorted((s.kind, s.to_address) for s in sweeps)
    assert kinds == sorted([(SweepKind.TOP_UP, empty), (SweepKind.SWEEP, rig.treasury),
                            (SweepKind.SWEEP, rig.treasury)])
    assert rig.token.functions.balanceOf(rig.treasury).call() == 10_000_000
    assert rig.token.functions.balanceOf(empty).call() == 0
    rig.follow()
    own = {s.txid for s in sweeps}  # the top-up pays an issued address, yet is no deposit
    assert [p for p in rig.node.chains.store.payments("ethereum", limit=1000)
            if p.txid in own] == []
    rig.follow(REORG_LIMIT + 1)
    done = [rig.sweeping.service.sweep_record(s.id) for s in sweeps]
    assert {s.status for s in done} == {SweepStatus.CONFIRMED}
    assert rig.balance(FEES) == -sum(rig.paid_fee(s) for s in sweeps)
    store = rig.sweeping.service
    assert [t.units for t in store.topped_up(empty)] == [by_address[empty].top_up]
    assert [s.units for s in store.swept_from(empty)] == [7_000_000]
    assert rig.node.verify_ledger().ok
    assert rig.reconciled()


def test_chain_wide_sweep_moves_tokens_before_the_coin_that_paid_their_gas(rig: Rig) -> None:
    address = rig.deposit(wei=ETHER // 20, tokens=1_500_000)
    sweeps = rig.sweep("ethereum")
    assert [(s.asset, s.kind) for s in sweeps] == [("USDT-ETH", SweepKind.SWEEP),
                                                  ("ETH", SweepKind.SWEEP)]
    assert rig.token.functions.balanceOf(rig.treasury).call() == 1_500_000
    assert rig.w3.eth.get_balance(_checksum(rig.treasury)) == sweeps[1].units
    assert rig.w3.eth.get_balance(_checksum(address)) < ETHER // 1000  # gas dust only
