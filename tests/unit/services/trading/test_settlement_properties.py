"""Property: any sequence of orders, cancels and expiries keeps the exchange's books straight.

Random sequences of limit, market and stop orders (stop-loss and take-profit, stop-limit
and stop-market), cancels and expiries run through the trading service of a real SQLite
node, on a FIFO pair with maker and taker fees (BTC-USD) and a pro-rata pair without maker
fee (USDC-USDT). Stops fire inside the commands whose trades move the last price, so their
trades are among the trades the placing command reports. After every
step (``check_invariants``): the ledger verifies, so every trade entry sums to zero per
asset; every user's held balance equals what their open orders and pending stops still hold, and
each hold covers what its order may need (a pending stop: its quantity, or its value at its
limit or protection price plus the worst fee); books equal their stored open orders. At the end an
independent model recomputes every balance from the trades the service reported, and every
order's fee from its filled value. Hypothesis prints the failing steps; ``--hypothesis-seed``
reproduces a run.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.domain.exchange import TimeInForce
from dpgnode.domain.ledger import AccountKind, OwnerType
from dpgnode.errors import ConflictError, InsufficientFundsError, ValidationError
from dpgnode.node import Node
from dpgnode.ports.trading import OrderStatus, Side, TradeRecord
from dpgnode.services.trading.commands import Placed
from tests.conftest import open_node
from tests.support.trading import check_invariants, fund_many, place

USERS = ("u0", "u1", "u2")  # each example prefixes them, so examples never share a user
_examples = iter(range(1, 10**9))
PAIRS = {
    "BTC-USD": ((59_000, 61_000, 500), "0.01"),  # price range and step in ticks, lot
    "USDC-USDT": ((9_990, 10_010, 5), "0.01"),
}
FUNDS = {"USD": "60000", "BTC": "1", "USDC": "500", "USDT": "500"}

limit_orders = st.tuples(
    st.just("limit"), st.sampled_from(USERS), st.sampled_from(sorted(PAIRS)),
    st.sampled_from(["buy", "sell"]), st.integers(0, 1), st.integers(1, 40),
    st.sampled_from(["GTC", "GTC", "GTC", "IOC", "FOK"]), st.integers(0, 4).map(lambda n: n == 0),
)
market_orders = st.tuples(
    st.just("market"), st.sampled_from(USERS), st.sampled_from(sorted(PAIRS)),
    st.sampled_from(["buy", "sell"]), st.integers(1, 40),
)
stop_orders = st.tuples(
    st.just("stop"), st.sampled_from(USERS), st.sampled_from(sorted(PAIRS)),
    st.sampled_from(["buy", "sell"]), st.sampled_from(["stop_loss", "take_profit"]),
    st.integers(0, 4), st.integers(1, 40), st.sampled_from(["limit", "market"]),
    st.integers(0, 4),
)
"""A stop: trigger index, lots, stop-limit or stop-market, and its limit or protection index."""
cancels = st.tuples(st.just("cancel"), st.integers(0, 100))
expiries = st.tuples(st.just("expire"), st.integers(1, 3))
_KINDS = (limit_orders,) * 6 + (market_orders,) * 2 + (stop_orders,) * 2 + (cancels, expiries)
steps = st.lists(
    st.integers(0, len(_KINDS) - 1).flatmap(lambda n: _KINDS[n]), min_size=8, max_size=30
)


def _price(pair: str, index: int) -> str:
    (low, high, step), _ = PAIRS[pair]
    ticks = min(low + index * step, high)
    return str(ticks) if pair == "BTC-USD" else f"{ticks // 10000}.{ticks % 10000:04d}"


def _quantity(pair: str, lots: int) -> str:
    return f"{lots // 100}.{lots % 100:02d}"


class Model:
    """Balances recomputed from the funding and the trades the service reported."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], int] = defaultdict(int)
        self.fees: dict[str, int] = defaultdict(int)

    def trade(self, node: Node, trade: TradeRecord) -> None:
        pair = node.trading.pair(trade.pair)
        base, quote = pair.base.code, pair.quote.code
        self.totals[(trade.buyer_id, base)] += trade.quantity
        self.totals[(trade.buyer_id, quote)] -= trade.value + trade.buyer_fee
        self.totals[(trade.seller_id, base)] -= trade.quantity
        self.totals[(trade.seller_id, quote)] += trade.value - trade.seller_fee
        self.fees[quote] += trade.buyer_fee + trade.seller_fee


