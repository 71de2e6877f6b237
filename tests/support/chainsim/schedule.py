"""R8: one seed's random schedule against the real watcher, checked after every step.

A seed decides everything: the policy (1-3 confirmations, reorg limit 2-6), full RBF or not,
the faults of the watcher's client, how many blocks a poll may apply, and the steps. A step
is one chain action (issue an address, pay one, pay from a pending or confirmed payment's
change (a descendant), pay an address nobody issued, replace a pending transaction paying
the same address more or paying elsewhere, rebroadcast a transaction that lost (replacing
the winner back), mine a private double spend, mine 1-3 blocks
leaving some transactions pending, reorganise 1-8 blocks deep dropping some transactions and
maybe mining a double spend of one, restart the watcher), then polls driven by the
client's notifications (lost, repeated, late), then polls until the watcher stands at the
tip with the chain unchanged during its last poll, then the checks of ``truth``:

- not paused: the watcher's payments, credits and balances are the chain's;
- paused: only after a reorganisation deeper than the limit (measured from the watcher's
  cursor to the fork), with nothing rewritten; the operator then resumes with
  ``accept_reorg`` and the checks above apply;
- after every reorganisation: the state equals a fresh rescan (a new database and watcher
  reading the same chain from the start height).
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from dpgnode.adapters.chains.simulated import CHANGE, Output, SimTx, SimulatedChain
from dpgnode.adapters.chains.simulated_client import NO_FAULTS, Faults, SimulatedChainClient
from dpgnode.domain.chains.payments import ConfirmationPolicy, PaymentStatus
from dpgnode.errors import ConflictError, UnavailableError, ValidationError
from dpgnode.services.chains.watcher import ChainWatcher
from tests.support.chainsim import truth
from tests.support.chainsim.rig import CHAIN, Rigs

OWNERS = ("store:st_1", "store:st_2", "")
TEMPLATE_OWNERS = OWNERS * 4
"""Addresses issued before any seed starts (open invoices, most never paid)."""
PREMINE = 3
"""Blocks before the watcher starts; reorganisations keep genesis, so the deepest (8) need a
few mined blocks first."""
REORG_DEPTHS = (1, 2, 3, 4, 5, 6, 7, 8)
REORG_WEIGHTS = (10, 8, 6, 4, 3, 2, 2, 2)
MAX_SETTLE_POLLS = 200


@dataclass(frozen=True)
class SimConfig:
    """Size of one seed's schedule (push: small; nightly: bench/chainsim.py)."""

    blocks: int = 24
    """Best-chain height a seed grows to above the premine (blocks that reorganisations
    replace come on top)."""
    max_steps: int = 60
    faults: bool = True
    untracked_parents: bool = True
    """Descendants may spend the change of a transaction that pays no issued address, so
    only the descendant is tracked when the parent is replaced."""


@dataclass
class SeedReport:
    seed: int
    steps: int
    blocks: int
    actions: Counter[str]
    reorgs: int
    deep_reorgs: int
    rescans: int
    credited: int


