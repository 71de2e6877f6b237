"""Two users trade through the running node's API and watch it on the WebSocket feed.

The real ``dpg`` executable serves the API with granian (``dpg node start``); the operator
opens BTC-USD, funds alice and bob and issues their keys with the CLI, as documented. The
users trade over HTTP while alice watches the feed: she sees a book snapshot, consecutive
deltas, the trade and her own orders; then every balance has moved exactly as the trades
say and the ledger verifies.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e import test_cli_install as cli

# The operator's data directory and the running `dpg node start` (fixtures shared with the
# CLI e2e tests).
env = cli.env
served = cli.served
_json, _run = cli._json, cli._run

WAIT = 30.0  # bounds waits for messages that must come; nothing asserts on time


def _ok(env: dict[str, str], *args: str) -> None:
    done = _run(env, *args)
    assert done.returncode == 0, done.stderr


def _fund(env: dict[str, str], user: str, asset: str, amount: str) -> None:
    _ok(env, "ledger", "post", "--key", f"deposit-{user}-{asset}", "--memo", "deposit",
        "--posting", f"operator:op:{asset}:world=-{amount}",
        "--posting", f"user:{user}:{asset}:available={amount}")


def _receive(ws: ClientConnection, wanted: dict[str, int]) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {}
    while any(len(seen.get(kind, [])) < count for kind, count in wanted.items()):
        message = json.loads(ws.recv(timeout=WAIT))
        seen.setdefault(message["type"], []).append(message)
    return seen


def _balances(env: dict[str, str]) -> dict[str, Decimal]:
    rows = _json(env, "ledger", "balances", "--owner-type", "user")
    return {row["account"]: Decimal(row["balance"]) for row in rows}


def test_two_users_trade_and_balances_move_exactly_as_the_trades_say(
    served: tuple[str, dict[str, str]], request: pytest.FixtureRequest
) -> None:
    base, env = served
    _ok(env, "book", "pairs", "add", "BTC-USD")
    _fund(env, "alice", "USD", "20000")
    _fund(env, "bob", "BTC", "1")
    keys = {
        user: _json(env, "apikey", "create", "--permission", f"dpg.trading.trade:{user}")["apiKey"]
        for user in ("alice", "bob")
    }
    auth = {user: {"Authorization": f"token {key}"} for user, key in keys.items()}
    api = httpx.Client(base_url=f"{base}/api/v1/trading", timeout=30)
    request.addfinalizer(api.close)
    ws_url = base.replace("http://", "ws://") + "/api/v1/trading/ws"

    def order(user: str, key: str, **body: str) -> Any:
        response = api.post("/orders", json=body, headers={**auth[user], "Idempotency-Key": key})
        assert response.status_code == 201, response.text
        return response.json()

    with connect(ws_url, additional_headers=auth["alice"], open_timeout=WAIT) as ws:
        ws.send(json.dumps({"op": "subscribe",
                            "channels": ["book:BTC-USD", "trades:BTC-USD", "orders"]}))
        snapshot = _receive(ws, {"snapshot": 1})["snapshot"][0]["data"]
        order("bob", "b-1", pair="BTC-USD", side="sell", quantity="0.5", price="60000")
        bought = order("alice", "a-1", pair="BTC-USD", side="buy", quantity="0.2",
                       price="60500")
        order("alice", "a-2", pair="BTC-USD", side="buy", quantity="0.1", price="59000")
        seen = _receive(ws, {"delta": 3, "trade": 1, "order": 2})

    deltas = [m["data"] for m in seen["delta"]]
    assert [d["seq"] for d in deltas] == [snapshot["seq"] + n for n in (1, 2, 3)]
    assert deltas[-1]["bids"] == [["59000", "0.10000000"]]
    trade = seen["trade"][0]["data"]
    assert (trade["price"], trade["quantity"]) == ("60000", "0.20000000")
    assert {o["data"]["userId"] for o in seen["order"]} == {"alice"}
    assert bought["order"]["status"] == "filled"

    # Exactly as the trades say: 0.2 BTC at 60,000 = 12,000.00 USD; alice (taker) pays
    # 0.2 % = 24.00, bob (maker) 0.1 % = 12.00; alice's resting buy of 0.1 at 59,000 holds
    # 5,900.00 + 11.80 (the larger fee) + 0.01 (rounding slack).
    alice_trades = api.get("/trades", headers=auth["alice"]).json()
    bob_trades = api.get("/trades", headers=auth["bob"]).json()
    assert [(t["value"], t["fee"], t["side"]) for t in alice_trades] == [
        ("12000.00", "24.00", "buy")
    ]
    assert [(t["fee"], t["side"], t["role"]) for t in bob_trades] == [("12.00", "sell", "maker")]
    balances = _balances(env)
    assert balances["user:alice:BTC:available"] == Decimal("0.2")
    assert balances["user:alice:USD:held"] == Decimal("5911.81")
    assert balances["user:alice:USD:available"] == Decimal("20000") - Decimal(
        "12024"
    ) - Decimal("5911.81")
    assert balances["user:bob:USD:available"] == Decimal("12000") - Decimal("12")
    assert balances["user:bob:BTC:held"] == Decimal("0.3")
    assert balances["user:bob:BTC:available"] == Decimal("0.5")
    assert _json(env, "ledger", "verify")["ok"] is True
    positions = api.get("/positions", headers=auth["alice"]).json()
    assert (positions[0]["quantity"], positions[0]["averagePrice"]) == ("0.20000000", "60000")
