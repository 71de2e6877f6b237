"""R3: 1,000 concurrent approvals of one payout -> exactly one signing request.

(BTCPay 2.0.6: concurrent approvals produced duplicate payouts.) Each round requests a
payout that needs 3 approvals, then 1,000 threads released together approve it as 50
operators (20 approvals each, the requester among them). Exactly one approval may start
signing: the signer sees one request, the audit log one ``signing.requested``, the payout
ends ``signed`` once, its hold intact. SQLite and PostgreSQL (``database_url``), and two
nodes sharing one database (two writers, as two processes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import PayoutStatus
from dpgnode.domain.custody.wallet import KeyAccount, Scheme
from dpgnode.domain.ledger import AccountKind, AccountRef
from dpgnode.errors import DpgError, PolicyDeniedError
from dpgnode.node import Node
from dpgnode.ports.signer import KeyRef, Signature
from dpgnode.services.custody.payouts import PayoutRequest
from dpgnode.services.custody.wallets import AccountSpec
from tests.support.custody import (
    BTC_DEST,
    VECTOR_MNEMONIC,
    StaticFunding,
    custody_node,
    fund,
)
from tests.support.memory_signer import MemorySigner

pytestmark = pytest.mark.integration

ROUNDS = 3
NIGHTLY_ROUNDS = 100
APPROVALS = 1000
OPERATORS = 50
COIN = 100_000_000
DEBIT = AccountRef.parse("store:st_1:BTC:available")
POLICY = {"BTC": {"approval_threshold": "0", "approvals_required": 3,
                  "allowed_destinations": [BTC_DEST]}}


@dataclass
class CountingSigner(MemorySigner):
    """A memory signer that counts ECDSA signatures, thread-safely."""

    signatures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sign_ecdsa(self, ref: KeyRef, digest32: bytes) -> Signature:
        with self._lock:
            self.signatures += 1
        return super().sign_ecdsa(ref, digest32)


@dataclass
class Setup:
    nodes: list[Node]
    signer: CountingSigner
    funding: StaticFunding
    account: KeyAccount
    operators: list[Operator]


def _setup(nodes: list[Node]) -> Setup:
    node = nodes[0]
    signer = CountingSigner(network=Network.REGTEST)
    view = node.custody.keychains.import_mnemonic(
        signer, VECTOR_MNEMONIC, network=Network.REGTEST, accounts=[AccountSpec(Scheme.BIP84)]
    )
    account = view.accounts[0]
    funding = StaticFunding()
    fund(node, DEBIT, 100 * COIN, "fund")
    operators = [node.custody.operators.add(f"op{i}").operator for i in range(OPERATORS)]
    return Setup(nodes, signer, funding, account, operators)


def _round(setup: Setup, round_: int) -> None:
    node = setup.nodes[0]
    # One output per round, so each signing request is exactly one signature.
    address = node.custody.addresses.issue(setup.account.id).address
    setup.funding.utxos[setup.account.id] = []
    setup.funding.pay_to(setup.account.id, address, COIN, txid_byte=round_ % 255 + 1,
                         vout=round_)
    requester = setup.operators[0]
    payout = node.custody.payouts.request(
        requester, PayoutRequest("BTC", COIN // 10, BTC_DEST, DEBIT, setup.account.id,
                                 f"round-{round_}"),
    )
    assert payout.status is PayoutStatus.PENDING_APPROVAL
    before = setup.signer.signatures
    start = threading.Event()
    outcomes: list[object] = []

    def approve(i: int) -> None:
        target = setup.nodes[i % len(setup.nodes)]
        start.wait()
        try:
            result: object = target.custody.payouts.approve(
                payout.id, setup.operators[i % OPERATORS], signer=setup.signer,
                funding=setup.funding,
            )
        except DpgError as exc:
            result = exc
        outcomes.append(result)

    with ThreadPoolExecutor(max_workers=APPROVALS) as pool:
        futures = [pool.submit(approve, i) for i in range(APPROVALS)]
        start.set()
        for future in futures:
            future.result()

    errors = [o for o in outcomes if isinstance(o, DpgError)]
    assert all(isinstance(e, PolicyDeniedError) for e in errors)  # only the requester's own
    assert len(errors) == APPROVALS // OPERATORS
    assert setup.signer.signatures - before == 1
    final = node.custody.payouts.payout(payout.id)
    assert final.status is PayoutStatus.SIGNED
    records = node.custody.audit.records(subject=payout.id, limit=1000)
    assert [r.action for r in records].count("signing.requested") == 1
    assert [r.action for r in records].count("signing.succeeded") == 1
    approvals = node.custody.payouts.approvals(payout.id)
    assert len({op for op, _ in approvals}) == len(approvals) >= 3
    assert requester.id not in {op for op, _ in approvals}


@pytest.fixture
def nodes_on(
    database_url: str, tmp_path: Path, clock: FixedClock
) -> Iterator[Callable[[int], list[Node]]]:
    opened: list[Node] = []

    def factory(count: int) -> list[Node]:
        for i in range(count):
            opened.append(custody_node(
                tmp_path / f"n{i}", clock, url=database_url,
                custody={"network": "regtest", "payout_policies": POLICY},
            ))
        return opened

    yield factory
    for node in reversed(opened):
        node.close()


class TestConcurrentApprovals:
    def test_exactly_one_signing_request_when_1000_approvals_race(
        self, nodes_on: Callable[[int], list[Node]]
    ) -> None:
        setup = _setup(nodes_on(1))
        for round_ in range(ROUNDS):
            _round(setup, round_)
        node = setup.nodes[0]
        held = node.queries.account(DEBIT.sibling(AccountKind.HELD))
        assert held is not None
        assert held.balance == ROUNDS * COIN // 10
        assert node.verify_ledger().ok
        assert node.custody.audit.verify().ok

    @pytest.mark.slow
    def test_exactly_one_signing_request_when_approvals_race_for_many_rounds(
        self, nodes_on: Callable[[int], list[Node]]
    ) -> None:
        setup = _setup(nodes_on(2))
        for round_ in range(NIGHTLY_ROUNDS):
            _round(setup, round_)
        assert setup.nodes[0].verify_ledger().ok

    def test_exactly_one_signing_request_when_two_nodes_share_the_database(
        self, nodes_on: Callable[[int], list[Node]]
    ) -> None:
        setup = _setup(nodes_on(2))
        _round(setup, 0)
        assert all(n.writer.commands > 0 for n in setup.nodes)
        assert setup.nodes[1].custody.audit.verify().ok
