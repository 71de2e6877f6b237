"""A node with something on every dashboard screen, built the same way on every run.

Stores and an admin key; BTC-USD with a resting book and trades, ETH-USD halted; a
regtest keychain (the BIP84 test-vector mnemonic, in the in-memory signer) with issued and
used addresses; operators alice, bob and carol; payouts awaiting approval under a BTC
policy that needs two approvals above 0.1 BTC. Ids are sequential and the clock fixed, so
screens show the same text every time (snapshot tests rely on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.access import UNRESTRICTED
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import Scheme
from dpgnode.domain.ledger import AccountRef
from dpgnode.node import Node, build_node
from dpgnode.services.access import StoreFields
from dpgnode.services.custody.payouts import PayoutRequest
from dpgnode.services.custody.wallets import AccountSpec
from dpgnode.settings import load_settings
from tests.support.custody import BTC_DEST, VECTOR_MNEMONIC, fund
from tests.support.memory_signer import MemorySigner
from tests.support.served_node import SequentialIds
from tests.support.trading import fund as fund_user
from tests.support.trading import place

COIN = 100_000_000
DEBIT = AccountRef.parse("store:st_shop:BTC:available")
BTC_POLICY = {
    "max_per_transaction": "2", "max_per_day": "5", "max_payouts_per_hour": 10,
    "approval_threshold": "0.1", "approvals_required": 2,
    "allowed_destinations": [BTC_DEST],
}


@dataclass(frozen=True)
class Seed:
    """A seeded data directory, to copy for each test (cheaper than seeding again)."""

    data_dir: Path
    admin_key: str
    tokens: dict[str, str]
    """Operator name -> token."""
    payouts: dict[str, str]
    """``big`` (0.5 BTC, no approval yet), ``half`` (0.25 BTC, approved by carol)."""
    next_id: int
    """Where a node on a copy continues its sequential ids (no collision with the seed's)."""


def open_node(data_dir: Path, *, next_id: int = 1, upgrade: bool = False) -> Node:
    """The dashboard's node on ``data_dir``: fixed clock, sequential ids, the BTC policy."""
    settings = load_settings(data_dir, overrides={
        "custody": {"network": "regtest", "payout_policies": {"BTC": BTC_POLICY}},
    })
    return build_node(settings, clock=FixedClock(), ids=SequentialIds(next_id), upgrade=upgrade)


def seed(data_dir: Path) -> Seed:
    """Create and seed the data directory (the node used to seed it is closed)."""
    node = open_node(data_dir, upgrade=True)
    try:
        node.access.create_store(StoreFields(name="Corner Shop"))
        admin = node.access.create_api_key("dashboard", [UNRESTRICTED]).secret
        _trading(node)
        tokens = {name: node.custody.operators.add(name).token
                  for name in ("alice", "bob", "carol")}
        payouts = _custody(node)
        ids = node.ids
        assert isinstance(ids, SequentialIds)
        return Seed(data_dir, admin, tokens, payouts, ids.next)
    finally:
        node.close()


def _trading(node: Node) -> None:
    for symbol in ("BTC-USD", "ETH-USD"):
        node.trading.open_pair(symbol)
    fund_user(node, "maker", "BTC", "5")
    fund_user(node, "maker", "USD", "500000")
    fund_user(node, "taker", "USD", "100000")
    for price, quantity in (("60100", "0.50"), ("60200", "1.20"), ("60500", "0.80")):
        place(node, "maker", "sell", quantity, price)
    for price, quantity in (("59900", "0.40"), ("59800", "1.00"), ("59500", "2.00")):
        place(node, "maker", "buy", quantity, price)
    place(node, "taker", "buy", "0.30", "60100")
    place(node, "taker", "buy", "0.10", "60100")
    node.trading.halt_pair("ETH-USD")


def _custody(node: Node) -> dict[str, str]:
    signer = MemorySigner(network=Network.REGTEST)
    view = node.custody.keychains.import_mnemonic(
        signer, VECTOR_MNEMONIC, network=Network.REGTEST, accounts=[AccountSpec(Scheme.BIP84)],
    )
    account = view.accounts[0]
    issued = [node.custody.addresses.issue(account.id).address for _ in range(4)]
    node.custody.addresses.mark_used(issued[1].address)
    fund(node, DEBIT, 3 * COIN, "fund-shop")
    ops = {op.name: op for op in node.custody.operators.operators()}
    payouts = node.custody.payouts

    def request(key: str, units: int, destination: str, who: str) -> str:
        return payouts.request(ops[who], PayoutRequest(
            "BTC", units, destination, DEBIT, account.id, key, memo=f"seed {key}")).id

    big = request("big", COIN // 2, BTC_DEST, "alice")
    half = request("half", COIN // 4, BTC_DEST, "bob")
    payouts.approve(half, ops["carol"], can_sign=False)
    return {"big": big, "half": half}
