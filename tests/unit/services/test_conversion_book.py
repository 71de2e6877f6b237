"""The book route over the real trading service: a conversion as one bounded market order.

Book BTC-USD (tick 1, lot 0.01, taker fee 0.2 %): a market maker bids 59,900 and asks
60,100 for 1 BTC each, so the mid price is 60,000, the same as the fixed rate. The
slippage bound is 1 %.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage.conversion import SqlConversionStore
from dpgnode.domain.conversion.limits import LimitKind, Period
from dpgnode.domain.conversion.quote import Quote, QuoteStatus, Route
from dpgnode.errors import (
    ConflictError,
    InsufficientFundsError,
    PolicyDeniedError,
    ValidationError,
)
from dpgnode.node import Node, build_node
from dpgnode.ports.trading import OrderType, Side
from dpgnode.services.conversion import QuoteRequest
from dpgnode.services.conversion.execution import Execution
from dpgnode.services.trading import OrderRequest
from dpgnode.settings import load_settings
from tests.support.conversion import balance, conversion_settings, fund, user

PAIR = "BTC-USD"


def maker_order(node: Node, side: Side, price: str, quantity: str = "1") -> None:
    node.trading.place(
        OrderRequest(
            user_id="mm",
            pair=PAIR,
            side=side,
            type=OrderType.LIMIT,
            quantity=quantity,
            price=price,
        )
    )


@pytest.fixture
def book(tmp_path: Path, clock: FixedClock) -> Iterator[Node]:
    settings = load_settings(
        tmp_path, overrides={"conversion": conversion_settings(max_slippage_bps=100)}
    )
    node = build_node(settings, clock=clock, upgrade=True)
    node.trading.open_pair(PAIR)
    fund(node, user("mm", "BTC"), "10")
    fund(node, user("mm", "USD"), "1000000")
    maker_order(node, Side.BUY, "59900")
    maker_order(node, Side.SELL, "60100")
    fund(node, user("alice", "BTC"), "1")
    fund(node, user("bob", "USD"), "10000")
    yield node
    report = node.verify_ledger()
    node.close()
    assert report.ok, report.problems


def book_quote(node: Node, owner: str, frm: str, to: str, amount: str) -> str:
    request = QuoteRequest(owner, frm, to, from_amount=amount, route=Route.BOOK)
    return node.conversion.quote(request).id


class TestBookQuote:
    def test_quote_estimates_at_the_mid_and_bounds_by_the_slippage_when_made(
        self, book: Node
    ) -> None:
        quote = book.conversion.quote(
            QuoteRequest("alice", "BTC", "USD", from_amount="0.5", route=Route.BOOK)
        )
        assert quote.priced.mid_rate == 60000
        assert quote.rate_source == "median(book,fixed)"
        assert (str(quote.priced.buy), str(quote.priced.fee)) == ("30000.00 USD", "0.00000000 BTC")
        assert quote.worst_rate == 59400
        assert str(quote.min_buy) == "29700.00 USD"

    def test_quote_is_refused_when_it_fixes_the_received_amount(self, book: Node) -> None:
        request = QuoteRequest("alice", "BTC", "USD", to_amount="100", route=Route.BOOK)
        with pytest.raises(ValidationError) as info:
            book.conversion.quote(request)
        assert info.value.field == "toAmount"


class TestBookExecution:
    def test_market_sell_converts_at_the_bid_less_the_taker_fee_when_accepted(
        self, book: Node
    ) -> None:
        executed = book.conversion.execute("alice", book_quote(book, "alice", "BTC", "USD", "0.5"))
        conversion = executed.conversion
        # 0.5 BTC at the 59,900 bid = 29,950 USD, less the 0.2 % taker fee (59.90)
        assert (str(conversion.sell), str(conversion.buy)) == ("0.50000000 BTC", "29890.10 USD")
        assert conversion.order_id is not None
        assert conversion.entry_id is None
        assert balance(book, user("alice", "BTC")) == "0.50000000"
        assert balance(book, user("alice", "USD")) == "29890.10"
        order = book.trading.order(conversion.order_id)
        assert order.client_order_id == f"conversion:{conversion.quote_id}"

    def test_market_buy_spends_at_most_the_amount_sold_when_accepted(self, book: Node) -> None:
        executed = book.conversion.execute("bob", book_quote(book, "bob", "USD", "BTC", "6100"))
        conversion = executed.conversion
        # 0.1 BTC (whole lots the bound affords) at the 60,100 ask = 6,010 + 12.02 fee
        assert (str(conversion.sell), str(conversion.buy)) == ("6022.02 USD", "0.10000000 BTC")
        assert balance(book, user("bob", "USD")) == "3977.98"
        assert balance(book, user("bob", "BTC")) == "0.10000000"

    def test_second_acceptance_returns_the_same_conversion_when_repeated(self, book: Node) -> None:
        quote_id = book_quote(book, "alice", "BTC", "USD", "0.5")
        first = book.conversion.execute("alice", quote_id)
        again = book.conversion.execute("alice", quote_id)
        assert (first.created, again.created) == (True, False)
        assert again.conversion == first.conversion
        assert balance(book, user("alice", "BTC")) == "0.50000000"

    def test_acceptance_resumes_after_a_crash_between_order_and_record_when_retried(
        self, book: Node, clock: FixedClock
    ) -> None:
        quote_id = book_quote(book, "alice", "BTC", "USD", "0.5")
        store = SqlConversionStore(book.engine, book.assets)
        steps = Execution(store, book.assets, clock, "op")
        accepted = book.writer.run(lambda tx: steps.accept(tx, "alice", quote_id))
        assert isinstance(accepted, Quote)
        assert accepted.status is QuoteStatus.EXECUTING
        assert book.conversion.quote_of("alice", quote_id).status is QuoteStatus.EXECUTING
        # ... the process dies here, before the conversion is recorded; a retry resumes:
        executed = book.conversion.execute("alice", quote_id)
        assert executed.created
        assert str(executed.conversion.buy) == "29890.10 USD"
        assert len(book.trading.orders(user_id="alice")) == 1

    def test_nothing_filled_within_the_bound_fails_the_quote_and_moves_nothing_when_accepted(
        self, book: Node
    ) -> None:
        quote_id = book_quote(book, "alice", "BTC", "USD", "0.5")
        book.trading.cancel_all(PAIR, user_id="mm")
        maker_order(book, Side.BUY, "50000")  # the only bid is 17 % below the mid now
        with pytest.raises(PolicyDeniedError) as info:
            book.conversion.execute("alice", quote_id)
        assert info.value.details["rule"] == "slippage"
        assert book.conversion.quote_of("alice", quote_id).status is QuoteStatus.FAILED
        assert balance(book, user("alice", "BTC")) == "1.00000000"
        with pytest.raises(ConflictError):
            book.conversion.execute("alice", quote_id)

    def test_short_balance_reopens_the_quote_and_releases_the_reservation_when_refused(
        self, book: Node
    ) -> None:
        book.conversion.limits.set("carol", LimitKind.ASSET, "BTC", Period.DAY, "1")
        quote_id = book_quote(book, "carol", "BTC", "USD", "0.5")
        with pytest.raises(InsufficientFundsError):
            book.conversion.execute("carol", quote_id)
        assert book.conversion.quote_of("carol", quote_id).status is QuoteStatus.OPEN
        assert book.conversion.limits.status("carol")[0].used == 0
        fund(book, user("carol", "BTC"), "0.5")
        assert book.conversion.execute("carol", quote_id).created

    def test_usage_counts_what_really_moved_when_the_order_filled(self, book: Node) -> None:
        book.conversion.limits.set("bob", LimitKind.ASSET, "USD", Period.DAY, "10000")
        book.conversion.execute("bob", book_quote(book, "bob", "USD", "BTC", "6100"))
        [status] = book.conversion.limits.status("bob")
        assert status.used == 602_202  # 6,022.02 USD sold, not the 6,100 quoted
