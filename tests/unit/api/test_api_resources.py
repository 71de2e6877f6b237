"""Stores, API keys and the ledger over HTTP: shapes, effects, replays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.unit.api.conftest import Api

STORES = "/api/v1/stores"
ENTRIES = "/api/v1/ledger/entries"
WORLD = "operator:op:ETH:world"
HOT = "operator:op:ETH:available"
STORE_KEYS = {
    "id", "name", "website", "defaultCurrency", "invoiceExpiration", "monitoringExpiration",
    "speedPolicy", "paymentTolerance", "archived",
}


def transfer(key: str, amount: str, source: str = WORLD, target: str = HOT,
             memo: str | None = None) -> dict[str, Any]:
    return {"idempotencyKey": key, "memo": memo, "postings": [
        {"account": source, "amount": f"-{amount}"}, {"account": target, "amount": amount}]}


class TestStores:
    def test_store_round_trips_in_greenfield_shape_when_created_and_fetched(
        self, api: Api
    ) -> None:
        created = api.client.post(
            STORES, json={"name": "Shop C", "speedPolicy": "LowSpeed", "defaultCurrency": "EUR"},
            headers=api.auth("admin"),
        )
        assert created.status_code == 200
        body = created.json()
        assert set(body) == STORE_KEYS
        assert body["speedPolicy"] == "LowSpeed"
        fetched = api.client.get(f"{STORES}/{body['id']}", headers=api.auth("admin"))
        assert fetched.json() == body

    def test_update_changes_only_sent_fields_when_others_are_absent_or_null(
        self, api: Api
    ) -> None:
        response = api.client.put(
            f"{STORES}/{api.store_a}", json={"website": "https://a.example", "name": None},
            headers=api.auth("store_a"),
        )
        assert response.status_code == 200
        assert response.json()["name"] == "Shop A"
        assert response.json()["website"] == "https://a.example"

    def test_unknown_currency_is_refused_with_422_naming_it_when_updating(self, api: Api) -> None:
        response = api.client.put(
            f"{STORES}/{api.store_a}", json={"defaultCurrency": "XYZ"}, headers=api.auth("admin")
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["path"] == "defaultCurrency"

    def test_deleted_store_disappears_when_it_has_been_archived(self, api: Api) -> None:
        deleted = api.client.delete(f"{STORES}/{api.store_b}", headers=api.auth("admin"))
        assert deleted.status_code == 200
        assert deleted.content == b""
        assert api.client.get(f"{STORES}/{api.store_b}", headers=api.auth("admin")).status_code \
            == 404
        listed = api.client.get(STORES, headers=api.auth("admin")).json()
        assert [store["id"] for store in listed] == [api.store_a]


class TestApiKeys:
    def test_current_key_shows_its_id_never_its_secret_when_asked(self, api: Api) -> None:
        response = api.client.get("/api/v1/api-keys/current", headers=api.auth("store_a"))
        body = response.json()
        assert body["apiKey"].startswith("key_")
        assert api.secrets["store_a"] not in response.text
        assert body["permissions"] == [f"btcpay.store.canmodifystoresettings:{api.store_a}"]

    def test_new_key_works_once_shown_when_created_by_an_unrestricted_key(
        self, api: Api
    ) -> None:
        permission = f"btcpay.store.canviewinvoices:{api.store_a}"
        created = api.client.post(
            "/api/v1/api-keys", json={"label": "plugin", "permissions": [permission]},
            headers=api.auth("admin"),
        )
        assert created.status_code == 200
        secret = created.json()["apiKey"]
        current = api.client.get(
            "/api/v1/api-keys/current", headers={"Authorization": f"token {secret}"}
        )
        assert current.json()["label"] == "plugin"

    def test_unknown_permission_is_refused_with_422_when_creating_a_key(self, api: Api) -> None:
        response = api.client.post(
            "/api/v1/api-keys", json={"permissions": ["btcpay.store.canfly"]},
            headers=api.auth("admin"),
        )
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"path": "permissions", "message": "unknown permission 'btcpay.store.canfly'"}
        ]


class TestLedger:
    def test_entry_is_posted_with_exact_amounts_when_it_has_18_decimals(self, api: Api) -> None:
        amount = "123456789012.123456789012345678"  # beyond 64-bit wei
        response = api.client.post(
            ENTRIES, json=transfer("big-1", amount, memo="deposit"), headers=api.auth("admin")
        )
        assert response.status_code == 201
        body = response.json()
        assert body["postings"] == [
            {"account": WORLD, "asset": "ETH", "amount": f"-{amount}"},
            {"account": HOT, "asset": "ETH", "amount": amount},
        ]
        assert body["memo"] == "deposit"
        assert body["kind"] == "transfer"

    def test_amount_is_answered_in_the_assets_precision_when_sent_short(self, api: Api) -> None:
        body = transfer("p-1", "10", "operator:op:USD:world", "operator:op:USD:available")
        response = api.client.post(ENTRIES, json=body, headers=api.auth("admin"))
        assert response.json()["postings"][1]["amount"] == "10.00"

    def test_same_body_key_returns_the_entry_with_200_when_posted_again(self, api: Api) -> None:
        first = api.client.post(ENTRIES, json=transfer("k-1", "1"), headers=api.auth("admin"))
        again = api.client.post(ENTRIES, json=transfer("k-1", "1"), headers=api.auth("admin"))
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        assert api.node.verify_ledger().entries == 1

    def test_same_body_key_is_refused_with_409_when_the_content_differs(self, api: Api) -> None:
        api.client.post(ENTRIES, json=transfer("k-2", "1"), headers=api.auth("admin"))
        response = api.client.post(ENTRIES, json=transfer("k-2", "2"), headers=api.auth("admin"))
        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_reused"

    def test_reversal_is_posted_once_when_requested_twice(self, api: Api) -> None:
        entry = api.client.post(ENTRIES, json=transfer("k-3", "1"), headers=api.auth("admin"))
        url = f"{ENTRIES}/{entry.json()['id']}/reverse"
        first = api.client.post(url, headers=api.auth("admin"))
        again = api.client.post(url, headers=api.auth("admin"))
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["reverses"] == entry.json()["id"]
        assert first.json()["postings"][1]["amount"] == "-1.000000000000000000"
        other_key = api.client.post(
            url, json={"idempotencyKey": "rev-2"}, headers=api.auth("admin")
        )
        assert other_key.status_code == 409
        balances = api.client.get("/api/v1/ledger/accounts?asset=ETH", headers=api.auth("admin"))
        assert {a["balance"] for a in balances.json()} == {"0.000000000000000000"}

    def test_reversal_of_unknown_entry_is_refused_with_404_when_requested(self, api: Api) -> None:
        response = api.client.post(f"{ENTRIES}/je_missing/reverse", headers=api.auth("admin"))
        assert response.status_code == 404

    def test_statement_shows_running_balances_when_a_range_is_given(self, api: Api) -> None:
        start = int(api.clock.now().timestamp())
        api.client.post(ENTRIES, json=transfer("s-1", "5"), headers=api.auth("admin"))
        api.clock.advance(timedelta(hours=1))
        middle = int(api.clock.now().timestamp())
        api.client.post(ENTRIES, json=transfer("s-2", "2"), headers=api.auth("admin"))
        api.client.post(ENTRIES, json=transfer("s-3", "1", HOT, WORLD), headers=api.auth("admin"))
        url = f"/api/v1/ledger/accounts/{HOT}/statement"
        whole = api.client.get(f"{url}?from={start}", headers=api.auth("admin")).json()
        assert [line["balance"].split(".")[0] for line in whole["lines"]] == ["5", "7", "6"]
        later = api.client.get(f"{url}?from={middle}", headers=api.auth("admin")).json()
        assert later["openingBalance"] == "5.000000000000000000"
        assert later["closingBalance"] == "6.000000000000000000"
        assert [line["amount"] for line in later["lines"]] == [
            "2.000000000000000000", "-1.000000000000000000"]
        early = api.client.get(f"{url}?to={middle}", headers=api.auth("admin")).json()
        assert len(early["lines"]) == 1
        assert early["from"] is None
        assert early["to"] == middle

    def test_statement_of_unknown_account_is_refused_with_404_when_asked(self, api: Api) -> None:
        response = api.client.get(
            "/api/v1/ledger/accounts/store:st_x:BTC:available/statement",
            headers=api.auth("admin"),
        )
        assert response.status_code == 404

    def test_accounts_are_filtered_when_owner_filters_are_given(self, api: Api) -> None:
        store_account = f"store:{api.store_a}:ETH:available"
        api.client.post(ENTRIES, json=transfer("f-1", "3", WORLD, store_account),
                        headers=api.auth("admin"))
        response = api.client.get(
            f"/api/v1/ledger/accounts?ownerType=store&ownerId={api.store_a}",
            headers=api.auth("readonly"),
        )
        assert response.json() == [{
            "account": store_account, "ownerType": "store", "ownerId": api.store_a,
            "asset": "ETH", "kind": "available", "balance": "3.000000000000000000",
            "allowOverdraft": False,
        }]

    def test_verify_reports_a_healthy_ledger_when_entries_balance(self, api: Api) -> None:
        api.client.post(ENTRIES, json=transfer("v-1", "1"), headers=api.auth("admin"))
        response = api.client.get("/api/v1/ledger/verify", headers=api.auth("readonly"))
        assert response.json() == {
            "ok": True, "entries": 1, "accounts": 2,
            "totals": {"ETH": "0.000000000000000000"}, "problems": [],
        }
