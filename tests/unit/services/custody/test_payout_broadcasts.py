"""Broadcasting signed payouts: state, audit record and event for every outcome.

The chain is a scripted ``TransactionBroadcaster`` passed through the port (the real one
runs against regtest and anvil in ``tests/integration/chains``); the node, its writer,
payouts and audit log are real, over a SQLite file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.custody.wallet import Scheme
from dpgnode.domain.ledger import AccountKind, AccountRef
from dpgnode.errors import ConfigError, ConflictError, IntegrityError, UnavailableError
from dpgnode.node import Node
from dpgnode.ports.chains import BroadcastResult
from dpgnode.services.custody.payouts import PayoutRequest
from dpgnode.services.custody.wallets import AccountSpec
from tests.support.custody import BTC_DEST, VECTOR_MNEMONIC, StaticFunding, custody_node, fund
from tests.support.memory_signer import MemorySigner

COIN = 100_000_000
DEBIT = AccountRef.parse("store:st_1:BTC:available")


@dataclass
class ScriptedChain:
    """A ``TransactionBroadcaster`` that answers from a list, recording each call."""

    answers: list[BroadcastResult | Exception] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def broadcast(self, asset: str, raw_tx: str, txid: str) -> BroadcastResult:
        self.calls.append((asset, raw_tx, txid))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class Setup:
    node: Node
    alice: Operator
    bob: Operator
    payout: Payout


@pytest.fixture
def setup(tmp_path: Path, clock: FixedClock) -> Iterator[Setup]:
    node = custody_node(tmp_path / "node", clock, custody={
        "network": "regtest",
        "payout_policies": {"BTC": {"allowed_destinations": [BTC_DEST],
                                    "approval_threshold": "1", "approvals_required": 1}},
    })
    signer = MemorySigner(network=Network.REGTEST)
    (account,) = node.custody.keychains.import_mnemonic(
        signer, VECTOR_MNEMONIC, network=Network.REGTEST, accounts=[AccountSpec(Scheme.BIP84)],
    ).accounts
    funding = StaticFunding()
    funding.pay_to(account.id, node.custody.addresses.issue(account.id).address, COIN)
    fund(node, DEBIT, 5 * COIN, "fund")
    alice = node.custody.operators.add("alice").operator
    bob = node.custody.operators.add("bob").operator
    payout = node.custody.payouts.request(
        alice, PayoutRequest("BTC", COIN // 10, BTC_DEST, DEBIT, account.id, "p1"),
        signer=signer, funding=funding,
    )
    assert payout.status is PayoutStatus.SIGNED
    yield Setup(node, alice, bob, payout)
    node.close()


def broadcast_records(node: Node, payout_id: str) -> list[tuple[str, str, dict[str, str]]]:
    return [(r.actor, r.result, dict(r.details))
            for r in node.custody.audit.records(subject=payout_id, limit=1000)
            if r.action == "payout.broadcast"]


def events(node: Node) -> list[str]:
    return [e.type for e in node.outbox.pending("test", 1000)
            if e.type.startswith("custody.payout_")]


class TestAccepted:
    def test_payout_becomes_broadcast_with_audit_and_event_when_node_accepts(
        self, setup: Setup
    ) -> None:
        payout = setup.payout
        chain = ScriptedChain([BroadcastResult(True, payout.txid or "")])
        outcome = setup.node.custody.payouts.broadcast(payout.id, setup.bob, chain)
        assert (outcome.accepted, outcome.known) == (True, False)
        assert outcome.payout.status is PayoutStatus.BROADCAST
        assert (outcome.payout.txid, outcome.payout.raw_tx) == (payout.txid, payout.raw_tx)
        assert chain.calls == [("BTC", payout.raw_tx, payout.txid)]
        stored = setup.node.custody.payouts.payout(payout.id)
        assert stored.status is PayoutStatus.BROADCAST
        assert broadcast_records(setup.node, payout.id) == [
            (setup.bob.id, "ok", {"txid": payout.txid, "asset": "BTC", "known": "false"})]
        assert events(setup.node)[-1] == "custody.payout_broadcast"
        assert setup.node.custody.audit.verify().ok

    def test_rebroadcast_resends_and_changes_nothing_when_already_broadcast(
        self, setup: Setup
    ) -> None:
        payout = setup.payout
        chain = ScriptedChain([BroadcastResult(True, payout.txid or ""),
                               BroadcastResult(True, payout.txid or "", known=True)])
        setup.node.custody.payouts.broadcast(payout.id, setup.alice, chain)
        again = setup.node.custody.payouts.broadcast(payout.id, setup.alice, chain)
        assert (again.accepted, again.known, again.payout.status) == (
            True, True, PayoutStatus.BROADCAST)
        assert len(chain.calls) == 2
        assert [r[1] for r in broadcast_records(setup.node, payout.id)] == ["ok", "ok"]
        assert events(setup.node).count("custody.payout_broadcast") == 1

    def test_hold_stays_until_the_chain_confirms_when_broadcast(self, setup: Setup) -> None:
        held_ref = DEBIT.sibling(AccountKind.HELD)

        def held() -> int:
            account = setup.node.queries.account(held_ref)
            return 0 if account is None else account.balance

        assert held() == COIN // 10
        chain = ScriptedChain([BroadcastResult(True, setup.payout.txid or "")])
        setup.node.custody.payouts.broadcast(setup.payout.id, setup.alice, chain)
        assert held() == COIN // 10  # settled by the chain watcher on confirmation


class TestRefused:
    def test_payout_stays_signed_and_reason_is_audited_when_node_refuses(
        self, setup: Setup
    ) -> None:
        payout = setup.payout
        chain = ScriptedChain([BroadcastResult(False, payout.txid or "",
                                               reason="missing-inputs")])
        outcome = setup.node.custody.payouts.broadcast(payout.id, setup.alice, chain)
        assert (outcome.accepted, outcome.reason) == (False, "missing-inputs")
        assert setup.node.custody.payouts.payout(payout.id).status is PayoutStatus.SIGNED
        ((actor, result, details),) = broadcast_records(setup.node, payout.id)
        assert (actor, result, details["reason"]) == (setup.alice.id, "failed", "missing-inputs")
        assert "custody.payout_broadcast" not in events(setup.node)

    @pytest.mark.parametrize("error", [
        UnavailableError("Bitcoin node at http://127.0.0.1:1 cannot be reached"),
        ConfigError("no Bitcoin node configured: set chains.bitcoin.rpc_url"),
        IntegrityError("node computed txid ab for the payout's raw transaction"),
    ])
    def test_attempt_is_audited_and_error_raised_when_chain_fails(
        self, setup: Setup, error: Exception
    ) -> None:
        chain = ScriptedChain([error])
        with pytest.raises(type(error)):
            setup.node.custody.payouts.broadcast(setup.payout.id, setup.alice, chain)
        assert setup.node.custody.payouts.payout(setup.payout.id).status is PayoutStatus.SIGNED
        ((_, result, details),) = broadcast_records(setup.node, setup.payout.id)
        assert result == "failed"
        assert str(error) in details["reason"]
        assert setup.node.custody.audit.verify().ok

    def test_conflict_when_payout_is_not_signed(self, setup: Setup) -> None:
        pending = setup.node.custody.payouts.request(
            setup.alice,
            PayoutRequest("BTC", 2 * COIN, BTC_DEST, DEBIT, setup.payout.source, "p2"),
        )
        assert pending.status is PayoutStatus.PENDING_APPROVAL
        chain = ScriptedChain()
        with pytest.raises(ConflictError, match="only a signed payout"):
            setup.node.custody.payouts.broadcast(pending.id, setup.alice, chain)
        assert chain.calls == []
        assert broadcast_records(setup.node, pending.id) == []


def test_approving_a_broadcast_payout_changes_nothing(setup: Setup) -> None:
    chain = ScriptedChain([BroadcastResult(True, setup.payout.txid or "")])
    setup.node.custody.payouts.broadcast(setup.payout.id, setup.alice, chain)
    unchanged = setup.node.custody.payouts.approve(setup.payout.id, setup.bob)
    assert unchanged.status is PayoutStatus.BROADCAST
    with pytest.raises(ConflictError):
        setup.node.custody.payouts.cancel(setup.payout.id, setup.bob, "too late")
