"""The typed client against the real app: every call, the error mapping, the feed, and
its models checked field by field against the node's OpenAPI document.

The blocking client runs over Litestar's TestClient (an ``httpx.Client``); the asyncio
client and the trading WebSocket over a real granian server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import TestClient

from dpgnode.api.app import create_app
from dpgnode.client import AsyncDpgClient, DpgClient, ServerError, models
from dpgnode.client.transport import api_base
from dpgnode.domain.access import STORE_VIEW
from dpgnode.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PolicyDeniedError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)
from dpgnode.node import Node
from tests.support.dashboard import Seed, open_node, seed
from tests.support.served_node import served_node
from tests.support.trading import place

WAIT = 30.0


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed(tmp_path_factory.mktemp("client-seed"))


@pytest.fixture
def node(seeded: Seed, tmp_path: Path) -> Iterator[Node]:
    shutil.copytree(seeded.data_dir, tmp_path / "node")
    opened = open_node(tmp_path / "node", next_id=seeded.next_id)
    yield opened
    opened.close()


@pytest.fixture
def test_client(node: Node) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(node)) as client:
        yield client


def _client(http: TestClient[Any], key: str | None) -> DpgClient:
    return DpgClient(str(http.base_url), key, http=http)


class TestCalls:
    def test_reads_return_typed_objects_when_the_node_answers(
        self, test_client: TestClient[Any], seeded: Seed
    ) -> None:
        client = _client(test_client, seeded.admin_key)
        assert client.health() == models.Health(synchronized=True)
        assert client.current_key().label == "dashboard"
        assert [s.name for s in client.stores()] == ["Corner Shop"]
        pairs = {p.symbol: p.status for p in client.pairs()}
        assert (pairs["BTC-USD"], pairs["ETH-USD"], pairs["BTC-EUR"]) == (
            "open", "halted", "closed")
        book = client.order_book("BTC-USD", depth=2)
        assert (book.bids, book.asks) == ([("59900", "0.40000000"), ("59800", "1.00000000")],
                                          [("60100", "0.10000000"), ("60200", "1.20000000")])
        assert client.ticker("BTC-USD").last_price == "60100"
        assert [t.quantity for t in client.tape("BTC-USD")] == ["0.10000000", "0.30000000"]
        payouts = client.payouts(status="pending_approval")
        assert {p.id for p in payouts} == set(seeded.payouts.values())
        policy = client.payout(seeded.payouts["big"]).policy
        assert policy is not None
        assert (policy.approvals_required, policy.destination_allowed) == (2, True)
        assert client.address_gaps()[0].gap_limit_needed == 2
        assert client.verify_ledger().ok
        assert any(a.kind == "held" for a in client.accounts(asset="BTC"))
        page = client.events(after=0, type_prefix="custody.payout", limit=1)
        assert (len(page.events), page.next) == (1, page.events[0].seq)
        assert client.event_progress().newest_seq >= page.next

    def test_writes_change_the_node_when_called(
        self, test_client: TestClient[Any], seeded: Seed, node: Node
    ) -> None:
        client = _client(test_client, seeded.admin_key)
        assert client.halt_pair("BTC-USD").status == "halted"
        assert client.resume_pair("BTC-USD").status == "open"
        approved = client.approve_payout(seeded.payouts["big"], seeded.tokens["carol"])
        assert [a.operator_name for a in approved.approvals] == ["carol"]
        rejected = client.reject_payout(seeded.payouts["big"], seeded.tokens["bob"], "stop")
        assert rejected.status == "cancelled"
        assert node.custody.payouts.payout(seeded.payouts["big"]).status.value == "cancelled"

    def test_url_gets_the_api_prefix_once_when_given_with_or_without_it(self) -> None:
        assert api_base("http://h:1") == "http://h:1/api/v1"
        assert api_base("https://h/base/api/v1/") == "https://h/base/api/v1"
        with pytest.raises(ValidationError) as refused:
            api_base("h:1")
        assert refused.value.field == "url"


class TestErrors:
    def test_missing_object_is_not_found_with_the_request_id_when_asked_for(
        self, test_client: TestClient[Any], seeded: Seed
    ) -> None:
        with pytest.raises(NotFoundError) as missing:
            _client(test_client, seeded.admin_key).payout("po_nope")
        assert missing.value.details["status"] == 404
        assert str(missing.value.details["requestId"]).startswith("req_")

    def test_bad_query_is_a_validation_error_naming_the_field_when_sent(
        self, test_client: TestClient[Any], seeded: Seed
    ) -> None:
        with pytest.raises(ValidationError) as bad:
            _client(test_client, seeded.admin_key).events(type_prefix="NOT VALID")
        assert bad.value.field == "type"

    def test_unknown_key_is_an_authentication_error_when_used(
        self, test_client: TestClient[Any]
    ) -> None:
        with pytest.raises(AuthenticationError):
            _client(test_client, "not-a-key").pairs()

    def test_narrow_key_is_refused_with_permission_denied_when_it_reaches_further(
        self, test_client: TestClient[Any], node: Node
    ) -> None:
        key = node.access.create_api_key("narrow", [STORE_VIEW]).secret
        with pytest.raises(PermissionDeniedError):
            _client(test_client, key).payouts()

    def test_node_refusals_keep_their_category_and_details_when_mapped(
        self, test_client: TestClient[Any], seeded: Seed
    ) -> None:
        client = _client(test_client, seeded.admin_key)
        with pytest.raises(ConflictError) as final:
            client.approve_payout(seeded.payouts["half"], seeded.tokens["alice"])
        assert final.value.details["reason"] == "signing_required"
        with pytest.raises(PolicyDeniedError) as own:
            client.approve_payout(seeded.payouts["big"], seeded.tokens["alice"])
        assert own.value.details["rule"] == "self_approval"

    def test_unreachable_node_is_unavailable_when_nothing_listens(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with DpgClient(f"http://127.0.0.1:{port}", "k", timeout=2) as client, pytest.raises(
            UnavailableError
        ) as down:
            client.health()
        assert f"127.0.0.1:{port}" in down.value.message

    @pytest.mark.parametrize(
        ("status", "body", "headers", "expected"),
        [
            (500, b"<html>oops</html>", {}, ServerError),
            (502, b"bad gateway", {}, ServerError),
            (429, b'{"status":429,"code":"rate_limited","message":"slow down"}',
             {"Retry-After": "7"}, RateLimitedError),
            (503, b"", {"Retry-After": "3"}, UnavailableError),
        ],
        ids=["html-500", "proxy-502", "rate-limited", "bare-503"],
    )
    def test_answers_outside_the_problem_format_still_map_when_a_proxy_sends_them(
        self, status: int, body: bytes, headers: dict[str, str], expected: type[Exception]
    ) -> None:
        # A reverse proxy in front of the node answers in its own format: httpx's
        # MockTransport stands in for it (the node itself never sends these bodies).
        transport = httpx.MockTransport(
            lambda request: httpx.Response(status, content=body, headers=headers))
        http = httpx.Client(transport=transport)
        with DpgClient("http://proxy.test", "k", http=http) as c, pytest.raises(
            expected
        ) as raised:
            c.health()
        if "Retry-After" in headers:
            assert raised.value.retry_after == int(headers["Retry-After"])  # type: ignore[attr-defined]


class TestAsyncAndFeed:
    def test_async_calls_and_the_feed_follow_the_node_when_an_order_arrives(
        self, node: Node, seeded: Seed
    ) -> None:
        async def scenario(url: str) -> list[models.FeedMessage]:
            async with AsyncDpgClient(url, seeded.admin_key) as client:
                assert (await client.ticker("BTC-USD")).best_bid == "59900"
                seen: list[models.FeedMessage] = []
                async with client.trading_feed(["book:BTC-USD", "trades:BTC-USD"]) as feed:
                    async for message in feed:
                        seen.append(message)
                        if message.type == "snapshot":
                            await asyncio.to_thread(place, node, "taker", "buy", "0.05",
                                                    "60100")
                        kinds = {m.type for m in seen}
                        if {"trade", "delta"} <= kinds:
                            return seen
            raise AssertionError("the feed ended")

        with served_node(node) as served:
            seen = asyncio.run(asyncio.wait_for(scenario(served.url), WAIT))
        kinds = [m.type for m in seen]
        assert kinds[:2] == ["subscribed", "snapshot"]
        snapshot = seen[1].data
        deltas = [m.data for m in seen if m.type == "delta"]
        assert [d["seq"] for d in deltas] == [snapshot["seq"] + 1]
        [trade_data] = [m.data for m in seen if m.type == "trade"]
        trade = msgspec.convert(trade_data, models.Trade)
        assert (trade.price, trade.quantity, trade.taker_side) == ("60100", "0.05000000", "buy")

    def test_feed_refuses_a_bad_key_with_the_nodes_error_when_connecting(
        self, node: Node
    ) -> None:
        async def connect(url: str) -> None:
            client = AsyncDpgClient(url, "not-a-key")
            try:
                async with client.trading_feed(["book:BTC-USD"]):
                    pass
            finally:
                await client.aclose()

        with served_node(node) as served, pytest.raises(
            (AuthenticationError, PermissionDeniedError)
        ):
            asyncio.run(asyncio.wait_for(connect(served.url), WAIT))


# Client model -> the API's response component it reads.
COMPONENTS: dict[type[msgspec.Struct], str] = {
    models.Health: "Health", models.ServerInfo: "ServerInfo", models.SyncStatus: "SyncStatus",
    models.ApiKeyInfo: "ApiKeyData", models.Store: "StoreData", models.Account: "AccountData",
    models.LedgerReport: "VerifyData", models.Wallet: "WalletData",
    models.Balance: "BalanceData", models.Pair: "PairData", models.OrderBook: "OrderBookData",
    models.Ticker: "TickerData", models.Trade: "TradeData", models.Payout: "PayoutData",
    models.Approval: "ApprovalData", models.PayoutPolicy: "PayoutPolicyData",
    models.AddressGap: "AddressGapData", models.Event: "EventData",
    models.EventPage: "EventPage", models.SinkProgress: "SinkProgressData",
    models.EventProgress: "EventProgressData",
}


def test_every_client_field_is_in_the_api_schema_when_compared_with_openapi(
    test_client: TestClient[Any],
) -> None:
    schemas = test_client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    problems = []
    for model, component in COMPONENTS.items():
        schema = schemas[component]
        required = set(schema.get("required", []))
        for field in msgspec.structs.fields(model):
            if field.encode_name not in schema["properties"]:
                problems.append(f"{component} has no {field.encode_name}")
            elif field.required and field.encode_name not in required:
                problems.append(f"{component}.{field.encode_name} may be absent")
    assert problems == []


def test_every_client_model_is_checked_when_models_are_added() -> None:
    listed = {
        value for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, models.Model) and value is not models.Model
    }
    # Feed messages and the merchant listings have no component on this node yet.
    assert listed - set(COMPONENTS) == {models.FeedMessage, models.Invoice, models.Webhook}
