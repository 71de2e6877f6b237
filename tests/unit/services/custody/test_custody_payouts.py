"""Payouts (R21, R23): every policy rule refuses and allows, approvals, one signature, holds.

A refused request holds nothing, signs nothing and leaves only an audit record naming the
rule; a failed signature releases the hold. Nodes run on real SQLite files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from bitcoin.core import CTransaction  # type: ignore[import-untyped]
from eth_account import Account

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.custody.addresses import parse_address, script_pubkey_from_public_key
from dpgnode.domain.custody.bip32 import master_from_seed
from dpgnode.domain.custody.btc_spend import Utxo
from dpgnode.domain.custody.evm import evm_address_from_public_key
from dpgnode.domain.custody.mnemonic import mnemonic_to_seed
from dpgnode.domain.custody.networks import AddressType, Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.custody.policy import AssetPolicy
from dpgnode.domain.custody.wallet import KeyAccount, Scheme
from dpgnode.domain.ledger import AccountKind, AccountRef
from dpgnode.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    NotFoundError,
    PolicyDeniedError,
    ValidationError,
)
from dpgnode.node import Node
from dpgnode.services.custody.payouts import PayoutRequest
from dpgnode.services.custody.wallets import AccountSpec
from tests.support.custody import (
    BTC_DEST,
    BTC_OTHER,
    EVM_DEST,
    VECTOR_MNEMONIC,
    StaticFunding,
    custody_node,
    fund,
)
from tests.support.memory_signer import MemorySigner

COIN = 100_000_000
DEBIT = AccountRef.parse("store:st_1:BTC:available")
ETH_DEBIT = AccountRef.parse("store:st_1:ETH:available")
BTC_POLICY = {
    "max_per_transaction": "1", "max_per_day": "1.5", "max_payouts_per_hour": 3,
    "approval_threshold": "0.1", "approvals_required": 2, "allowed_destinations": [BTC_DEST],
}
ETH_POLICY = {"require_allowlist": False, "max_per_transaction": "10"}


@dataclass
class World:
    node: Node
    signer: MemorySigner
    funding: StaticFunding
    btc: KeyAccount
    evm: KeyAccount
    alice: Operator
    bob: Operator
    carol: Operator

    def request(self, units: int, *, key: str, destination: str = BTC_DEST,
                source: str | None = None, asset: str = "BTC",
                debit: AccountRef = DEBIT) -> PayoutRequest:
        return PayoutRequest(asset, units, destination, debit, source or self.btc.id, key)

    def pay(self, request: PayoutRequest, who: Operator | None = None) -> Payout:
        return self.node.custody.payouts.request(
            who or self.alice, request, signer=self.signer, funding=self.funding)

    def approve(self, payout_id: str, who: Operator) -> Payout:
        return self.node.custody.payouts.approve(
            payout_id, who, signer=self.signer, funding=self.funding)

    def balance(self, ref: AccountRef) -> int:
        account = self.node.queries.account(ref)
        return 0 if account is None else account.balance

    def signatures(self) -> int:
        return sum(1 for name, _ in self.signer.calls if name.startswith("sign"))


@pytest.fixture
def world(tmp_path: Path, clock: FixedClock) -> Iterator[World]:
    node = custody_node(
        tmp_path / "node", clock,
        custody={"network": "regtest",
                 "payout_policies": {"BTC": BTC_POLICY, "ETH": ETH_POLICY}},
    )
    signer = MemorySigner(network=Network.REGTEST)
    view = node.custody.keychains.import_mnemonic(
        signer, VECTOR_MNEMONIC, network=Network.REGTEST,
        accounts=[AccountSpec(Scheme.BIP84), AccountSpec(Scheme.EVM)],
    )
    btc, evm = view.accounts
    funding = StaticFunding()
    for i in range(3):
        funding.pay_to(btc.id, node.custody.addresses.issue(btc.id).address, 2 * COIN,
                       txid_byte=i + 1)
    fund(node, DEBIT, 5 * COIN, "fund-btc")
    fund(node, ETH_DEBIT, 50 * 10**18, "fund-eth")
    ops = node.custody.operators
    built = World(node, signer, funding, btc, evm, ops.add("alice").operator,
                  ops.add("bob").operator, ops.add("carol").operator)
    yield built
    node.close()


def decoded(raw_hex: str) -> CTransaction:
    return CTransaction.deserialize(bytes.fromhex(raw_hex))


class TestSmallPayout:
    def test_signs_at_once_and_keeps_the_hold_when_no_approval_is_needed(
        self, world: World
    ) -> None:
        payout = world.node.custody.payouts.request(
            world.alice, world.request(COIN // 20, key="r1"), signer=world.signer,
            funding=world.funding,
        )
        assert payout.status is PayoutStatus.SIGNED
        tx = decoded(payout.raw_tx or "")
        assert tx.vout[0].nValue == COIN // 20
        destination = parse_address(BTC_DEST, Network.REGTEST).script_pubkey
        assert bytes(tx.vout[0].scriptPubKey) == destination
        assert tx.GetTxid()[::-1].hex() == payout.txid
        assert world.balance(DEBIT.sibling(AccountKind.HELD)) == COIN // 20
        assert world.balance(DEBIT) == 5 * COIN - COIN // 20
        assert world.node.verify_ledger().ok

    def test_change_goes_to_a_fresh_change_address_when_signed(self, world: World) -> None:
        payout = world.node.custody.payouts.request(
            world.alice, world.request(COIN // 20, key="r1"), signer=world.signer,
            funding=world.funding,
        )
        (change,) = world.node.custody.addresses.addresses(world.btc.id, branch=1)
        tx = decoded(payout.raw_tx or "")
        change_script = parse_address(change.address, Network.REGTEST).script_pubkey
        assert bytes(tx.vout[1].scriptPubKey) == change_script
        assert change.reference == payout.id

    def test_replay_returns_the_same_payout_when_the_key_repeats(self, world: World) -> None:
        first = world.pay(world.request(COIN // 20, key="same"))
        again = world.pay(world.request(COIN // 20, key="same"))
        assert again == first
        assert world.balance(DEBIT.sibling(AccountKind.HELD)) == COIN // 20

    def test_reused_key_is_refused_when_the_body_differs(self, world: World) -> None:
        world.pay(world.request(COIN // 20, key="same"))
        with pytest.raises(IdempotencyKeyReusedError):
            world.pay(world.request(COIN // 21, key="same"))


class TestPolicyRefusals:
    def assert_nothing_happened(self, world: World, rule: str, key: str) -> None:
        assert world.balance(DEBIT.sibling(AccountKind.HELD)) == 0
        assert world.signatures() == 0
        assert world.node.custody.payouts.payouts() == []
        record = world.node.custody.audit.records(subject=f"request:{key}")[-1]
        assert (record.result, record.rule, record.actor) == ("denied", rule, world.alice.id)

    def refuse(self, world: World, request: PayoutRequest) -> PolicyDeniedError:
        with pytest.raises(PolicyDeniedError) as caught:
            world.pay(request)
        return caught.value

    def test_destination_outside_the_allow_list_is_refused(self, world: World) -> None:
        error = self.refuse(world, world.request(1000, key="k", destination=BTC_OTHER))
        assert error.details["rule"] == "destination_not_allowed"
        self.assert_nothing_happened(world, "destination_not_allowed", "k")

    def test_amount_over_the_per_transaction_limit_is_refused(self, world: World) -> None:
        error = self.refuse(world, world.request(COIN + 1, key="k"))
        assert error.details == {"rule": "per_transaction_limit", "asset": "BTC"}
        self.assert_nothing_happened(world, "per_transaction_limit", "k")

    def test_amount_at_the_per_transaction_limit_is_accepted(self, world: World) -> None:
        payout = world.node.custody.payouts.request(world.alice, world.request(COIN, key="k"))
        assert payout.status is PayoutStatus.PENDING_APPROVAL

    def test_day_over_the_daily_limit_is_refused(self, world: World) -> None:
        world.pay(world.request(COIN, key="a"))
        error = self.refuse(world, world.request(COIN // 2 + 1, key="b"))
        assert error.details["rule"] == "daily_limit"

    def test_day_at_the_daily_limit_is_accepted_and_frees_up_after_24_hours(
        self, world: World, clock: FixedClock
    ) -> None:
        world.pay(world.request(COIN, key="a"))
        world.pay(world.request(COIN // 2, key="b"))
        self.refuse(world, world.request(1000, key="c"))
        clock.advance(timedelta(hours=24))
        world.pay(world.request(1000, key="d"))

    def test_cancelled_payouts_do_not_count_when_limits_are_summed(self, world: World) -> None:
        first = world.node.custody.payouts.request(world.alice, world.request(COIN, key="a"))
        world.node.custody.payouts.cancel(first.id, world.bob, "typo")
        world.pay(world.request(COIN, key="b"))

    def test_fourth_payout_in_an_hour_is_refused(self, world: World) -> None:
        for i in range(3):
            world.pay(world.request(1000, key=f"v{i}"))
        error = self.refuse(world, world.request(1000, key="v3"))
        assert error.details["rule"] == "velocity_limit"

    @pytest.mark.parametrize(
        "destination",
        ["not-an-address", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", EVM_DEST,
         BTC_DEST[:-1] + "q"],
        ids=["garbage", "mainnet", "evm", "bad-checksum"],
    )
    def test_invalid_destination_is_refused_before_anything_is_held(
        self, world: World, destination: str
    ) -> None:
        with pytest.raises(ValidationError):
            world.pay(world.request(1000, key="k", destination=destination))
        assert world.balance(DEBIT.sibling(AccountKind.HELD)) == 0
        assert world.node.custody.payouts.payouts() == []
        assert world.signatures() == 0

    def test_destination_is_normalised_before_the_allow_list_is_checked(
        self, world: World
    ) -> None:
        payout = world.pay(world.request(1000, key="k", destination=BTC_DEST.upper()))
        assert payout.destination == BTC_DEST

    def test_asset_without_a_policy_is_refused(self, world: World) -> None:
        pol = AccountRef.parse("store:st_1:BNB:available")
        request = PayoutRequest("BNB", 10, EVM_DEST, pol, world.evm.id, "k")
        with pytest.raises(PolicyDeniedError) as caught:
            world.pay(request)
        assert caught.value.details["rule"] == "asset_not_enabled"


class TestApprovals:
    def test_two_distinct_approvals_sign_once_when_above_the_threshold(
        self, world: World
    ) -> None:
        payout = world.pay(world.request(COIN // 2, key="big"))
        assert payout.status is PayoutStatus.PENDING_APPROVAL
        pid = payout.id
        assert world.approve(pid, world.bob).status is PayoutStatus.PENDING_APPROVAL
        assert world.approve(pid, world.bob).status is PayoutStatus.PENDING_APPROVAL
        assert world.signatures() == 0
        signed = world.approve(pid, world.carol)
        assert signed.status is PayoutStatus.SIGNED
        signatures = world.signatures()
        assert signatures >= 1
        # Later approvals change nothing and sign nothing.
        assert world.approve(pid, world.bob).status is PayoutStatus.SIGNED
        assert world.signatures() == signatures
        approvers = [op for op, _ in world.node.custody.payouts.approvals(pid)]
        assert approvers == [world.bob.id, world.carol.id]

    def test_requester_cannot_approve_their_own_payout(self, world: World) -> None:
        payout = world.pay(world.request(COIN // 2, key="big"))
        with pytest.raises(PolicyDeniedError) as caught:
            world.approve(payout.id, world.alice)
        assert caught.value.details["rule"] == "self_approval"
        world.approve(payout.id, world.bob)
        assert world.node.custody.payouts.payout(payout.id).status is PayoutStatus.PENDING_APPROVAL

    def test_lowered_limit_refuses_at_signing_and_releases_the_hold(self, world: World) -> None:
        payouts = world.node.custody.payouts
        payout = world.pay(world.request(COIN // 2, key="big"))
        world.approve(payout.id, world.bob)
        btc = payouts.policy.assets["BTC"]
        lowered = replace(btc, max_per_transaction=COIN // 4)
        payouts.policy = replace(payouts.policy, assets={**payouts.policy.assets, "BTC": lowered})
        with pytest.raises(PolicyDeniedError) as caught:
            world.approve(payout.id, world.carol)
        assert caught.value.details["rule"] == "per_transaction_limit"
        assert payouts.payout(payout.id).status is PayoutStatus.FAILED
        assert world.balance(DEBIT.sibling(AccountKind.HELD)) == 0
        assert world.signatures() == 0

    def test_cancelled_payout_refuses_approvals(self, world: World) -> None:
        payout = world.pay(world.request(COIN // 2, key="big"))
        world.node.custody.payouts.cancel(payout.id, world.bob)
        with pytest.raises(ConflictError):
            world.approve(payout.id, world.carol)
        assert world.balance(DEBIT.sibling(AccountKind.HELD)) == 0
        assert world.balance(DEBIT) == 5 * COIN

    def test_signed_payout_cannot_be_cancelled(self, world: World) -> None:
        payout = world.pay(world.request(1000, key="small"))
        with pytest.raises(ConflictError):
            world.node.custody.payouts.cancel(payout.id, world.bob)


class TestSigningFailures:
    def test_missing_outputs_fail_the_payout_and_release_the_hold(self, world: World) -> None:
        world.funding.utxos.clear()
        payout = world.pay(world.request(1000, key="k"))
        assert payout.status is PayoutStatus.FAILED
        assert world.balance(DEBIT.sibling(AccountKind.HELD)) == 0
        assert world.balance(DEBIT) == 5 * COIN
        actions = [(r.action, r.result) for r in world.node.custody.audit.records(
            subject=payout.id)]
        assert actions[-1] == ("signing.failed", "failed")
        assert world.node.verify_ledger().ok

    def test_no_signer_fails_the_payout_when_one_is_needed(self, world: World) -> None:
        payout = world.node.custody.payouts.request(world.alice, world.request(1000, key="k"))
        assert payout.status is PayoutStatus.FAILED
        assert "signer" in payout.failure

    def test_too_little_on_chain_fails_the_payout_when_signing(self, world: World) -> None:
        world.funding.utxos[world.btc.id] = world.funding.utxos[world.btc.id][:1]
        fund(world.node, DEBIT, 100 * COIN, "more")
        world.node.custody.payouts.policy = replace(world.node.custody.payouts.policy, assets={
            "BTC": AssetPolicy("BTC", allowed_destinations=frozenset({BTC_DEST}))})
        payout = world.pay(world.request(3 * COIN, key="k"))
        assert payout.status is PayoutStatus.FAILED

    def test_insufficient_ledger_balance_records_nothing(self, world: World) -> None:
        empty = AccountRef.parse("store:st_2:BTC:available")
        with pytest.raises(InsufficientFundsError):
            world.pay(world.request(1000, key="k", debit=empty))
        assert world.node.custody.payouts.payouts() == []
        assert world.signatures() == 0

    def test_watch_only_source_is_refused_before_anything_is_held(self, world: World) -> None:
        master = master_from_seed(mnemonic_to_seed(VECTOR_MNEMONIC, "watch"), Network.REGTEST)
        vpub = master.derive_path("m/84'/1'/0'").public().serialize("vpub")
        watch = world.node.custody.keychains.add_watch_only(vpub, network=Network.REGTEST)
        with pytest.raises(ValidationError, match="watch-only"):
            world.pay(world.request(1000, key="k", source=watch.accounts[0].id))
        assert world.balance(DEBIT.sibling(AccountKind.HELD)) == 0
        assert world.node.custody.payouts.payouts() == []

    def test_unknown_source_is_refused_before_anything_is_held(self, world: World) -> None:
        with pytest.raises(NotFoundError):
            world.pay(world.request(1000, key="k", source="ka_missing"))
        assert world.node.custody.payouts.payouts() == []


class TestEvm:
    def test_hd_account_signs_a_native_transfer_from_its_first_address(
        self, world: World
    ) -> None:
        request = PayoutRequest("ETH", 10**18, EVM_DEST, ETH_DEBIT, world.evm.id, "e1")
        payout = world.pay(request)
        assert payout.status is PayoutStatus.SIGNED
        sender = world.node.custody.addresses.account_key(world.evm).address(0, 0)
        assert Account.recover_transaction(payout.raw_tx) == sender
        assert world.funding.calls == [f"evm:ETH:{sender}"]

    def test_hot_key_signs_when_it_is_the_source(self, world: World) -> None:
        public = world.signer.add_hot_key("hot:ETH:regtest", bytes([7]) * 32)
        request = PayoutRequest("ETH", 10**17, EVM_DEST, ETH_DEBIT, "hot:ETH:regtest", "e2")
        payout = world.pay(request)
        assert Account.recover_transaction(payout.raw_tx) == evm_address_from_public_key(public)

    def test_bitcoin_account_cannot_pay_ether(self, world: World) -> None:
        request = PayoutRequest("ETH", 10**17, EVM_DEST, ETH_DEBIT, world.btc.id, "e3")
        with pytest.raises(ValidationError, match="cannot pay ETH"):
            world.pay(request)


def test_bitcoin_hot_key_spends_its_own_outputs(world: World) -> None:
    public = world.signer.add_hot_key("hot:BTC:regtest", bytes([9]) * 32)
    script = script_pubkey_from_public_key(public, AddressType.P2WPKH)
    world.funding.utxos["hot:BTC:regtest"] = [
        Utxo("ab" * 32, 1, COIN, script, "hot:BTC:regtest")
    ]
    payout = world.pay(world.request(1000, key="hot", source="hot:BTC:regtest"))
    assert payout.status is PayoutStatus.SIGNED
    tx = decoded(payout.raw_tx or "")
    assert bytes(tx.vout[1].scriptPubKey) == script  # change back to the hot key
