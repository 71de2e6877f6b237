"""``dpg book pairs|depth|orders|cancel-all`` against a real data directory.

Users are funded the documented way (``dpg ledger post`` from the operator's world
account) and trade through the node's trading service, as the API would make them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpgnode.node import Node, build_node
from dpgnode.ports.trading import OrderType, Side
from dpgnode.services.trading import OrderRequest
from dpgnode.settings import load_settings
from tests.unit.cli.conftest import Invoke


@pytest.fixture
def book(initialised: Invoke, data_dir: Path) -> Iterator[tuple[Invoke, Node]]:
    assert initialised("book", "pairs", "add", "BTC-USD").exit_code == 0
    for user, posting in (("alice", "user:alice:USD:available=50000"),
                          ("bob", "user:bob:BTC:available=1")):
        asset = posting.split(":")[2]
        result = initialised(
            "ledger", "post", "--key", f"fund-{user}", "--memo", "funding",
            "--posting", f"operator:op:{asset}:world=-{posting.rsplit('=', 1)[1]}",
            "--posting", posting,
        )
        assert result.exit_code == 0, result.output
    node = build_node(load_settings(data_dir))
    yield initialised, node
    node.close()


def _place(node: Node, user: str, side: Side, quantity: str, price: str) -> str:
    request = OrderRequest(user, "BTC-USD", side, OrderType.LIMIT, quantity, price)
    return node.trading.place(request).order.id


class TestPairs:
    def test_pairs_start_closed_and_move_through_add_halt_resume(self, initialised: Invoke) -> None:
        listed = json.loads(initialised("book", "pairs", "list", "--json").stdout)
        opened = initialised("book", "pairs", "add", "ETH-BTC", "--json")
        again = initialised("book", "pairs", "add", "ETH-BTC")
        halted = initialised("book", "pairs", "halt", "ETH-BTC")
        only_halted = json.loads(
            initialised("book", "pairs", "list", "--status", "halted", "--json").stdout
        )
        resumed = initialised("book", "pairs", "resume", "ETH-BTC")

        assert len(listed) >= 50
        assert {p["status"] for p in listed} == {"closed"}
        assert json.loads(opened.stdout)["status"] == "open"
        assert "already open" in again.stdout
        assert "now halted" in halted.stdout
        assert [p["symbol"] for p in only_halted] == ["ETH-BTC"]
        assert "now open" in resumed.stdout

    def test_unknown_pair_is_a_usage_error(self, initialised: Invoke) -> None:
        result = initialised("book", "pairs", "add", "DOGE-USD")
        assert result.exit_code == 2
        assert "unknown pair" in result.output

    def test_resuming_a_pair_never_opened_is_refused(self, initialised: Invoke) -> None:
        result = initialised("book", "pairs", "resume", "BTC-EUR")
        assert result.exit_code == 1
        assert "never opened" in result.stderr

    def test_table_lists_the_grid_when_run_without_json(self, initialised: Invoke) -> None:
        result = initialised("book", "pairs", "list")
        assert result.exit_code == 0
        assert "BTC-USD" in result.stdout


class TestBooksAndOrders:
    def test_depth_shows_aggregated_levels(self, book: tuple[Invoke, Node]) -> None:
        dpg, node = book
        _place(node, "bob", Side.SELL, "0.3", "61000")
        _place(node, "bob", Side.SELL, "0.2", "61000")
        _place(node, "alice", Side.BUY, "0.1", "59000")

        as_json = json.loads(dpg("book", "depth", "BTC-USD", "--json").stdout)
        table = dpg("book", "depth", "BTC-USD")

        assert as_json == {
            "pair": "BTC-USD", "status": "open", "seq": 3,
            "bids": [["59000", "0.10000000"]], "asks": [["61000", "0.50000000"]],
        }
        assert "61000" in table.stdout
        assert dpg("book", "depth", "BTC-EUR").exit_code == 1  # configured, never opened

    def test_orders_lists_open_orders_and_filters(self, book: tuple[Invoke, Node]) -> None:
        dpg, node = book
        sell = _place(node, "bob", Side.SELL, "0.3", "61000")
        _place(node, "alice", Side.BUY, "0.1", "61000")

        open_orders = json.loads(dpg("book", "orders", "--json").stdout)
        every = json.loads(dpg("book", "orders", "--status", "all", "--json").stdout)
        alices = json.loads(dpg("book", "orders", "--user", "alice", "--status", "all",
                                "--json").stdout)

        assert [o["id"] for o in open_orders] == [sell]
        assert len(every) == 2
        assert [(o["userId"], o["status"]) for o in alices] == [("alice", "filled")]
        assert "0.30000000" in dpg("book", "orders").stdout

    def test_cancel_all_asks_first_and_releases_holds(self, book: tuple[Invoke, Node]) -> None:
        dpg, node = book
        _place(node, "bob", Side.SELL, "0.3", "61000")
        _place(node, "alice", Side.BUY, "0.1", "59000")

        declined = dpg("book", "cancel-all", "BTC-USD", input="n\n")
        only_bob = dpg("book", "cancel-all", "BTC-USD", "--user", "bob", "--yes", "--json")
        rest = dpg("book", "cancel-all", "BTC-USD", input="y\n")

        assert declined.exit_code == 1
        assert [o["userId"] for o in json.loads(only_bob.stdout)] == ["bob"]
        assert "cancelled 1 order(s)" in rest.stdout
        held = json.loads(
            dpg("ledger", "balances", "--owner-type", "user", "--json").stdout
        )
        assert {a["balance"] for a in held if a["kind"] == "held"} == {"0.00", "0.00000000"}
        assert json.loads(dpg("ledger", "verify", "--json").stdout)["ok"] is True