def _run_step(
    node: Node, clock: FixedClock, step: tuple, users: dict[str, str],  # type: ignore[type-arg]
    placed: list[str], model: Model,
) -> None:
    kind = step[0]
    try:
        if kind == "limit":
            _, user, pair, side, price, lots, tif, expiring = step
            expires = clock.now() + timedelta(minutes=2) if expiring and tif == "GTC" else None
            result: Placed = place(
                node, users[user], side, _quantity(pair, lots), _price(pair, price), pair=pair,
                time_in_force=TimeInForce(tif), expires_at=expires,
            )
        elif kind == "market":
            _, user, pair, side, lots = step
            result = place(
                node, users[user], side, _quantity(pair, lots), pair=pair, type="market"
            )
        elif kind == "stop":
            _, user, pair, side, stop_kind, trigger, lots, execution, bound = step
            price = _price(pair, bound)
            result = place(
                node, users[user], side, _quantity(pair, lots), pair=pair, type=stop_kind,
                trigger_price=_price(pair, trigger),
                price=price if execution == "limit" else None,
                protection_price=price if execution == "market" and side == "buy" else None,
            )
        elif kind == "cancel":
            if placed:
                order = node.trading.order(placed[step[1] % len(placed)])
                node.trading.cancel(order.id, order.user_id)
            return
        else:
            clock.advance(timedelta(minutes=step[1]))
            node.trading.expire_due()
            return
    except (InsufficientFundsError, ConflictError, ValidationError):
        return  # refusals are allowed; invariants must hold after them too
    placed.append(result.order.id)
    for trade in result.trades:
        model.trade(node, trade)


def _fees(node: Node) -> dict[str, int]:
    found = node.queries.accounts(OwnerType.OPERATOR.value, "op")
    return {a.ref.asset: a.balance for a in found if a.ref.kind is AccountKind.FEES}


def _check_model(node: Node, users: dict[str, str], model: Model, fees: dict[str, int]) -> None:
    for user in users.values():
        for asset, amount in FUNDS.items():
            funded = int(amount) * 10 ** node.assets.require(asset).decimals
            account = node.queries.accounts(OwnerType.USER.value, user, asset)
            total = sum(a.balance for a in account)
            assert total == funded + model.totals[(user, asset)], (user, asset)
    now = _fees(node)
    for asset, collected in model.fees.items():
        assert now.get(asset, 0) - fees.get(asset, 0) == collected, asset
    for user in users.values():
        for order in node.trading.orders(user_id=user, limit=100):
            pair = node.trading.pair(order.pair)
            taker_value = order.quote_filled - order.maker_quote
            expected = pair.taker_fee.of(taker_value) + pair.maker_fee.of(order.maker_quote)
            assert order.fee_paid == expected, order
            if order.status is OrderStatus.FILLED:
                assert order.filled == order.quantity
            assert order.side in (Side.BUY, Side.SELL)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with both pairs open, copied for each example (cheaper than
    migrating, and each example starts from an empty exchange)."""
    data_dir = tmp_path_factory.mktemp("trading-template")
    path = data_dir / "dpg.sqlite3"
    node = open_node(f"sqlite+pysqlite:///{path}", data_dir, FixedClock())
    try:
        for symbol in PAIRS:
            node.trading.open_pair(symbol)
    finally:
        node.close()
    return path


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(
    max_examples=30, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_ledger_and_holds_stay_exact_when_orders_arrive_in_any_sequence(
    template: Path, tmp_path: Path, steps: list[tuple]  # type: ignore[type-arg]
) -> None:
    example = next(_examples)
    path = tmp_path / f"example-{example}.sqlite3"
    shutil.copyfile(template, path)
    clock = FixedClock()
    node = open_node(f"sqlite+pysqlite:///{path}", tmp_path, clock, upgrade=False)
    try:
        users = {user: f"x{example}-{user}" for user in USERS}
        for asset, amount in FUNDS.items():
            fund_many(node, list(users.values()), asset, amount)
        model = Model()
        placed: list[str] = []
        for step in steps:
            _run_step(node, clock, step, users, placed, model)
            check_invariants(node)
        _check_model(node, users, model, {})
        trades = len(node.trading.trades(limit=100))
        event(f"trades: {'none' if not trades else '1-5' if trades <= 5 else 'over 5'}")
        fired = [
            o for o in node.trading.orders(limit=100)
            if o.trigger_price is not None and o.status is not OrderStatus.PENDING_TRIGGER
            and o.reason != "cancelled"
        ]
        event(f"stops fired: {'none' if not fired else 'some'}")
    finally:
        node.close()
