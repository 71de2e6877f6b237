"""The simulated chain keeps Bitcoin's rules that a watcher can observe, and its seed replays.

The chain-port contract (tests/contracts/chain_port) checks what the simulator and real
nodes share; these tests pin the rules only the simulator lets us drive exactly: RBF with and
without full RBF, descendants, private double spends, what a reorganisation returns to the
mempool, and the client's seeded faults.
"""

from __future__ import annotations

import pytest

from dpgnode.adapters.chains.simulated import ChainEvent, Output, SimulatedChain
from dpgnode.adapters.chains.simulated_client import Faults, SimulatedChainClient
from dpgnode.errors import ConflictError, UnavailableError, ValidationError


def _script(chain: SimulatedChain) -> list[str]:
    """A fixed sequence of actions; the hashes and txids it produces."""
    a, b = chain.new_address(), chain.new_address()
    first = chain.pay(a, 1_000)
    out = [first.txid, *chain.mine(2)]
    out.append(chain.pay(b, 2_000).txid)
    out += chain.reorg(2, drop=[first.txid])
    out.append(chain.replace(first.txid, [Output(b, 999)]).txid)
    out += chain.mine(1)
    return out


class TestDeterminism:
    def test_same_seed_gives_the_same_chain_when_replayed(self) -> None:
        assert _script(SimulatedChain(seed=7)) == _script(SimulatedChain(seed=7))

    def test_other_seed_gives_other_ids_when_replayed(self) -> None:
        assert set(_script(SimulatedChain(seed=7))).isdisjoint(_script(SimulatedChain(seed=8)))


class TestMempool:
    def test_replacement_evicts_the_original_and_its_descendants(self) -> None:
        chain = SimulatedChain()
        parent = chain.pay(chain.new_address(), 500)
        child = chain.pay(chain.new_address(), 100, spend=[parent.outpoint(1)])

        replacement = chain.replace(parent.txid, [Output(chain.new_address(), 500)])

        assert [tx.txid for tx in chain.mempool_txs()] == [replacement.txid]
        assert not chain.in_mempool(child.txid)

    def test_non_signalling_tx_is_replaced_when_full_rbf(self) -> None:
        chain = SimulatedChain(full_rbf=True)
        original = chain.pay(chain.new_address(), 500, replaceable=False)

        replacement = chain.replace(original.txid, [Output(chain.new_address(), 500)])

        assert chain.in_mempool(replacement.txid)
        assert not chain.in_mempool(original.txid)

    def test_non_signalling_tx_is_kept_when_not_full_rbf(self) -> None:
        chain = SimulatedChain(full_rbf=False)
        original = chain.pay(chain.new_address(), 500, replaceable=False)

        with pytest.raises(ConflictError, match="does not signal BIP125"):
            chain.replace(original.txid, [Output(chain.new_address(), 500)])
        assert chain.in_mempool(original.txid)

    def test_spending_a_confirmed_spent_outpoint_is_refused(self) -> None:
        chain = SimulatedChain()
        original = chain.pay(chain.new_address(), 500)
        chain.mine()

        with pytest.raises(ConflictError, match="already spent"):
            chain.replace(original.txid, [Output(chain.new_address(), 500)])

    def test_unknown_input_is_refused(self) -> None:
        chain = SimulatedChain()

        with pytest.raises(ValidationError, match="unknown outpoint"):
            chain.pay(chain.new_address(), 1, spend=["ab" * 32 + ":0"])

    def test_rebroadcast_of_a_known_tx_is_a_no_op(self) -> None:
        chain = SimulatedChain()
        tx = chain.pay(chain.new_address(), 500)

        assert chain.broadcast(tx) is False
        assert [t.txid for t in chain.mempool_txs()] == [tx.txid]