class SeedRun:
    """One seed's node, chain and watcher (see the module docstring)."""

    def __init__(self, seed: int, rigs: Rigs, config: SimConfig) -> None:
        self.seed = seed
        self.config = config
        self.rigs = rigs
        rng = self.rng = random.Random(seed)
        self.policy = ConfirmationPolicy(rng.randint(1, 3), rng.randint(2, 6))
        self.max_blocks = rng.choice((1, 3, 200, 200))
        depth = min(2, self.policy.reorg_limit)
        self.faults = (Faults(timeout=0.08, reorg=0.004, reorg_depth=depth, drop=0.2,
                              duplicate=0.1, delay=0.2) if config.faults else NO_FAULTS)
        self.rig = rigs.main
        self.rig.reset()
        self.chain = SimulatedChain(seed, clock=self.rig.clock, full_rbf=rng.random() < 0.8)
        self.chain.mine(PREMINE)
        self.restarts = 0
        self.watcher, self.client = self._watcher()
        self.payers: list[SimTx] = []
        """Transactions of the outside wallet whose change a descendant may spend."""
        self.actions: Counter[str] = Counter()
        self.deep_reorgs = 0
        self.rescans = 0
        self.checked_reorgs = 0
        self.frozen = truth.State({}, {})

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> SeedReport:
        steps = 0
        try:
            self.frozen = self._settle_and_check()
            while (steps < self.config.max_steps
                   and self.chain.tip.height < PREMINE + self.config.blocks):
                steps += 1
                name, action = self._pick()
                try:
                    action()
                    self.actions[name] += 1
                except (ConflictError, ValidationError):
                    self.actions[f"{name} (refused)"] += 1  # not possible in this state
                self._interact()
                self.frozen = self._settle_and_check()
            verdict = self.rig.node.verify_ledger()
            assert verdict.ok, f"ledger verification failed: {verdict}"
        except Exception as exc:  # whatever broke, the seed and step replay it
            detail = str(exc) if isinstance(exc, AssertionError) else repr(exc)
            raise AssertionError(f"seed {self.seed}, step {steps}: {detail}") from exc
        finally:
            self.client.close()
        credited = sum(status is PaymentStatus.CREDITED
                       for status, _, _ in self.frozen.payments.values())
        return SeedReport(self.seed, steps, self.chain.tip.height - PREMINE, self.actions,
                          self.chain.reorgs, self.deep_reorgs, self.rescans, credited)

    def _pick(self) -> tuple[str, Callable[[], None]]:
        actions: tuple[tuple[str, float, Callable[[], None]], ...] = (
            ("issue", 1.0, self.issue),
            ("pay", 4.0, self.pay),
            ("pay descendant", 1.5, self.pay_descendant),
            ("pay unwatched", 1.0, self.pay_unwatched),
            ("replace", 1.5, self.replace),
            ("double spend", 0.8, self.double_spend),
            ("rebroadcast", 0.8, self.rebroadcast),
            ("mine", 4.0, self.mine),
            ("reorg", 1.2, self.reorg),
            ("restart", 0.5, self.restart),
        )
        name, _, action = self.rng.choices(actions, weights=[w for _, w, _ in actions])[0]
        return name, action

    # -- actions -----------------------------------------------------------------------------

    def issue(self) -> None:
        self.rig.issue(self.rng.choice(OWNERS))

    def _units(self) -> int:
        return self.rng.randint(1, 10**8)

    def _issued_address(self) -> str:
        return self.rng.choice(self.rig.issued)[0]

    def pay(self) -> None:
        tx = self.chain.pay(self._issued_address(), self._units(),
                            replaceable=self.rng.random() < 0.7)
        self.payers.append(tx)

    def pay_unwatched(self) -> None:
        self.payers.append(self.chain.pay(self.chain.new_address(), self._units()))

    def pay_descendant(self) -> None:
        issued = dict(self.rig.issued)
        live = [tx for tx in self.payers
                if (self.chain.in_mempool(tx.txid) or self.chain.height_of(tx.txid) is not None)
                and (self.config.untracked_parents or tx.outputs[0].address in issued)]
        if not live:
            return
        parent = self.rng.choice(live)
        change = [vout for vout, out in enumerate(parent.outputs) if out.address == CHANGE]
        if change:
            self.payers.append(self.chain.pay(self._issued_address(), self._units(),
                                              spend=[parent.outpoint(change[0])]))

    def _pending(self) -> SimTx | None:
        pending = self.chain.mempool_txs()
        return self.rng.choice(pending) if pending else None

    def replace(self) -> None:
        original = self._pending()
        if original is None:
            return
        first = original.outputs[0]
        if self.rng.random() < 0.5:  # the same address, more (a fee bump that pays more)
            outputs = [Output(first.address, first.units + self.rng.randint(1, 1000)),
                       Output(CHANGE, 1_000)]
        else:  # elsewhere: a watched address or nobody's
            target = (self._issued_address() if self.rng.random() < 0.3
                      else self.chain.new_address())
            outputs = [Output(target, first.units), Output(CHANGE, 1_000)]
        tx = self.chain.replace(original.txid, outputs, replaceable=self.rng.random() < 0.7)
        self.payers.append(tx)

    def double_spend(self) -> None:
        original = self._pending()
        if original is None:
            return
        self.chain.mine(include=[self.chain.conflict(
            original.txid, [Output(self.chain.new_address(), original.outputs[0].units)])])

    def rebroadcast(self) -> None:
        """The payer sends a transaction that lost again (a full-RBF war): it replaces the
        winner when that is still unconfirmed, and the payment it carries comes back."""
        lost = [tx for tx in self.payers
                if not self.chain.in_mempool(tx.txid) and self.chain.height_of(tx.txid) is None
                and not any(self._confirmed_spender(op) for op in tx.inputs)]
        if lost:
            self.chain.broadcast(self.rng.choice(lost))

    def _confirmed_spender(self, outpoint: str) -> bool:
        spender = self.chain.spender(outpoint)
        return spender is not None and self.chain.height_of(spender) is not None

    def mine(self) -> None:
        leave = [tx.txid for tx in self.chain.mempool_txs() if self.rng.random() < 0.2]
        self.chain.mine(self.rng.randint(1, 3), leave=leave)

    def reorg(self) -> None:
        depth = self.rng.choices(REORG_DEPTHS, weights=REORG_WEIGHTS)[0]
        depth = min(depth, self.chain.tip.height - 1)
        dropped_blocks = [self.chain.block_at(h) for h in
                          range(self.chain.tip.height - depth + 1, self.chain.tip.height + 1)]
        txs = [tx for block in dropped_blocks if block is not None
               for tx in self.chain.block_txs(block)[1:]]
        drop = [tx.txid for tx in txs if self.rng.random() < 0.3]
        include = []
        if drop and self.rng.random() < 0.4:
            victim = self.chain.tx(self.rng.choice(drop))
            include.append(self.chain.conflict(
                victim.txid, [Output(self.chain.new_address(), victim.outputs[0].units)]))
        self.chain.reorg(depth, drop=drop, include=include,
                         length=depth + self.rng.randint(1, 2))

    def restart(self) -> None:
        self.client.close()
        self.watcher, self.client = self._watcher()

    # -- the watcher ---------------------------------------------------------------------------

    def _watcher(self) -> tuple[ChainWatcher, SimulatedChainClient]:
        self.restarts += 1
        return self.rig.watcher(self.chain, self.policy, faults=self.faults,
                                seed=self.restarts, max_blocks=self.max_blocks)

    def _poll_once(self) -> None:
        with contextlib.suppress(UnavailableError):  # the node's loop polls again later
            self.watcher.poll()

    def _interact(self) -> None:
        """Polls as a node's loop would make them: on block notifications, or on its timer."""
        heard = [e for e in self.client.notifications() if e.kind == "block"]
        if heard or self.rng.random() < 0.3:
            self._poll_once()

    def _chain_mark(self) -> tuple[str, int, tuple[str, ...]]:
        return (self.chain.tip.hash, self.chain.reorgs,
                tuple(tx.txid for tx in self.chain.mempool_txs()))

    def _settle(self) -> bool:
        """Poll until the watcher is at the tip after a poll the chain did not change during;
        True when the chain is paused instead."""
        for attempt in range(MAX_SETTLE_POLLS):
            if attempt == MAX_SETTLE_POLLS // 2:
                self.client.faults = NO_FAULTS  # bound the run; later polls are exact
            before = self._chain_mark()
            try:
                report = self.watcher.poll()
            except UnavailableError:
                continue
            if report.paused:
                return True
            if (before == self._chain_mark() and report.our_height == self.chain.tip.height
                    and report.lag == 0):
                cursor = self.rig.store.cursor(CHAIN)
                if cursor is not None and cursor.hash == self.chain.tip.hash:
                    self.client.faults = self.faults
                    return False
        raise AssertionError(f"the watcher did not catch up in {MAX_SETTLE_POLLS} polls")

    def _fork_depth(self) -> int:
        """How many blocks the watcher processed have left the best chain."""
        cursor = self.rig.store.cursor(CHAIN)
        assert cursor is not None
        block = self.chain.block_by_hash(cursor.hash)
        while self.chain.block_at(block.height) != block:
            block = self.chain.block_by_hash(block.prev_hash)
        return cursor.height - block.height

    def _settle_and_check(self) -> truth.State:
        deep = self.rig.store.cursor(CHAIN) is not None and (
            self._fork_depth() > self.policy.reorg_limit)
        paused = self._settle()
        assert paused == deep, (
            "paused without a deep reorganisation" if paused
            else "a reorganisation deeper than the limit was followed silently")
        if paused:
            truth.check_paused(self.rig, self.policy, self.frozen)
            self.deep_reorgs += 1
            self.watcher.resume(accept_reorg=True)  # the operator accepts the new chain
            assert not self._settle(), "paused again right after an accepted reorganisation"
        live = truth.check_live(self.rig, self.chain, self.policy)
        if self.chain.reorgs != self.checked_reorgs:
            self.checked_reorgs = self.chain.reorgs
            self._compare_with_rescan(live)
        return live

    def _compare_with_rescan(self, live: truth.State) -> None:
        self.rescans += 1
        fresh = self.rigs.fresh
        fresh.reset()
        for address, owner in self.rig.issued[len(fresh.issued):]:
            assert fresh.issue(owner) == address, "issue order differs"
        watcher, client = fresh.watcher(self.chain, self.policy)
        try:
            report = watcher.poll()
        finally:
            client.close()
        assert not report.paused, f"fresh rescan paused: {report.paused}"
        assert report.lag == 0, f"fresh rescan did not reach the tip: {report}"
        assert truth.state(fresh) == live, "state differs from a fresh rescan"


def run_seed(seed: int, rigs: Rigs, config: SimConfig | None = None) -> SeedReport:
    """Run one seed (see the module docstring); ``AssertionError`` names seed and step."""
    return SeedRun(seed, rigs, config or SimConfig()).run()
