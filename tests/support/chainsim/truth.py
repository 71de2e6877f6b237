"""What the watcher's state must be, read from the simulated chain itself, and the checks.

The chain is the ground truth: a payment to an issued address is expected ``pending`` while its
transaction is in the mempool, ``confirming``/``credited`` (by depth) while it is in the best
chain, and otherwise ``unaccounted``: its transaction lost to a conflict (itself or an
ancestor) or left the mempool with an evicted ancestor; either way it will not confirm unless
someone sends it again, so a merchant must not be told it is on its way. The ledger must hold
exactly one live credit per credited payment, nothing for the others, and the owners'
balances must equal the sum of their credited payments.

Each failed check raises ``AssertionError`` naming the payment and the rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from dpgnode.adapters.chains.simulated import SimulatedChain
from dpgnode.domain.chains.blocks import BlockRef
from dpgnode.domain.chains.payments import (
    UNASSIGNED_OWNER,
    ConfirmationPolicy,
    Payment,
    PaymentStatus,
    owner_account,
    world_account,
)
from tests.support.chainsim.rig import CHAIN, START_HEIGHT, NodeRig

ASSET = "BTC"
_LIVE = (PaymentStatus.PENDING, PaymentStatus.CONFIRMING, PaymentStatus.CREDITED)


@dataclass(frozen=True)
class Expected:
    status: PaymentStatus
    block: BlockRef | None
    units: int
    owner: str


@dataclass(frozen=True)
class State:
    """What a rescan must reproduce: live payments and every balance the watcher touched."""

    payments: Mapping[str, tuple[PaymentStatus, BlockRef | None, int]]
    balances: Mapping[str, int]


def expected_payments(
    chain: SimulatedChain, issued: Mapping[str, str], policy: ConfirmationPolicy
) -> dict[str, Expected]:
    """Every output paying an issued address in the best chain or the mempool."""
    tip = chain.tip.height
    found: dict[str, Expected] = {}
    for height in range(START_HEIGHT, tip + 1):
        block = chain.block_at(height)
        assert block is not None
        status = (PaymentStatus.CREDITED if tip - height + 1 >= policy.confirmations
                  else PaymentStatus.CONFIRMING)
        for tx in chain.block_txs(block):
            for vout, out in enumerate(tx.outputs):
                if out.address in issued:
                    found[tx.outpoint(vout)] = Expected(status, block.ref, out.units,
                                                        issued[out.address])
    for tx in chain.mempool_txs():
        for vout, out in enumerate(tx.outputs):
            if out.address in issued:
                found[tx.outpoint(vout)] = Expected(PaymentStatus.PENDING, None, out.units,
                                                    issued[out.address])
    return found


def all_payments(rig: NodeRig) -> dict[str, Payment]:
    return {p.key: p for p in rig.store.payments(CHAIN, limit=1_000_000)}


def _owner(owner: str) -> str:
    return owner or UNASSIGNED_OWNER


def ledger_by_payment(rig: NodeRig) -> tuple[dict[str, int], dict[str, int]]:
    """Per payment key: net units credited to its owner, and live (unreversed) credits."""
    entries = list(rig.node.queries.entries())
    payment_of = {e.id: e.metadata.get("payment") for e in entries}
    reversed_ids = {e.reverses for e in entries if e.reverses}
    world = world_account(ASSET)
    net: dict[str, int] = defaultdict(int)
    live: dict[str, int] = defaultdict(int)
    for entry in entries:
        key = payment_of.get(entry.reverses) if entry.reverses else payment_of[entry.id]
        if key is None:
            continue
        net[key] += sum(p.units for p in entry.postings if p.account != world)
        if not entry.reverses and entry.id not in reversed_ids:
            live[key] += 1
    return dict(net), dict(live)


def balances(rig: NodeRig) -> dict[str, int]:
    """Balance of every issued address owner's account and of the chain's world account."""
    found = {a.ref: a.balance for a in rig.node.queries.accounts(asset=ASSET)}
    owners = {_owner(owner) for _, owner in rig.issued}
    result = {owner: found.get(owner_account(owner, ASSET), 0) for owner in sorted(owners)}
    result["world"] = found.get(world_account(ASSET), 0)
    return result


def state(rig: NodeRig, payments: Mapping[str, Payment] | None = None) -> State:
    payments = all_payments(rig) if payments is None else payments
    live = {key: (p.status, p.block, p.units) for key, p in payments.items() if p.status in _LIVE}
    return State(live, balances(rig))


def check_live(rig: NodeRig, chain: SimulatedChain, policy: ConfirmationPolicy) -> State:
    """The watcher caught up and not paused: its state is the chain's (module docstring)."""
    cursor = rig.store.cursor(CHAIN)
    assert cursor is not None
    assert not cursor.is_paused, cursor.paused
    assert (cursor.height, cursor.hash) == (chain.tip.height, chain.tip.hash), "not at the tip"
    issued = dict(rig.issued)
    expected = expected_payments(chain, issued, policy)
    actual = all_payments(rig)
    for key, want in expected.items():
        got = actual.get(key)
        assert got is not None, f"payment {key} ({want.status}) is missing"
        assert (got.status, got.block) == (want.status, want.block), (
            f"payment {key}: {got.status} in {got.block}, expected {want.status} in {want.block}")
        assert (got.units, got.owner) == (want.units, _owner(want.owner)), f"payment {key}"
    for key, got in actual.items():
        if key in expected:
            continue
        assert got.status is PaymentStatus.UNACCOUNTED, (
            f"payment {key} is {got.status} but its transaction is neither in the best chain "
            "nor in the mempool")
    return _check_ledger(rig, actual)


def _check_ledger(rig: NodeRig, payments: Mapping[str, Payment]) -> State:
    net, live = ledger_by_payment(rig)
    for key in net.keys() - payments.keys():
        assert net[key] == 0, f"the ledger credits {key}, which the watcher does not know"
    totals: dict[str, int] = defaultdict(int)
    for key, payment in payments.items():
        credited = payment.status is PaymentStatus.CREDITED
        assert live.get(key, 0) == int(credited), (
            f"payment {key} ({payment.status}) has {live.get(key, 0)} live credits")
        assert net.get(key, 0) == (payment.units if credited else 0), (
            f"payment {key} ({payment.status}): ledger credits {net.get(key, 0)}")
        if credited:
            totals[payment.owner] += payment.units
    current = state(rig, payments)
    for owner, got in current.balances.items():
        want = -sum(totals.values()) if owner == "world" else totals.get(owner, 0)
        assert got == want, f"{owner} holds {got}, its credited payments sum to {want}"
    return current


def check_paused(rig: NodeRig, policy: ConfirmationPolicy, frozen: State) -> int:
    """A deep reorganisation paused the chain: one incident, nothing rewritten; its depth."""
    cursor = rig.store.cursor(CHAIN)
    assert cursor is not None
    assert cursor.is_paused
    [incident] = rig.store.incidents(CHAIN)
    assert incident.kind == "deep_reorg", incident
    depth = int(incident.details["depth"])
    assert depth > policy.reorg_limit, f"paused for depth {depth} within {policy.reorg_limit}"
    assert state(rig) == frozen, "a paused chain's payments or balances changed"
    return depth