class TestBlocks:
    def test_mined_tx_leaves_the_mempool_and_counts_confirmations(self) -> None:
        chain = SimulatedChain()
        tx = chain.pay(chain.new_address(), 500)
        [block_hash] = chain.mine()
        chain.mine(2)

        assert chain.mempool_txs() == []
        assert chain.height_of(tx.txid) == chain.block_by_hash(block_hash).height
        assert chain.confirmations(tx.txid) == 3

    def test_mined_parent_leaves_its_pending_child_in_the_mempool(self) -> None:
        chain = SimulatedChain()
        parent = chain.pay(chain.new_address(), 500)
        child = chain.pay(chain.new_address(), 100, spend=[parent.outpoint(1)])

        chain.mine(leave=[child.txid])

        assert chain.height_of(parent.txid) == chain.tip.height
        assert [tx.txid for tx in chain.mempool_txs()] == [child.txid]

    def test_private_double_spend_evicts_the_pending_payment_and_descendants(self) -> None:
        chain = SimulatedChain()
        payment = chain.pay(chain.new_address(), 500)
        child = chain.pay(chain.new_address(), 100, spend=[payment.outpoint(1)])
        double = chain.conflict(payment.txid, [Output(chain.new_address(), 500)])

        chain.mine(include=[double])

        assert chain.height_of(double.txid) == chain.tip.height
        assert not chain.in_mempool(payment.txid)
        assert not chain.in_mempool(child.txid)
        assert chain.height_of(payment.txid) is None

    def test_leave_keeps_a_tx_and_its_descendants_pending(self) -> None:
        chain = SimulatedChain()
        parent = chain.pay(chain.new_address(), 500)
        child = chain.pay(chain.new_address(), 100, spend=[parent.outpoint(1)])
        other = chain.pay(chain.new_address(), 700)

        chain.mine(leave=[parent.txid])

        assert chain.height_of(other.txid) == chain.tip.height
        assert [tx.txid for tx in chain.mempool_txs()] == [parent.txid, child.txid]

    def test_block_times_follow_the_simulated_clock(self) -> None:
        chain = SimulatedChain()
        start = chain.clock.now()
        chain.mine(3)

        tip = chain.block_at(chain.tip.height)
        assert tip is not None
        assert tip.time == int((start + 3 * chain.block_interval).timestamp())


class TestReorg:
    def test_reorg_returns_dropped_txs_to_the_mempool_and_remines_the_rest(self) -> None:
        chain = SimulatedChain()
        chain.mine(3)
        kept, dropped = chain.pay(chain.new_address(), 1), chain.pay(chain.new_address(), 2)
        chain.mine(2)  # heights 4 (both payments) and 5
        old = {h: chain.block_at(h) for h in range(6)}

        new = chain.reorg(2, drop=[dropped.txid])

        assert chain.tip.height == 6
        assert [chain.block_at(h) for h in range(4)] == [old[h] for h in range(4)]
        assert all(chain.block_at(h) != old[h] for h in (4, 5))
        assert [b.hash for h in (4, 5, 6) if (b := chain.block_at(h)) is not None] == new
        assert chain.height_of(kept.txid) == 4
        assert chain.in_mempool(dropped.txid)
        assert chain.reorgs == 1

    def test_reorg_with_a_double_spend_leaves_the_payment_nowhere(self) -> None:
        chain = SimulatedChain()
        payment = chain.pay(chain.new_address(), 500)
        chain.mine(3)
        double = chain.conflict(payment.txid, [Output(chain.new_address(), 500)])

        chain.reorg(3, drop=[payment.txid], include=[double])

        assert chain.height_of(payment.txid) is None
        assert not chain.in_mempool(payment.txid)
        assert chain.confirmations(double.txid) == 4

    def test_refused_reorg_leaves_chain_and_mempool_as_they_were(self) -> None:
        chain = SimulatedChain()
        parent = chain.pay(chain.new_address(), 500)
        child = chain.pay(chain.new_address(), 100, spend=[parent.outpoint(1)])
        chain.mine(2)
        pending = chain.pay(chain.new_address(), 300)
        before = [chain.block_at(h) for h in range(chain.tip.height + 1)]
        # The child's double spend needs the parent, which the new branch leaves out.
        double = chain.conflict(child.txid, [Output(chain.new_address(), 100)])

        with pytest.raises(ValidationError, match="unknown outpoint"):
            chain.reorg(2, drop=[parent.txid], include=[double])

        assert [chain.block_at(h) for h in range(chain.tip.height + 1)] == before
        assert [tx.txid for tx in chain.mempool_txs()] == [pending.txid]
        assert chain.height_of(child.txid) == chain.tip.height - 1
        assert chain.reorgs == 0

    def test_reorg_cannot_replace_genesis_or_shorten_the_chain(self) -> None:
        chain = SimulatedChain()
        chain.mine(2)

        with pytest.raises(ValidationError, match="depth"):
            chain.reorg(3)
        with pytest.raises(ValidationError, match="longer"):
            chain.reorg(2, length=2)


