"""Own transactions on chain: mined, contested, final, lost; fees and sweep amounts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.chains.blocks import BlockRef, ChainBlock
from dpgnode.domain.chains.outgoing import (
    OnChain,
    Standing,
    bitcoin_fee,
    evm_fee,
    fee_draft,
    gas_top_up,
    is_final,
    native_sweep_units,
    network_fee_account,
    observe,
    rolled_back,
    spends_lost_output,
    standing,
)
from dpgnode.domain.ledger import ensure_balanced
from dpgnode.errors import ValidationError

OURS = "aa" * 32
OTHER = "bb" * 32
INPUT = "11" * 32 + ":0"


def block(height: int, *, txids: frozenset[str] = frozenset(),
          spent: dict[str, str] | None = None) -> ChainBlock:
    return ChainBlock(height, f"{height:064x}", f"{height - 1:064x}", 0,
                      spent=spent or {}, txids=txids)


class TestObserve:
    def test_transaction_is_mined_when_its_txid_is_in_the_block(self) -> None:
        state = observe(OnChain(OURS, (INPUT,)), block(7, txids=frozenset({OURS})))
        assert state.block == BlockRef(7, f"{7:064x}")

    def test_conflict_is_recorded_when_another_transaction_spends_its_input(self) -> None:
        state = observe(OnChain(OURS, (INPUT,)), block(7, spent={INPUT: OTHER}))
        assert (state.block, state.conflict_txid, state.conflict_height) == (None, OTHER, 7)

    def test_its_own_spend_is_no_conflict_when_it_is_mined(self) -> None:
        state = observe(OnChain(OURS, (INPUT,)),
                        block(7, txids=frozenset({OURS}), spent={INPUT: OURS}))
        assert state.block is not None
        assert state.conflict_txid is None

    def test_unrelated_block_changes_nothing(self) -> None:
        before = OnChain(OURS, (INPUT,))
        assert observe(before, block(7, txids=frozenset({OTHER}))) == before

    def test_mined_transaction_stays_mined_when_later_blocks_come(self) -> None:
        mined = observe(OnChain(OURS, (INPUT,)), block(7, txids=frozenset({OURS})))
        assert observe(mined, block(8, spent={INPUT: OTHER})) == mined


class TestRollback:
    def test_block_above_the_fork_is_forgotten_when_rolled_back(self) -> None:
        mined = OnChain(OURS, (INPUT,), block=BlockRef(7, "x"))
        assert rolled_back(mined, 6).block is None
        assert rolled_back(mined, 7) == mined

    def test_conflict_above_the_fork_is_forgotten_when_rolled_back(self) -> None:
        contested = OnChain(OURS, (INPUT,), conflict_txid=OTHER, conflict_height=7)
        assert rolled_back(contested, 6).conflict_txid is None
        assert rolled_back(contested, 7) == contested


class TestFinality:
    @pytest.mark.parametrize(("tip", "final"), [(106, False), (107, True), (150, True)])
    def test_block_is_final_when_more_than_the_reorg_limit_is_built_on_it(
        self, tip: int, final: bool
    ) -> None:
        # Block 101 under tip 106 has 6 confirmations: a reorg of depth 6 (the limit, which
        # the watcher still undoes) could drop it; at 7 it takes a deeper one, an incident.
        assert is_final(101, tip, None, reorg_limit=6) is final

    def test_block_is_final_when_the_chain_finalized_it(self) -> None:
        assert is_final(101, 102, finalized_height=101, reorg_limit=64)
        assert not is_final(102, 102, finalized_height=101, reorg_limit=64)

    def test_standing_follows_block_and_conflict_depth(self) -> None:
        mined = OnChain(OURS, block=BlockRef(100, "x"))
        contested = OnChain(OURS, conflict_txid=OTHER, conflict_height=100)
        assert standing(mined, 101, None, 6) is Standing.MINED
        assert standing(mined, 106, None, 6) is Standing.CONFIRMED
        assert standing(contested, 101, None, 6) is Standing.CONTESTED
        assert standing(contested, 106, None, 6) is Standing.LOST
        assert standing(OnChain(OURS), 500, None, 6) is Standing.UNMINED

    def test_child_of_a_lost_transaction_is_found_by_its_input(self) -> None:
        child = OnChain("cc" * 32, (f"{OURS}:1",))
        assert spends_lost_output(child, {OURS}) == OURS
        assert spends_lost_output(child, {OTHER}) is None
        evm = OnChain("cc" * 32, ("0x" + "ab" * 20 + ":4",))
        assert spends_lost_output(evm, {OURS}) is None


class TestFees:
    def test_bitcoin_fee_is_inputs_minus_outputs(self) -> None:
        assert bitcoin_fee([50_000, 30_000], [60_000, 19_000]) == 1_000

    def test_bitcoin_fee_refuses_outputs_above_inputs(self) -> None:
        with pytest.raises(ValidationError):
            bitcoin_fee([1_000], [1_001])

    def test_evm_fee_is_gas_used_times_effective_price(self) -> None:
        assert evm_fee(21_000, 3_000_000_007) == 63_000_000_147_000

    @pytest.mark.parametrize(("gas", "price"), [(0, 1), (-1, 1), (21_000, -1)])
    def test_evm_fee_refuses_impossible_receipts(self, gas: int, price: int) -> None:
        with pytest.raises(ValidationError):
            evm_fee(gas, price)

    def test_fee_entry_moves_the_fee_from_the_expense_account_to_the_world(self) -> None:
        draft = fee_draft("payout-fee:po_1", "ETH", 10**15, "fee", {"payout": "po_1"})
        assert draft is not None
        ensure_balanced(draft.postings)
        by_account = {p.account.code: p.units for p in draft.postings}
        assert by_account == {"operator:network_fees:ETH:fees": -10**15,
                              "operator:chain:ETH:world": 10**15}
        assert network_fee_account("ETH").code == "operator:network_fees:ETH:fees"

    def test_zero_fee_books_nothing(self) -> None:
        assert fee_draft("k", "BTC", 0, "fee", {}) is None

    @given(st.integers(0, 10**30), st.integers(1, 10**7), st.integers(1, 10**13))
    def test_native_sweep_never_spends_more_than_balance_minus_gas(
        self, balance: int, gas: int, max_fee: int
    ) -> None:
        units = native_sweep_units(balance, gas, max_fee)
        assert 0 <= units <= balance
        if units:
            assert units + gas * max_fee == balance

    @given(st.integers(0, 10**20), st.integers(1, 10**6), st.integers(1, 10**12))
    def test_top_up_leaves_exactly_enough_gas_when_sent(
        self, balance: int, gas: int, max_fee: int
    ) -> None:
        top_up = gas_top_up(balance, gas, max_fee)
        assert balance + top_up >= gas * max_fee
        assert top_up == 0 or balance + top_up == gas * max_fee
