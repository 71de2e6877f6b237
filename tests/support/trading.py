"""Helpers for trading tests: funding users, placing orders, checking the exchange's invariants."""

from __future__ import annotations

from collections import defaultdict

from dpgnode.domain.hold import HoldStatus
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.domain.money import parse_units
from dpgnode.node import Node
from dpgnode.ports.trading import OrderStatus, OrderType, Side
from dpgnode.services.trading import OrderRequest, Placed
from dpgnode.services.trading.book import aggregate
from dpgnode.services.trading.fees import limit_buy_hold

_funding = iter(range(1, 10**9))


def user_account(user: str, asset: str, kind: AccountKind = AccountKind.AVAILABLE) -> AccountRef:
    return AccountRef(OwnerType.USER, user, asset, kind)


def fund(node: Node, user: str, asset: str, amount: str) -> None:
    """Credit ``amount`` of ``asset`` to the user's available account (from the world)."""
    units = parse_units(amount, node.assets.require(asset).decimals)
    world = AccountRef(OwnerType.OPERATOR, "op", asset, AccountKind.WORLD)
    node.ledger.post(EntryDraft(
        f"fund-{user}-{asset}-{next(_funding)}",
        (Posting(world, -units), Posting(user_account(user, asset), units)),
        memo="test funding",
    ))


def fund_many(node: Node, users: list[str], asset: str, amount: str) -> None:
    """Credit ``amount`` to each user in one entry (one commit instead of one per user)."""
    units = parse_units(amount, node.assets.require(asset).decimals)
    world = AccountRef(OwnerType.OPERATOR, "op", asset, AccountKind.WORLD)
    node.ledger.post(EntryDraft(
        f"fund-many-{asset}-{next(_funding)}",
        (Posting(world, -units * len(users)),
         *(Posting(user_account(user, asset), units) for user in users)),
        memo="test funding",
    ))


def balance(node: Node, user: str, asset: str, kind: AccountKind = AccountKind.AVAILABLE) -> int:
    account = node.queries.account(user_account(user, asset, kind))
    return 0 if account is None else account.balance


def place(
    node: Node,
    user: str,
    side: str,
    quantity: str,
    price: str | None = None,
    *,
    pair: str = "BTC-USD",
    type: str = "limit",
    **extra: object,
) -> Placed:
    request = OrderRequest(
        user_id=user, pair=pair, side=Side(side), type=OrderType(type), quantity=quantity,
        price=price, **extra,  # type: ignore[arg-type]
    )
    return node.trading.place(request)


def check_invariants(node: Node) -> None:
    """Everything that must hold between trades, or an AssertionError saying what broke.

    - the ledger verifies (hash chain, Σ postings = 0 per asset, balances, open holds);
    - every held balance equals the remaining holds of the owner's open orders and pending
      stops, and each open order's hold covers what its remaining quantity may still need;
      a pending stop holds its quantity (sell) or its value at its limit or protection
      price plus the worst fee (buy);
    - no order is filled beyond its quantity; closed orders have no open hold;
    - each opened book in memory, when current, equals the aggregate of stored open orders
      and holds the stored pending stops in placement order.
    """
    report = node.verify_ledger()
    assert report.ok, report.problems
    held_needed: dict[tuple[str, str], int] = defaultdict(int)
    holds = {h.id: h for h in node.queries.open_holds()}
    for order in _all_orders(node):
        assert 0 <= order.filled <= order.quantity, order
        pair = node.trading.pair(order.pair)
        hold = holds.get(order.hold_id or "")
        if not order.is_live:
            assert hold is None, f"closed order {order.id} keeps an open hold"
            continue
        assert hold is not None, order
        assert hold.status is HoldStatus.OPEN, order
        asset = pair.quote.code if order.side is Side.BUY else pair.base.code
        held_needed[(order.user_id, asset)] += hold.remaining
        if order.status is OrderStatus.PENDING_TRIGGER:
            assert order.filled == 0, order
            assert order.trigger_price is not None, order
            lots = pair.lots_from_units(order.quantity)
            assert hold.remaining == (
                order.quantity if order.side is Side.SELL
                else limit_buy_hold(pair, pair.tick.to_steps(order.price or "0"), lots)
            ), order
            continue
        assert order.tif != "IOC", f"{order.id} rests but is immediate-or-cancel"
        if order.side is Side.SELL:
            assert hold.remaining == order.remaining, order
        else:
            # It rests: the rest fills as maker at its price, fees charged cumulatively.
            ticks = pair.tick.to_steps(order.price or "0")
            rest = pair.quote_units(ticks, pair.lots_from_units(order.remaining))
            fee = pair.maker_fee.of(order.maker_quote + rest) - pair.maker_fee.of(order.maker_quote)
            assert hold.remaining >= rest + fee, order
            first_hold = limit_buy_hold(pair, ticks, pair.lots_from_units(order.quantity))
            assert hold.remaining <= first_hold, order
    for account in node.queries.accounts():
        if account.ref.owner_type is OwnerType.USER and account.ref.kind is AccountKind.HELD:
            key = (account.ref.owner_id, account.ref.asset)
            assert account.balance == held_needed.pop(key, 0), account
    assert not any(held_needed.values()), held_needed
    for pair, state in node.trading.pairs():
        if state is None:
            continue
        stored_state, orders = node.trading._store.book_snapshot(pair.symbol)
        assert stored_state is not None
        expected = aggregate(pair, orders, None)
        depth = node.trading.depth(pair.symbol, None)
        assert ((depth.bids, depth.asks), depth.seq) == (expected, stored_state.seq), pair.symbol
        book = node.trading._books[pair.symbol]
        if book.current(stored_state):
            assert book.live.depth() == expected, f"in-memory book of {pair.symbol} differs"
            pending = sorted(
                (o for o in _all_orders(node)
                 if o.pair == pair.symbol and o.status is OrderStatus.PENDING_TRIGGER),
                key=lambda o: o.priority,
            )
            assert [s.oid for s in book.live.stops()] == [o.id for o in pending], pair.symbol


def _all_orders(node: Node) -> list:  # type: ignore[type-arg]
    found: list = []  # type: ignore[type-arg]
    before = None
    while True:
        page = node.trading.orders(limit=100, before=before)
        found.extend(page)
        if len(page) < 100:
            return found
        before = page[-1].id
