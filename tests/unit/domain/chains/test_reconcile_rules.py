"""Reconciliation rules (pure): settled height, the ledger's view, comparison, fingerprints."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.chains.payments import ConfirmationPolicy
from dpgnode.domain.chains.reconcile import (
    Difference,
    DifferenceKind,
    LedgerCredit,
    OwnMovement,
    compare,
    fingerprint,
    ledger_view,
    settled_height,
)

A, B = "bc1qaaa", "bc1qbbb"


def credit(address: str, units: int, *, height: int = 5, posted: int | None = None,
           key: str = "t:0") -> LedgerCredit:
    return LedgerCredit("BTC", address, key, height, units,
                        units if posted is None else posted)


class TestSettledHeight:
    def test_settled_height_is_the_deepest_credited_block_when_depth_counts(self) -> None:
        policy = ConfirmationPolicy(confirmations=3, reorg_limit=6)
        assert settled_height(policy, 10, None) == 8

    def test_settled_height_is_none_when_no_block_reached_the_policy(self) -> None:
        assert settled_height(ConfirmationPolicy(6, 6), 4, None) is None

    def test_settled_height_follows_finality_when_the_policy_uses_it(self) -> None:
        policy = ConfirmationPolicy(1, 64, finalized=True)
        assert settled_height(policy, 100, 68) == 68
        assert settled_height(policy, 60, 68) == 60  # the watcher is behind the mark
        assert settled_height(policy, 100, None) is None


class TestLedgerView:
    def test_ledger_view_sums_posted_credits_per_address_when_entries_are_live(self) -> None:
        view = ledger_view([credit(A, 100, key="1:0"), credit(A, 50, key="2:0"),
                            credit(B, 7)], [], settled=5)
        assert view.balances == {("BTC", A): 150, ("BTC", B): 7}
        assert view.unsettled == set()
        assert view.record_differences == []

    def test_missing_or_other_entry_is_a_record_difference_when_the_journal_disagrees(
        self,
    ) -> None:
        view = ledger_view([LedgerCredit("BTC", A, "1:0", 5, 100, None),
                            LedgerCredit("BTC", B, "2:0", 5, 40, 39)], [], settled=5)
        kinds = {(d.address, d.kind, d.ledger, d.chain) for d in view.record_differences}
        assert kinds == {(A, DifferenceKind.LEDGER_RECORD, 0, 100),
                         (B, DifferenceKind.LEDGER_RECORD, 39, 40)}
        assert view.balances == {("BTC", A): 0, ("BTC", B): 39}

    def test_settled_movements_count_and_others_leave_the_holding_out(self) -> None:
        moves = [OwnMovement(A, "BTC", -30, "p1", height=4),
                 OwnMovement(B, "BTC", -7, "p2", height=None),
                 OwnMovement(B, "BTC", -1, "p3", height=9)]
        view = ledger_view([credit(A, 100, key="1:0"), credit(B, 7, key="2:0")], moves,
                           settled=5)
        assert view.balances[("BTC", A)] == 70
        assert view.unsettled == {("BTC", B)}

    def test_credit_above_the_settled_height_is_unsettled_when_the_watcher_moved_on(
        self,
    ) -> None:
        view = ledger_view([credit(A, 100, height=6)], [], settled=5)
        assert view.unsettled == {("BTC", A)}
        assert ("BTC", A) not in view.balances

    def test_confirming_holdings_are_unsettled_when_given(self) -> None:
        view = ledger_view([], [], settled=5, confirming=[("BTC", A)])
        assert view.unsettled == {("BTC", A)}


class TestCompare:
    def test_equal_views_match_with_totals_when_nothing_differs(self) -> None:
        view = ledger_view([credit(A, 100, key="1:0"), credit(B, 5, key="2:0")], [], 5)
        differences, totals = compare([("BTC", A), ("BTC", B)], view,
                                      {("BTC", A): 100, ("BTC", B): 5})
        assert differences == []
        assert [(t.asset, t.ledger, t.chain, t.addresses, t.unsettled) for t in totals] == [
            ("BTC", 105, 105, 2, 0)]

    def test_each_disagreeing_holding_is_reported_when_the_chain_differs(self) -> None:
        view = ledger_view([credit(A, 100, key="1:0")], [], 5)
        differences, totals = compare([("BTC", A), ("BTC", B)], view, {("BTC", B): 9})
        assert differences == [Difference("BTC", A, 100, 0), Difference("BTC", B, 0, 9)]
        assert [d.delta for d in differences] == [-100, 9]
        assert totals[0].delta == -91

    def test_unsettled_holdings_are_counted_apart_when_compared(self) -> None:
        view = ledger_view([credit(A, 100)], [OwnMovement(A, "BTC", -100, "p", None)], 5)
        differences, totals = compare([("BTC", A)], view, {})
        assert differences == []
        assert (totals[0].addresses, totals[0].unsettled) == (0, 1)


@given(st.lists(st.tuples(st.sampled_from([A, B, "bc1qccc"]),
                          st.integers(min_value=1, max_value=10**30)), max_size=12))
def test_views_built_from_the_same_credits_always_match(rows: list[tuple[str, int]]) -> None:
    credits = [credit(address, units, key=f"{i}:0") for i, (address, units) in enumerate(rows)]
    view = ledger_view(credits, [], settled=5)
    chain = dict(view.balances)
    differences, totals = compare(list(chain), view, chain)
    assert differences == []
    assert sum(t.ledger for t in totals) == sum(units for _, units in rows)


def test_fingerprint_is_stable_and_sensitive_when_differences_change() -> None:
    one = [Difference("BTC", A, 100, 0), Difference("BTC", B, 0, 9)]
    assert fingerprint(one) == fingerprint(list(reversed(one)))
    assert fingerprint(one) != fingerprint([Difference("BTC", A, 100, 1), one[1]])
