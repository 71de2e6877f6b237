"""The admin routes the dashboard uses, on a seeded node: payouts with the policy that
applies, approvals as an operator (never the signing one), rejections, address gaps, the
event stream, halting and resuming pairs, the trades tape.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from dpgnode.api.app import create_app
from dpgnode.domain.custody.payout import PayoutStatus
from dpgnode.domain.ledger import AccountKind
from dpgnode.node import Node
from tests.support.dashboard import DEBIT, Seed, open_node, seed

P = "/api/v1"


class Admin:
    def __init__(self, client: TestClient[Any], node: Node, seeded: Seed) -> None:
        self.client, self.node, self.seed = client, node, seeded
        self.auth = {"Authorization": f"token {seeded.admin_key}"}

    def as_operator(self, name: str) -> dict[str, str]:
        return {**self.auth, "X-Operator-Token": self.seed.tokens[name]}

    def held(self) -> int:
        account = self.node.queries.account(DEBIT.sibling(AccountKind.HELD))
        return 0 if account is None else account.balance


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed(tmp_path_factory.mktemp("custody-api-seed"))


@pytest.fixture
def admin(seeded: Seed, tmp_path: Path) -> Iterator[Admin]:
    shutil.copytree(seeded.data_dir, tmp_path / "node")
    node = open_node(tmp_path / "node", next_id=seeded.next_id)
    try:
        with TestClient(create_app(node)) as client:
            yield Admin(client, node, seeded)
    finally:
        node.close()


class TestPayoutQueue:
    def test_queue_lists_pending_payouts_with_the_policy_that_applies_when_filtered(
        self, admin: Admin
    ) -> None:
        response = admin.client.get(f"{P}/custody/payouts?status=pending_approval",
                                    headers=admin.auth)
        assert response.status_code == 200
        found = {p["id"]: p for p in response.json()}
        assert set(found) == set(admin.seed.payouts.values())
        half = found[admin.seed.payouts["half"]]
        assert (half["amount"], half["requestedByName"], half["approvalsMissing"]) == (
            "0.25000000", "bob", 1)
        assert [a["operatorName"] for a in half["approvals"]] == ["carol"]
        assert half["policy"] == {
            "asset": "BTC", "maxPerTransaction": "2.00000000", "maxPerDay": "5.00000000",
            "maxPayoutsPerHour": 10, "approvalThreshold": "0.10000000",
            "approvalsRequired": 2, "requireAllowlist": True,
            "allowedDestinations": [half["destination"]], "destinationAllowed": True,
        }

    def test_unknown_payout_is_404_when_asked_for(self, admin: Admin) -> None:
        response = admin.client.get(f"{P}/custody/payouts/po_nope", headers=admin.auth)
        assert response.status_code == 404


class TestApprove:
    def test_approval_is_recorded_once_when_an_operator_approves_twice(
        self, admin: Admin
    ) -> None:
        big = admin.seed.payouts["big"]
        responses = [admin.client.post(f"{P}/custody/payouts/{big}/approve",
                                       headers=admin.as_operator("bob")) for _ in range(2)]
        assert [r.status_code for r in responses] == [200, 200]
        body = responses[-1].json()
        assert (body["status"], body["approvalsMissing"]) == ("pending_approval", 1)
        assert [a["operatorName"] for a in body["approvals"]] == ["bob"]

    def test_completing_approval_is_refused_and_nothing_recorded_when_it_would_sign(
        self, admin: Admin
    ) -> None:
        half = admin.seed.payouts["half"]
        held = admin.held()
        response = admin.client.post(f"{P}/custody/payouts/{half}/approve",
                                     headers=admin.as_operator("alice"))
        assert response.status_code == 409
        problem = response.json()
        assert problem["details"]["reason"] == "signing_required"
        assert f"dpg payout approve {half}" in problem["message"]
        assert len(admin.node.custody.payouts.approvals(half)) == 1
        assert admin.node.custody.payouts.payout(half).status is PayoutStatus.PENDING_APPROVAL
        assert admin.held() == held

    def test_requester_is_refused_with_the_rule_when_approving_their_own(
        self, admin: Admin
    ) -> None:
        big = admin.seed.payouts["big"]  # alice requested it
        response = admin.client.post(f"{P}/custody/payouts/{big}/approve",
                                     headers=admin.as_operator("alice"))
        assert response.status_code == 422
        assert response.json()["details"]["rule"] == "self_approval"
        assert admin.node.custody.payouts.approvals(big) == []

    @pytest.mark.parametrize("token", [None, "", "dpgop_not-a-token"],
                             ids=["missing", "empty", "unknown"])
    def test_approval_is_refused_with_401_when_the_operator_token_is_bad(
        self, admin: Admin, token: str | None
    ) -> None:
        headers = dict(admin.auth)
        if token is not None:
            headers["X-Operator-Token"] = token
        big = admin.seed.payouts["big"]
        response = admin.client.post(f"{P}/custody/payouts/{big}/approve", headers=headers)
        assert response.status_code == 401
        assert admin.node.custody.payouts.approvals(big) == []


class TestReject:
    def test_rejection_cancels_and_releases_the_hold_when_the_payout_awaits_approval(
        self, admin: Admin
    ) -> None:
        big = admin.seed.payouts["big"]
        held = admin.held()
        response = admin.client.post(f"{P}/custody/payouts/{big}/reject",
                                     json={"reason": "wrong address"},
                                     headers=admin.as_operator("carol"))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        assert admin.held() == held - 50_000_000
        audit = [r for r in admin.node.custody.audit.records(subject=big)
                 if r.action == "payout.cancelled"]
        assert [r.details.get("reason") for r in audit] == ["wrong address"]

    def test_second_rejection_is_409_when_the_payout_is_already_cancelled(
        self, admin: Admin
    ) -> None:
        big = admin.seed.payouts["big"]
        first = admin.client.post(f"{P}/custody/payouts/{big}/reject",
                                  headers=admin.as_operator("carol"))
        again = admin.client.post(f"{P}/custody/payouts/{big}/reject",
                                  headers=admin.as_operator("carol"))
        assert (first.status_code, again.status_code) == (200, 409)


def test_address_gaps_report_each_key_account_when_listed(admin: Admin) -> None:
    response = admin.client.get(f"{P}/custody/address-gaps", headers=admin.auth)
    assert response.status_code == 200
    [gap] = response.json()
    assert (gap["issued"], gap["used"], gap["lastUsedIndex"], gap["trailingUnused"],
            gap["gapLimitNeeded"], gap["alert"]) == (4, 1, 1, 2, 2, False)


class TestEvents:
    def test_pages_follow_on_without_gaps_or_repeats_when_read_with_next(
        self, admin: Admin
    ) -> None:
        seen: list[int] = []
        after = 0
        while True:
            page = admin.client.get(f"{P}/events?after={after}&limit=7",
                                    headers=admin.auth).json()
            seen += [e["seq"] for e in page["events"]]
            if not page["events"]:
                break
            after = page["next"]
        newest = admin.client.get(f"{P}/events/progress", headers=admin.auth).json()
        assert seen == list(range(1, newest["newestSeq"] + 1))

    def test_type_prefix_keeps_only_matching_events_when_filtered(self, admin: Admin) -> None:
        page = admin.client.get(f"{P}/events?type=custody.payout_",
                                headers=admin.auth).json()
        assert [e["type"] for e in page["events"]] == ["custody.payout_requested"] * 2
        assert page["events"][0]["data"]["asset"] == "BTC"

    def test_underscore_in_a_prefix_is_literal_when_filtering(self, admin: Admin) -> None:
        # LIKE treats _ as a wildcard: "custody_" must not match "custody."
        page = admin.client.get(f"{P}/events?type=custody_", headers=admin.auth).json()
        assert page["events"] == []

    def test_malformed_type_is_refused_with_400_naming_it_when_filtering(
        self, admin: Admin
    ) -> None:
        response = admin.client.get(f"{P}/events?type=DROP%20TABLE", headers=admin.auth)
        assert response.status_code == 400


class TestPairs:
    def test_pair_is_halted_then_resumed_and_the_book_refuses_orders_meanwhile(
        self, admin: Admin
    ) -> None:
        halted = admin.client.post(f"{P}/trading/pairs/BTC-USD/halt", headers=admin.auth)
        assert (halted.status_code, halted.json()["status"]) == (200, "halted")
        again = admin.client.post(f"{P}/trading/pairs/BTC-USD/halt", headers=admin.auth)
        assert again.json()["status"] == "halted"
        resumed = admin.client.post(f"{P}/trading/pairs/BTC-USD/resume", headers=admin.auth)
        assert resumed.json()["status"] == "open"
        types = [e["type"] for e in admin.client.get(
            f"{P}/events?type=trading.pair", headers=admin.auth).json()["events"]]
        assert types.count("trading.pair") == 5  # two opened, ETH halted, halt, resume

    def test_never_opened_pair_is_404_when_halted(self, admin: Admin) -> None:
        response = admin.client.post(f"{P}/trading/pairs/BTC-EUR/halt", headers=admin.auth)
        assert response.status_code == 404

    def test_tape_shows_trades_newest_first_without_users_when_read(
        self, admin: Admin
    ) -> None:
        tape = admin.client.get(f"{P}/trading/tape/BTC-USD", headers=admin.auth).json()
        assert [(t["price"], t["quantity"], t["takerSide"]) for t in tape] == [
            ("60100", "0.10000000", "buy"), ("60100", "0.30000000", "buy")]
        assert all(t.get("fee") is None and t.get("orderId") is None for t in tape)
