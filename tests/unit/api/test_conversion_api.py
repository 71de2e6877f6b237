"""``/api/v1/conversion``: rates, quotes, convert, limits, over a real node (SQLite).

Callers: ``alice`` and ``bob`` trade for themselves (``dpg.trading.trade:<user>``),
``alice_view`` only reads (``dpg.trading.view:alice``), ``unbound`` has the trade permission
but no user, ``manager`` sets limits, plus the seed's ``admin``, ``readonly``, ``store_a``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.api.app import create_app
from dpgnode.domain.access import CONVERSION_LIMITS_MANAGE, TRADING_TRADE, TRADING_VIEW
from dpgnode.domain.conversion.limits import LimitKind, Period
from dpgnode.node import Node, build_node
from dpgnode.ports.trading import OrderType, Side
from dpgnode.services.trading import OrderRequest
from dpgnode.settings import load_settings
from tests.support.conversion import balance, conversion_settings, fund, inventory, user
from tests.unit.api.conftest import HIGH_LIMITS, Seed

BASE = "/api/v1/conversion"


class ConvApi:
    def __init__(self, client: TestClient[Any], node: Node, clock: FixedClock) -> None:
        self.client = client
        self.node = node
        self.clock = clock
        self.secrets: dict[str, str] = {}

    def auth(self, who: str, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if who != "anonymous":
            headers["Authorization"] = f"token {self.secrets[who]}"
        return headers

    def quote(self, who: str = "alice", **body: Any) -> Any:
        payload = {"from": "BTC", "to": "USD", "fromAmount": "0.5", **body}
        response = self.client.post(f"{BASE}/quotes", json=payload, headers=self.auth(who))
        assert response.status_code == 201, response.text
        return response.json()

    def convert(self, quote_id: str, who: str = "alice", **headers: str) -> Any:
        return self.client.post(
            f"{BASE}/convert", json={"quoteId": quote_id}, headers=self.auth(who, **headers)
        )


@pytest.fixture
def conv(tmp_path: Path, clock: FixedClock, seed: Seed) -> Iterator[ConvApi]:
    data_dir = tmp_path / "node"
    shutil.copytree(seed.data_dir, data_dir)
    settings = load_settings(
        data_dir, overrides={"api": HIGH_LIMITS, "conversion": conversion_settings()}
    )
    node = build_node(settings, clock=clock)
    client: TestClient[Any] = TestClient(create_app(node))
    with client:
        api = ConvApi(client, node, clock)
        api.secrets.update(seed.secrets)

        def key(*permissions: str) -> str:
            return node.access.create_api_key("test", list(permissions)).secret

        api.secrets.update(
            alice=key(f"{TRADING_TRADE}:alice"),
            bob=key(f"{TRADING_TRADE}:bob"),
            alice_view=key(f"{TRADING_VIEW}:alice"),
            unbound=key(TRADING_TRADE),
            manager=key(CONVERSION_LIMITS_MANAGE),
        )
        fund(node, user("alice", "BTC"), "1")
        fund(node, inventory("USD"), "100000")
        yield api
    report = node.verify_ledger()
    node.close()
    assert report.ok, report.problems


class TestRates:
    def test_rates_list_every_asset_in_the_reference_currency_when_asked(
        self, conv: ConvApi
    ) -> None:
        response = conv.client.get(f"{BASE}/rates", headers=conv.auth("alice_view"))
        assert response.status_code == 200
        body = response.json()
        rates = {r["base"]: r for r in body["rates"]}
        assert rates["BTC"] == {
            "base": "BTC",
            "quote": "USD",
            "rate": "60000",
            "source": "fixed",
            "observedTime": int(conv.clock.now().timestamp()),
        }
        assert rates["EUR"]["rate"] == "1.08"
        assert "POL" in {u["base"] for u in body["unavailable"]}

    def test_one_rate_is_crossed_through_the_pivot_when_asked_for_a_pair(
        self, conv: ConvApi
    ) -> None:
        response = conv.client.get(f"{BASE}/rates?from=BTC&to=EUR", headers=conv.auth("alice_view"))
        [rate] = response.json()["rates"]
        assert rate["rate"] == "55555.555555555555555555"
        assert rate["source"] == "cross(BTC/USD,USD/EUR)"

    def test_unknown_asset_is_refused_naming_the_field_when_asked(self, conv: ConvApi) -> None:
        response = conv.client.get(f"{BASE}/rates?from=DOGE", headers=conv.auth("alice_view"))
        assert response.status_code == 422
        assert response.json()["errors"] == [{"path": "from", "message": "unknown asset 'DOGE'"}]


class TestQuote:
    def test_quote_shows_amounts_rates_fee_spread_and_expiry_as_strings_when_made(
        self, conv: ConvApi
    ) -> None:
        quote = conv.quote()
        now = int(conv.clock.now().timestamp())
        assert {
            k: quote[k]
            for k in (
                "userId",
                "status",
                "route",
                "fixed",
                "from",
                "to",
                "fromAmount",
                "toAmount",
                "fee",
                "feeBps",
                "spreadBps",
                "spread",
                "midRate",
                "rate",
                "effectiveRate",
                "referenceValue",
                "createdTime",
                "expiresTime",
            )
        } == {
            "userId": "alice",
            "status": "open",
            "route": "inventory",
            "fixed": "sell",
            "from": "BTC",
            "to": "USD",
            "fromAmount": "0.50000000",
            "toAmount": "29820.15",
            "fee": "0.00050000",
            "feeBps": 10,
            "spreadBps": 50,
            "spread": "149.85",
            "midRate": "60000",
            "rate": "59700",
            "effectiveRate": "59640.3",
            "referenceValue": {"asset": "USD", "amount": "30000.00"},
            "createdTime": now,
            "expiresTime": now + 30,
        }
        assert quote["id"].startswith("cq_")
        fetched = conv.client.get(f"{BASE}/quotes/{quote['id']}", headers=conv.auth("alice_view"))
        assert fetched.json() == quote

    def test_quote_fixes_the_received_amount_when_to_amount_is_given(self, conv: ConvApi) -> None:
        quote = conv.quote(fromAmount=None, toAmount="1000")
        assert (quote["fixed"], quote["toAmount"], quote["fromAmount"]) == (
            "buy",
            "1000.00",
            "0.01676719",
        )

    @pytest.mark.parametrize(
        ("body", "status", "path"),
        [
            ({"from": "BTC", "to": "USD"}, 422, "fromAmount"),
            ({"from": "BTC", "to": "USD", "fromAmount": "0.123456789"}, 422, "fromAmount"),
            ({"from": "BTC", "to": "USD", "fromAmount": 0.5}, 400, "fromAmount"),
            ({"from": "BTC", "to": "BTC", "fromAmount": "1"}, 422, "to"),
            ({"from": "BTC", "to": "USD", "fromAmount": "1", "userId": "bob"}, 400, "userId"),
        ],
    )
    def test_bad_quote_request_is_refused_naming_the_field_when_sent(
        self, conv: ConvApi, body: dict[str, Any], status: int, path: str
    ) -> None:
        response = conv.client.post(f"{BASE}/quotes", json=body, headers=conv.auth("alice"))
        assert response.status_code == status, response.text
        assert [e["path"] for e in response.json()["errors"]] == [path]

    def test_quote_is_refused_with_503_when_no_fresh_rate_exists(self, conv: ConvApi) -> None:
        response = conv.client.post(
            f"{BASE}/quotes",
            json={"from": "POL", "to": "USD", "fromAmount": "1"},
            headers=conv.auth("alice"),
        )
        assert response.status_code == 503
        assert response.json()["code"] == "unavailable"
        assert int(response.headers["retry-after"]) >= 1


class TestConvert:
    def test_conversion_posts_one_entry_and_moves_balances_when_accepted(
        self, conv: ConvApi
    ) -> None:
        quote = conv.quote()
        response = conv.convert(quote["id"])
        assert response.status_code == 201, response.text
        body = response.json()
        assert {k: body[k] for k in ("quoteId", "userId", "fromAmount", "toAmount", "fee")} == {
            "quoteId": quote["id"],
            "userId": "alice",
            "fromAmount": "0.50000000",
            "toAmount": "29820.15",
            "fee": "0.00050000",
        }
        assert balance(conv.node, user("alice", "USD")) == "29820.15"
        assert balance(conv.node, user("alice", "BTC")) == "0.50000000"
        fetched = conv.client.get(
            f"{BASE}/conversions/{body['id']}", headers=conv.auth("alice_view")
        )
        assert fetched.json() == body

    def test_second_acceptance_returns_the_same_conversion_with_200_when_repeated(
        self, conv: ConvApi
    ) -> None:
        quote = conv.quote()
        first = conv.convert(quote["id"])
        again = conv.convert(quote["id"])
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        assert balance(conv.node, user("alice", "BTC")) == "0.50000000"

    def test_idempotency_key_replays_the_first_response_byte_for_byte_when_retried(
        self, conv: ConvApi
    ) -> None:
        quote = conv.quote()
        first = conv.convert(quote["id"], **{"Idempotency-Key": "conv-1"})
        again = conv.convert(quote["id"], **{"Idempotency-Key": "conv-1"})
        assert again.status_code == first.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"

    def test_expired_quote_is_refused_with_409_quote_expired_when_accepted_late(
        self, conv: ConvApi
    ) -> None:
        quote = conv.quote()
        conv.clock.advance(timedelta(seconds=31))
        response = conv.convert(quote["id"])
        assert response.status_code == 409
        assert response.json()["code"] == "quote_expired"
        assert response.json()["title"] == "Quote expired"
        shown = conv.client.get(f"{BASE}/quotes/{quote['id']}", headers=conv.auth("alice"))
        assert shown.json()["status"] == "expired"
        assert balance(conv.node, user("alice", "BTC")) == "1.00000000"

    def test_conversion_over_the_limit_is_refused_with_422_when_accepted(
        self, conv: ConvApi
    ) -> None:
        quote = conv.quote()
        conv.node.conversion.limits.set("alice", LimitKind.ASSET, "BTC", Period.DAY, "0.1")
        response = conv.convert(quote["id"])
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "policy_denied"
        assert problem["details"]["remaining"] == "0.10000000"

    def test_short_balance_is_refused_with_422_insufficient_funds_when_accepted(
        self, conv: ConvApi
    ) -> None:
        fund(conv.node, user("bob", "BTC"), "0.1")
        quote = conv.quote("bob")
        response = conv.convert(quote["id"], who="bob")
        assert response.status_code == 422
        assert response.json()["code"] == "insufficient_funds"
        assert balance(conv.node, user("bob", "BTC")) == "0.10000000"

    def test_another_users_quote_is_not_found_when_accepted_or_read(self, conv: ConvApi) -> None:
        quote = conv.quote()
        assert conv.convert(quote["id"], who="bob").status_code == 404
        read = conv.client.get(f"{BASE}/quotes/{quote['id']}", headers=conv.auth("bob"))
        assert read.status_code == 404
        executed = conv.convert(quote["id"]).json()
        read = conv.client.get(f"{BASE}/conversions/{executed['id']}", headers=conv.auth("bob"))
        assert read.status_code == 404

    def test_unbound_trade_grant_cannot_convert_for_the_bound_viewer_when_combined(
        self, conv: ConvApi
    ) -> None:
        # Regression: the user came from the view grant and the permission from the unbound
        # trade grant, so a read-only key for alice could quote and convert her money.
        conv.secrets["mixed"] = conv.node.access.create_api_key(
            "mixed", [f"{TRADING_VIEW}:alice", TRADING_TRADE]
        ).secret
        quote = conv.quote()
        refused = conv.client.post(f"{BASE}/quotes", json=QUOTE_BODY, headers=conv.auth("mixed"))
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert conv.convert(quote["id"], who="mixed").status_code == 403
        assert balance(conv.node, user("alice", "BTC")) == "1.00000000"
        read = conv.client.get(f"{BASE}/quotes/{quote['id']}", headers=conv.auth("mixed"))
        assert read.status_code == 200


class TestLimits:
    def test_limits_show_limit_used_and_remaining_when_read_by_the_user(
        self, conv: ConvApi
    ) -> None:
        put = conv.client.put(
            f"{BASE}/limits",
            json={"userId": "alice", "asset": "BTC", "period": "day", "limit": "0.8"},
            headers=conv.auth("manager"),
        )
        assert put.status_code == 200, put.text
        assert put.json() == {
            "userId": "alice",
            "kind": "asset",
            "asset": "BTC",
            "period": "day",
            "limit": "0.80000000",
        }
        conv.convert(conv.quote()["id"])
        body = conv.client.get(f"{BASE}/limits", headers=conv.auth("alice_view")).json()
        assert body["userId"] == "alice"
        [status] = body["limits"]
        assert {
            k: status[k]
            for k in ("kind", "asset", "period", "limit", "used", "remaining", "isDefault")
        } == {
            "kind": "asset",
            "asset": "BTC",
            "period": "day",
            "limit": "0.80000000",
            "used": "0.50000000",
            "remaining": "0.30000000",
            "isDefault": False,
        }
        assert status["resetsTime"] - status["periodStartTime"] == 86400

    def test_default_limit_is_set_for_every_user_when_user_id_is_null(self, conv: ConvApi) -> None:
        put = conv.client.put(
            f"{BASE}/limits",
            json={
                "userId": None,
                "kind": "value",
                "asset": "USD",
                "period": "month",
                "limit": "1000",
            },
            headers=conv.auth("manager"),
        )
        assert put.json()["userId"] == "*"
        response = conv.client.post(
            f"{BASE}/quotes",
            json={"from": "BTC", "to": "USD", "fromAmount": "0.5"},
            headers=conv.auth("bob"),
        )
        assert response.status_code == 422
        assert response.json()["details"]["kind"] == "value"
        limits = conv.client.get(f"{BASE}/limits?userId=bob", headers=conv.auth("manager")).json()[
            "limits"
        ]
        assert [(lim["isDefault"], lim["limit"]) for lim in limits] == [(True, "1000.00")]

    def test_limit_is_removed_when_set_to_null(self, conv: ConvApi) -> None:
        body = {"userId": "alice", "asset": "BTC", "period": "day", "limit": "0.1"}
        conv.client.put(f"{BASE}/limits", json=body, headers=conv.auth("manager"))
        removed = conv.client.put(
            f"{BASE}/limits", json={**body, "limit": None}, headers=conv.auth("manager")
        )
        assert removed.json()["limit"] is None
        assert conv.client.get(f"{BASE}/limits", headers=conv.auth("alice")).json()["limits"] == []

    def test_users_cannot_set_or_read_others_limits_when_they_try(self, conv: ConvApi) -> None:
        body = {"userId": "alice", "asset": "BTC", "period": "day", "limit": "100"}
        assert (
            conv.client.put(f"{BASE}/limits", json=body, headers=conv.auth("alice")).status_code
            == 403
        )
        other = conv.client.get(f"{BASE}/limits?userId=bob", headers=conv.auth("alice"))
        assert other.status_code == 403

    @pytest.mark.parametrize(
        "body",
        [
            {"asset": "BTC", "period": "week", "limit": "1"},
            {"asset": "BTC", "period": "day"},
            {"asset": "BTC", "period": "day", "limit": "1", "used": "0"},
        ],
    )
    def test_malformed_limit_is_refused_with_400_when_sent(
        self, conv: ConvApi, body: dict[str, Any]
    ) -> None:
        response = conv.client.put(f"{BASE}/limits", json=body, headers=conv.auth("manager"))
        assert response.status_code == 400


# -- R18 for these routes: who gets what (the shared matrix lists only the core routes) ----

CALLERS = ("anonymous", "store_a", "readonly", "admin", "unbound", "alice_view", "alice", "manager")
QUOTE_BODY = {"from": "BTC", "to": "USD", "fromAmount": "0.01"}
LIMIT_BODY = {"userId": "alice", "asset": "BTC", "period": "day", "limit": "1"}


def _quote_id(api: ConvApi) -> str:
    return str(api.quote()["id"])


def _conversion_id(api: ConvApi) -> str:
    return str(api.convert(_quote_id(api)).json()["id"])


MATRIX: dict[tuple[str, str], tuple[Any, tuple[int, ...]]] = {
    ("GET", "/rates"): (lambda a: ("/rates", None), (401, 403, 403, 200, 200, 200, 200, 200)),
    ("POST", "/quotes"): (
        lambda a: ("/quotes", QUOTE_BODY),
        (401, 403, 403, 403, 403, 403, 201, 403),
    ),
    ("GET", "/quotes/{quoteId:str}"): (
        lambda a: (f"/quotes/{_quote_id(a)}", None),
        (401, 403, 403, 403, 403, 200, 200, 403),
    ),
    ("POST", "/convert"): (
        lambda a: ("/convert", {"quoteId": _quote_id(a)}),
        (401, 403, 403, 403, 403, 403, 201, 403),
    ),
    ("GET", "/conversions/{conversionId:str}"): (
        lambda a: (f"/conversions/{_conversion_id(a)}", None),
        (401, 403, 403, 403, 403, 200, 200, 403),
    ),
    ("GET", "/limits"): (lambda a: ("/limits", None), (401, 403, 403, 403, 403, 200, 200, 403)),
    ("PUT", "/limits"): (
        lambda a: ("/limits", LIMIT_BODY),
        (401, 403, 403, 200, 403, 403, 403, 200),
    ),
}


def test_matrix_covers_every_conversion_route_when_routes_are_added(conv: ConvApi) -> None:
    paths = {
        (method, route.path.removeprefix(BASE))
        for route in conv.client.app.routes
        if route.path.startswith(BASE)
        for method in route.methods - {"HEAD", "OPTIONS"}
    }
    assert paths == set(MATRIX)


@pytest.mark.parametrize("operation", sorted(MATRIX), ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_holds_when_each_caller_calls_each_conversion_route(
    conv: ConvApi, operation: tuple[str, str], caller: str
) -> None:
    build, expected = MATRIX[operation]
    url, body = build(conv)
    response = conv.client.request(
        operation[0], f"{BASE}{url}", json=body, headers=conv.auth(caller)
    )
    assert response.status_code == expected[CALLERS.index(caller)], response.text


class TestBookRoute:
    def test_book_quote_converts_as_one_market_order_when_accepted(self, conv: ConvApi) -> None:
        node = conv.node
        node.trading.open_pair("BTC-USD")
        fund(node, user("mm", "USD"), "100000")
        node.trading.place(
            OrderRequest(
                user_id="mm",
                pair="BTC-USD",
                side=Side.BUY,
                type=OrderType.LIMIT,
                quantity="1",
                price="59900",
            )
        )
        quote = conv.quote(route="book")
        assert (quote["route"], quote["fee"], quote["minToAmount"]) == (
            "book",
            "0.00000000",
            "29700.00",
        )
        response = conv.convert(quote["id"])
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["route"], body["toAmount"], body["entryId"]) == ("book", "29890.10", None)
        assert body["orderId"].startswith("ord_")

    def test_book_quote_is_refused_naming_the_route_when_no_book_is_open(
        self, conv: ConvApi
    ) -> None:
        response = conv.client.post(
            f"{BASE}/quotes",
            json={"from": "BTC", "to": "USD", "fromAmount": "0.5", "route": "book"},
            headers=conv.auth("alice"),
        )
        assert response.status_code == 422
        assert [e["path"] for e in response.json()["errors"]] == ["route"]