class TestClient:
    def test_block_reports_only_watched_transfers_and_every_conflict_key(self) -> None:
        chain = SimulatedChain()
        client = SimulatedChainClient(chain)
        watched, other = chain.new_address(), chain.new_address()
        paid = chain.pay(watched, 500)
        unseen = chain.pay(other, 600)
        chain.mine()
        before_watch = client.block(chain.tip.height)

        client.watch([watched])
        block = client.block(chain.tip.height)

        assert before_watch is not None
        assert before_watch.transactions == ()
        assert block is not None
        assert [(t.key, t.units) for tx in block.transactions for t in tx.transfers] == [
            (paid.outpoint(0), 500)
        ]
        assert block.spent == {paid.inputs[0]: paid.txid, unseen.inputs[0]: unseen.txid}
        assert {paid.txid, unseen.txid} < block.txids

    def test_timeouts_are_seeded_and_move_the_simulated_clock(self) -> None:
        def outcomes(seed: int) -> list[bool]:
            chain = SimulatedChain(seed=seed)
            client = SimulatedChainClient(chain, faults=Faults(timeout=0.5), seed=1)
            results = []
            for _ in range(40):
                try:
                    client.tip()
                    results.append(True)
                except UnavailableError:
                    results.append(False)
            return results

        first = outcomes(3)
        assert first == outcomes(3)
        assert True in first
        assert False in first

    def test_timeout_advances_the_clock_by_its_length(self) -> None:
        chain = SimulatedChain()
        client = SimulatedChainClient(chain, faults=Faults(timeout=1.0, timeout_seconds=30))
        start = chain.clock.now()

        with pytest.raises(UnavailableError, match="did not answer tip"):
            client.tip()
        assert (chain.clock.now() - start).total_seconds() == 30

    def test_reorg_fault_changes_the_chain_between_two_calls(self) -> None:
        chain = SimulatedChain()
        chain.mine(5)
        client = SimulatedChainClient(chain, faults=Faults(reorg=1.0, reorg_depth=2))
        before = chain.tip

        after = client.tip()

        assert after.height > before.height
        assert chain.block_at(before.height) != chain.block_by_hash(before.hash)
        assert chain.reorgs == 1

    def test_notifications_are_lost_repeated_and_reordered_by_seed(self) -> None:
        chain = SimulatedChain(seed=11)
        faults = Faults(drop=0.2, duplicate=0.2, delay=0.2)
        client = SimulatedChainClient(chain, faults=faults, seed=2)
        exact = SimulatedChainClient(chain)
        chain.mine(60)
        client.flush()

        heard = [e.height or 0 for e in client.notifications()]
        sent = [e.height or 0 for e in exact.notifications()]

        assert sent == list(range(1, 61))
        assert set(heard) < set(sent), "some are lost"
        assert len(heard) > len(set(heard)), "some come twice"
        assert heard != sorted(heard), "some come late"

    def test_notifications_name_blocks_and_transactions(self) -> None:
        chain = SimulatedChain()
        client = SimulatedChainClient(chain)
        tx = chain.pay(chain.new_address(), 5)
        [block_hash] = chain.mine()

        assert client.notifications() == [
            ChainEvent("tx", tx.txid), ChainEvent("block", block_hash, 1)
        ]
        assert client.notifications() == []

    def test_finalized_height_follows_the_configured_depth(self) -> None:
        chain = SimulatedChain()
        chain.mine(10)

        assert SimulatedChainClient(chain).finalized_height() is None
        assert SimulatedChainClient(chain, finality_depth=4).finalized_height() == 6
