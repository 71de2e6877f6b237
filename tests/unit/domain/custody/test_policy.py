"""Spend policy (R21, R23): every rule has a refusing and an allowing test, and names itself."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.custody.policy import (
    AssetPolicy,
    Decision,
    PolicyRule,
    SpendHistory,
    SpendPolicy,
    SpendRequest,
    distinct_approvers,
    evaluate,
    evaluate_for_signing,
)
from dpgnode.errors import PolicyDeniedError, ValidationError

DEST = "bcrt1qg0ysquke4sx024d4pvhe7wjn0jmsqxkrnhefxc"
OTHER = "bcrt1q7vjcrfq0nhw6vq6j8u59ux6weh0vfy0mv85gh5"


def policy(**overrides: object) -> AssetPolicy:
    fields: dict[str, object] = {"asset": "BTC", "allowed_destinations": frozenset({DEST})}
    fields.update(overrides)
    return AssetPolicy(**fields)  # type: ignore[arg-type]


def request(units: int = 100, destination: str = DEST, asset: str = "BTC") -> SpendRequest:
    return SpendRequest(asset, units, destination)


NO_HISTORY = SpendHistory()


class TestAssetEnabled:
    def test_refuses_when_the_asset_has_no_policy(self) -> None:
        decision = evaluate(SpendPolicy().for_asset("BTC"), request(), NO_HISTORY)
        assert (decision.allowed, decision.rule) == (False, PolicyRule.ASSET_NOT_ENABLED)

    def test_refuses_when_the_policy_is_for_another_asset(self) -> None:
        decision = evaluate(policy(asset="ETH"), request(), NO_HISTORY)
        assert decision.rule is PolicyRule.ASSET_NOT_ENABLED

    def test_allows_when_the_asset_has_a_policy(self) -> None:
        spend = SpendPolicy({"BTC": policy()})
        assert evaluate(spend.for_asset("BTC"), request(), NO_HISTORY).allowed


class TestAllowList:
    def test_refuses_when_the_destination_is_not_listed(self) -> None:
        decision = evaluate(policy(), request(destination=OTHER), NO_HISTORY)
        assert decision.rule is PolicyRule.DESTINATION_NOT_ALLOWED

    def test_allows_when_the_destination_is_listed(self) -> None:
        assert evaluate(policy(), request(destination=DEST), NO_HISTORY).allowed

    def test_allows_any_destination_when_the_list_is_not_required(self) -> None:
        relaxed = policy(require_allowlist=False, allowed_destinations=frozenset())
        assert evaluate(relaxed, request(destination=OTHER), NO_HISTORY).allowed

    def test_refuses_everything_when_the_required_list_is_empty(self) -> None:
        empty = policy(allowed_destinations=frozenset())
        assert evaluate(empty, request(), NO_HISTORY).rule is PolicyRule.DESTINATION_NOT_ALLOWED


class TestPerTransactionLimit:
    def test_refuses_when_the_amount_is_one_unit_over(self) -> None:
        decision = evaluate(policy(max_per_transaction=1000), request(1001), NO_HISTORY)
        assert decision.rule is PolicyRule.PER_TRANSACTION_LIMIT

    def test_allows_when_the_amount_equals_the_limit(self) -> None:
        assert evaluate(policy(max_per_transaction=1000), request(1000), NO_HISTORY).allowed


class TestDailyLimit:
    def test_refuses_when_the_day_would_go_one_unit_over(self) -> None:
        decision = evaluate(policy(max_per_day=1000), request(301), SpendHistory(700, 0))
        assert decision.rule is PolicyRule.DAILY_LIMIT

    def test_allows_when_the_day_reaches_the_limit_exactly(self) -> None:
        assert evaluate(policy(max_per_day=1000), request(300), SpendHistory(700, 0)).allowed

    def test_counts_big_amounts_exactly_when_they_exceed_64_bits(self) -> None:
        limit = 10**30
        assert evaluate(policy(max_per_day=limit), request(1), SpendHistory(limit - 1)).allowed
        refused = evaluate(policy(max_per_day=limit), request(2), SpendHistory(limit - 1))
        assert refused.rule is PolicyRule.DAILY_LIMIT


class TestVelocityLimit:
    def test_refuses_when_the_hour_already_holds_the_maximum(self) -> None:
        decision = evaluate(policy(max_payouts_per_hour=3), request(), SpendHistory(0, 3))
        assert decision.rule is PolicyRule.VELOCITY_LIMIT

    def test_allows_the_last_payout_the_hour_permits(self) -> None:
        assert evaluate(policy(max_payouts_per_hour=3), request(), SpendHistory(0, 2)).allowed


class TestApprovals:
    def test_needs_no_approval_below_the_threshold(self) -> None:
        decision = evaluate(policy(approval_threshold=500, approvals_required=2), request(499),
                            NO_HISTORY)
        assert (decision.allowed, decision.approvals_required) == (True, 0)

    def test_needs_n_approvals_at_the_threshold(self) -> None:
        decision = evaluate(policy(approval_threshold=500, approvals_required=2), request(500),
                            NO_HISTORY)
        assert decision.approvals_required == 2

    def test_threshold_zero_means_every_payout_needs_approval(self) -> None:
        assert policy(approval_threshold=0).approvals_needed(1) == 1

    def test_signing_is_refused_when_approvals_are_missing(self) -> None:
        decision = evaluate_for_signing(
            policy(approval_threshold=0, approvals_required=2), request(), NO_HISTORY,
            frozenset({"op_a"}),
        )
        assert decision.rule is PolicyRule.APPROVALS_MISSING

    def test_signing_is_allowed_when_approvals_are_complete(self) -> None:
        decision = evaluate_for_signing(
            policy(approval_threshold=0, approvals_required=2), request(), NO_HISTORY,
            frozenset({"op_a", "op_b"}),
        )
        assert decision.allowed

    def test_signing_rechecks_limits_when_they_were_lowered(self) -> None:
        decision = evaluate_for_signing(
            policy(max_per_transaction=10), request(11), NO_HISTORY, frozenset({"op_a"})
        )
        assert decision.rule is PolicyRule.PER_TRANSACTION_LIMIT

    def test_requester_never_counts_when_approvers_are_counted(self) -> None:
        assert distinct_approvers(["op_r", "op_a", "op_a"], "op_r") == frozenset({"op_a"})


class TestPolicyValidation:
    @pytest.mark.parametrize(
        "field", ["max_per_transaction", "max_per_day", "approval_threshold"]
    )
    def test_refuses_negative_amounts_when_built(self, field: str) -> None:
        with pytest.raises(ValidationError):
            policy(**{field: -1})

    def test_refuses_zero_approvals_when_built(self) -> None:
        with pytest.raises(ValidationError):
            policy(approvals_required=0)

    def test_refuses_zero_velocity_when_built(self) -> None:
        with pytest.raises(ValidationError):
            policy(max_payouts_per_hour=0)


def test_refusal_raises_policy_denied_naming_the_rule_when_raised() -> None:
    decision = evaluate(policy(max_per_transaction=1), request(2), NO_HISTORY)
    with pytest.raises(PolicyDeniedError) as caught:
        decision.raise_if_denied("BTC")
    assert caught.value.details == {"rule": "per_transaction_limit", "asset": "BTC"}


def test_allowed_decision_raises_nothing_when_raised() -> None:
    Decision(True).raise_if_denied("BTC")


@given(
    units=st.integers(1, 10**30),
    spent=st.integers(0, 10**30),
    count=st.integers(0, 50),
    per_tx=st.none() | st.integers(0, 10**30),
    per_day=st.none() | st.integers(0, 10**30),
    per_hour=st.none() | st.integers(1, 50),
)
def test_decision_matches_every_limit_when_drawn_at_random(
    units: int, spent: int, count: int, per_tx: int | None, per_day: int | None,
    per_hour: int | None,
) -> None:
    rules = policy(max_per_transaction=per_tx, max_per_day=per_day, max_payouts_per_hour=per_hour)
    decision = evaluate(rules, request(units), SpendHistory(spent, count))
    within = (
        (per_tx is None or units <= per_tx)
        and (per_day is None or spent + units <= per_day)
        and (per_hour is None or count + 1 <= per_hour)
    )
    assert decision.allowed is within
    assert (decision.rule is None) is within
