"""``/api/v1/wallets``: balances, transactions, statements, transfers and who sees what."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from dpgnode.domain.ledger import AccountRef, EntryDraft, Posting
from tests.unit.api.conftest import Api

BASE = "/api/v1/wallets"


def open_wallet(api: Api, owner: str, asset: str, who: str = "admin",
                owner_type: str = "store") -> dict[str, Any]:
    response = api.client.post(
        BASE, json={"ownerType": owner_type, "ownerId": owner, "asset": asset},
        headers=api.auth(who),
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def deposit(api: Api, owner: str, asset: str, units: int, key: str,
            owner_type: str = "store") -> None:
    world = AccountRef.parse(f"operator:op:{asset}:world")
    target = AccountRef.parse(f"{owner_type}:{owner}:{asset}:available")
    api.node.ledger.post(EntryDraft(key, (Posting(world, -units), Posting(target, units))))


class TestOpenAndList:
    def test_open_is_idempotent_by_owner_and_asset_when_repeated(self, api: Api) -> None:
        first = api.client.post(BASE, json={"ownerType": "store", "ownerId": api.store_a,
                                            "asset": "EUR"}, headers=api.auth("admin"))
        again = api.client.post(BASE, json={"ownerType": "store", "ownerId": api.store_a,
                                            "asset": "EUR", "label": "other"},
                                headers=api.auth("admin"))
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert first.json()["id"].startswith("wal_")

    def test_multi_currency_owner_has_one_wallet_per_asset_when_listed(self, api: Api) -> None:
        for asset in ("USD", "EUR", "GBP", "BTC", "ETH"):
            open_wallet(api, api.store_a, asset)
        listed = api.client.get(f"{BASE}?ownerId={api.store_a}", headers=api.auth("admin"))
        assert [w["asset"] for w in listed.json()] == ["USD", "EUR", "GBP", "BTC", "ETH"]

    def test_list_pages_at_most_100_wallets_when_there_are_more(self, api: Api) -> None:
        assets = ("USD", "EUR", "GBP", "BTC", "ETH")
        for asset in assets:
            open_wallet(api, api.store_a, asset)
        pages = [
            api.client.get(f"{BASE}?limit=2&offset={offset}", headers=api.auth("admin"))
            for offset in (0, 2, 4)
        ]
        assert [[w["asset"] for w in page.json()] for page in pages] == [
            ["USD", "EUR"], ["GBP", "BTC"], ["ETH"]
        ]
        for query in ("limit=101", "limit=0", "offset=-1"):
            refused = api.client.get(f"{BASE}?{query}", headers=api.auth("admin"))
            assert refused.status_code == 400, query

    def test_store_key_lists_only_its_own_wallets(self, api: Api) -> None:
        mine = open_wallet(api, api.store_a, "USD")
        open_wallet(api, api.store_b, "USD")
        open_wallet(api, "u1", "USD", owner_type="user")
        listed = api.client.get(BASE, headers=api.auth("store_a")).json()
        assert [w["id"] for w in listed] == [mine["id"]]
        assert len(api.client.get(BASE, headers=api.auth("readonly")).json()) == 3

    def test_store_key_cannot_open_another_stores_wallet(self, api: Api) -> None:
        response = api.client.post(
            BASE, json={"ownerType": "store", "ownerId": api.store_b, "asset": "USD"},
            headers=api.auth("store_a"),
        )
        assert response.status_code == 404

    @pytest.mark.parametrize(
        "body",
        [
            {"ownerType": "store", "ownerId": "st_x", "asset": "NOPE"},
            {"ownerType": "store", "ownerId": "bad id!", "asset": "USD"},
            {"ownerType": "alien", "ownerId": "st_x", "asset": "USD"},
            {"ownerType": "store", "ownerId": "st_x", "asset": "USD", "balance": "1"},
        ],
        ids=["unknown-asset", "bad-owner", "bad-type", "extra-field"],
    )
    def test_bad_open_requests_are_refused_when_sent(self, api: Api, body: dict[str, str]) -> None:
        response = api.client.post(BASE, json=body, headers=api.auth("admin"))
        assert response.status_code in (400, 404, 422)
        assert api.client.get(BASE, headers=api.auth("admin")).json() == []


class TestBalanceAndHistory:
    def test_balance_shows_available_and_held_when_part_is_on_hold(self, api: Api) -> None:
        wallet = open_wallet(api, api.store_a, "BTC")
        deposit(api, api.store_a, "BTC", 150_000_000, "d1")
        ref = AccountRef.parse(f"store:{api.store_a}:BTC:available")
        api.node.ledger.reserve(ref, 50_000_000, "hold-1")
        body = api.client.get(f"{BASE}/{wallet['id']}/balance", headers=api.auth("store_a"))
        assert body.json() == {"walletId": wallet["id"], "asset": "BTC",
                               "available": "1.00000000", "held": "0.50000000",
                               "total": "1.50000000"}

    def test_empty_wallet_has_zero_balance_when_nothing_was_posted(self, api: Api) -> None:
        wallet = open_wallet(api, api.store_a, "JPY")
        body = api.client.get(f"{BASE}/{wallet['id']}/balance", headers=api.auth("admin"))
        assert body.json()["available"] == "0"

    def test_transactions_page_newest_first_when_there_are_many(self, api: Api) -> None:
        wallet = open_wallet(api, api.store_a, "USD")
        for i in range(5):
            deposit(api, api.store_a, "USD", 100 + i, f"d{i}")
        url = f"{BASE}/{wallet['id']}/transactions?limit=2"
        first = api.client.get(url, headers=api.auth("store_a")).json()
        assert [t["amount"] for t in first["data"]] == ["1.04", "1.03"]
        second = api.client.get(f"{url}&before={first['next']}", headers=api.auth("admin"))
        assert [t["amount"] for t in second.json()["data"]] == ["1.02", "1.01"]
        last = api.client.get(f"{url}&before={second.json()['next']}", headers=api.auth("admin"))
        assert ([t["amount"] for t in last.json()["data"]], last.json()["next"]) == (["1.00"], None)

    def test_transactions_filter_by_kind_and_keep_entries_whole(self, api: Api) -> None:
        wallet = open_wallet(api, api.store_a, "USD")
        deposit(api, api.store_a, "USD", 1000, "d")
        api.node.ledger.reserve(AccountRef.parse(f"store:{api.store_a}:USD:available"), 300, "h")
        url = f"{BASE}/{wallet['id']}/transactions?kind=hold&limit=1"
        body = api.client.get(url, headers=api.auth("admin")).json()
        assert sorted((t["account"], t["amount"]) for t in body["data"]) == [
            ("available", "-3.00"), ("held", "3.00")]
        held_only = api.client.get(f"{BASE}/{wallet['id']}/transactions?account=held",
                                   headers=api.auth("admin")).json()
        assert [t["account"] for t in held_only["data"]] == ["held"]

    @pytest.mark.parametrize(
        "query", ["limit=101", "limit=0", "kind=bogus", "before=abc", "from=-1", "account=world"]
    )
    def test_bad_queries_are_refused_when_sent(self, api: Api, query: str) -> None:
        wallet = open_wallet(api, api.store_a, "USD")
        response = api.client.get(f"{BASE}/{wallet['id']}/transactions?{query}",
                                  headers=api.auth("admin"))
        assert response.status_code in (400, 422)

    def test_statement_has_running_balance_as_json_and_csv(self, api: Api) -> None:
        wallet = open_wallet(api, api.store_a, "EUR")
        deposit(api, api.store_a, "EUR", 1000, "d1")
        deposit(api, api.store_a, "EUR", 250, "d2")
        url = f"{BASE}/{wallet['id']}/statement"
        body = api.client.get(url, headers=api.auth("admin")).json()
        assert (body["openingBalance"], body["closingBalance"]) == ("0.00", "12.50")
        assert [line["balance"] for line in body["lines"]] == ["10.00", "12.50"]
        response = api.client.get(f"{url}?format=csv", headers=api.auth("admin"))
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0][-2:] == ["amount", "balance"]
        assert [r[-1] for r in rows[1:]] == ["10.00", "12.50"]


class TestTransfer:
    def transfer(self, api: Api, source: str, body: dict[str, Any], who: str = "admin",
                 key: str | None = "t1") -> Any:
        headers = api.auth(who, **({"Idempotency-Key": key} if key else {}))
        return api.client.post(f"{BASE}/{source}/transfer", json=body, headers=headers)

    def test_transfer_posts_one_entry_exactly_once_when_retried(self, api: Api) -> None:
        a = open_wallet(api, api.store_a, "USD")
        b = open_wallet(api, api.store_b, "USD")
        deposit(api, api.store_a, "USD", 10_000, "d")
        body = {"toWalletId": b["id"], "amount": "12.34", "memo": "rent"}
        first = self.transfer(api, a["id"], body, who="store_a")
        again = self.transfer(api, a["id"], body, who="store_a")
        assert first.status_code == 201
        assert again.content == first.content
        balance = api.client.get(f"{BASE}/{b['id']}/balance", headers=api.auth("admin"))
        assert balance.json()["available"] == "12.34"
        assert api.node.verify_ledger().ok

    def test_key_in_the_body_is_enough_when_no_header_is_sent(self, api: Api) -> None:
        a = open_wallet(api, api.store_a, "USD")
        b = open_wallet(api, api.store_b, "USD")
        deposit(api, api.store_a, "USD", 10_000, "d")
        body = {"toWalletId": b["id"], "amount": "1", "idempotencyKey": "body-key"}
        assert self.transfer(api, a["id"], body, key=None).status_code == 201
        assert self.transfer(api, a["id"], body, key=None).status_code == 200

    def test_transfer_without_a_key_is_refused(self, api: Api) -> None:
        a = open_wallet(api, api.store_a, "USD")
        b = open_wallet(api, api.store_b, "USD")
        response = self.transfer(api, a["id"], {"toWalletId": b["id"], "amount": "1"}, key=None)
        assert response.status_code == 422

    def test_overdraw_is_refused_and_moves_nothing(self, api: Api) -> None:
        a = open_wallet(api, api.store_a, "USD")
        b = open_wallet(api, api.store_b, "USD")
        deposit(api, api.store_a, "USD", 100, "d")
        response = self.transfer(api, a["id"], {"toWalletId": b["id"], "amount": "1.01"})
        assert (response.status_code, response.json()["code"]) == (422, "insufficient_funds")

    @pytest.mark.parametrize(
        ("target", "amount", "status"),
        [("other-asset", "1", 422), ("self", "1", 422), ("missing", "1", 404),
         ("ok", "0", 422), ("ok", "-1", 422), ("ok", "0.001", 422), ("ok", "1e3", 422)],
    )
    def test_bad_transfers_are_refused(self, api: Api, target: str, amount: str,
                                       status: int) -> None:
        a = open_wallet(api, api.store_a, "USD")
        targets = {
            "other-asset": open_wallet(api, api.store_b, "EUR")["id"], "self": a["id"],
            "missing": "wal_missing", "ok": open_wallet(api, api.store_b, "USD")["id"],
        }
        deposit(api, api.store_a, "USD", 100, "d")
        response = self.transfer(api, a["id"], {"toWalletId": targets[target], "amount": amount})
        assert response.status_code == status, response.text

    def test_store_key_cannot_move_another_stores_money(self, api: Api) -> None:
        a = open_wallet(api, api.store_a, "USD")
        b = open_wallet(api, api.store_b, "USD")
        deposit(api, api.store_b, "USD", 100, "d")
        response = self.transfer(api, b["id"], {"toWalletId": a["id"], "amount": "1"},
                                 who="store_a")
        assert response.status_code == 404

    def test_readonly_key_cannot_transfer(self, api: Api) -> None:
        a = open_wallet(api, api.store_a, "USD")
        b = open_wallet(api, api.store_b, "USD")
        response = self.transfer(api, a["id"], {"toWalletId": b["id"], "amount": "1"},
                                 who="readonly")
        assert response.status_code == 403  # it may view every wallet, so no secret to keep
