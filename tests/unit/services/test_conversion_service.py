"""ConversionService over a real SQLite node: quote, execute, limits, refusals.

Every test that moves value ends with the ledger verifying; refused commands leave no trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage import tables
from dpgnode.domain.conversion.limits import LimitKind, Period
from dpgnode.domain.conversion.quote import QuoteExpiredError, QuoteStatus, Route
from dpgnode.errors import (
    InsufficientFundsError,
    NotFoundError,
    PolicyDeniedError,
    UnavailableError,
    ValidationError,
)
from dpgnode.node import Node, build_conversion, build_node
from dpgnode.services.conversion import ConversionService, QuoteRequest
from dpgnode.settings import load_settings
from tests.support.conversion import balance, conversion_settings, fund, inventory, user

ALICE_BTC = user("alice", "BTC")
ALICE_USD = user("alice", "USD")


@pytest.fixture
def conv(tmp_path: Path, clock: FixedClock) -> Iterator[Node]:
    """A node with fixed rates; alice holds 1 BTC, the operator 100,000 USD and 10 BTC."""
    settings = load_settings(tmp_path, overrides={"conversion": conversion_settings()})
    node = build_node(settings, clock=clock, upgrade=True)
    fund(node, ALICE_BTC, "1")
    fund(node, inventory("USD"), "100000")
    fund(node, inventory("BTC"), "10")
    yield node
    report = node.verify_ledger()
    node.close()
    assert report.ok, report.problems


def sell(amount: str, owner: str = "alice", frm: str = "BTC", to: str = "USD") -> QuoteRequest:
    return QuoteRequest(owner, frm, to, from_amount=amount)


def count(node: Node, table: str) -> int:
    with node.engine.connect() as conn:
        found: int = conn.execute(
            select(func.count()).select_from(tables.metadata.tables[table])
        ).scalar_one()
    return found


class TestQuote:
    def test_quote_shows_rate_spread_fee_and_expiry_when_made(
        self, conv: Node, clock: FixedClock
    ) -> None:
        quote = conv.conversion.quote(sell("0.5"))
        assert quote.priced.mid_rate == 60000
        assert quote.priced.rate == 59700
        assert str(quote.priced.fee) == "0.00050000 BTC"
        assert str(quote.priced.buy) == "29820.15 USD"
        assert quote.reference is not None
        assert str(quote.reference) == "30000.00 USD"
        assert quote.expires_at == clock.now() + timedelta(seconds=30)
        assert conv.conversion.quote_of("alice", quote.id) == quote

    def test_quote_for_a_fixed_receive_amount_pays_exactly_that_when_made(self, conv: Node) -> None:
        quote = conv.conversion.quote(QuoteRequest("alice", "BTC", "USD", to_amount="1000"))
        assert str(quote.priced.buy) == "1000.00 USD"
        assert quote.priced.sell.units == 1_676_719

    def test_cross_rate_goes_through_the_pivot_when_no_direct_rate_exists(self, conv: Node) -> None:
        quote = conv.conversion.quote(sell("0.1", to="EUR"))
        assert quote.priced.mid_rate == Fraction(60000) / Fraction("1.08")
        assert quote.rate_source == "cross(BTC/USD,USD/EUR)"

    @pytest.mark.parametrize(
        ("request_", "field"),
        [
            (QuoteRequest("alice", "BTC", "USD"), "fromAmount"),
            (QuoteRequest("alice", "BTC", "USD", from_amount="1", to_amount="1"), "fromAmount"),
            (QuoteRequest("alice", "DOGE", "USD", from_amount="1"), "from"),
            (QuoteRequest("alice", "BTC", "BTC", from_amount="1"), "to"),
            (QuoteRequest("alice", "BTC", "USD", from_amount="0.000000001"), "fromAmount"),
            (QuoteRequest("alice", "BTC", "USD", from_amount="-1"), "fromAmount"),
            (QuoteRequest("al:ice", "BTC", "USD", from_amount="1"), "userId"),
            (QuoteRequest("alice", "BTC", "USD", from_amount="0.00000001"), "amount"),
        ],
    )
    def test_quote_is_refused_naming_the_field_when_the_request_is_bad(
        self, conv: Node, request_: QuoteRequest, field: str
    ) -> None:
        with pytest.raises(ValidationError) as info:
            conv.conversion.quote(request_)
        assert info.value.field == field

    def test_quote_is_refused_when_no_source_has_a_rate(self, conv: Node) -> None:
        with pytest.raises(UnavailableError):
            conv.conversion.quote(sell("1", frm="POL"))
        assert count(conv, "conversion_quotes") == 0

    def test_book_route_is_refused_naming_the_route_when_no_open_book_joins_the_assets(
        self, conv: Node
    ) -> None:
        request = QuoteRequest("alice", "BTC", "USD", from_amount="0.1", route=Route.BOOK)
        with pytest.raises(ValidationError) as info:
            conv.conversion.quote(request)
        assert info.value.field == "route"

    def test_book_route_is_refused_as_unavailable_when_the_node_has_no_books(
        self, conv: Node, clock: FixedClock
    ) -> None:
        service = build_conversion(
            conv.settings, conv.writer, conv.engine, conv.assets, clock, conv.ids
        )
        request = QuoteRequest("alice", "BTC", "USD", from_amount="0.1", route=Route.BOOK)
        with pytest.raises(UnavailableError) as info:
            service.quote(request)
        assert info.value.details["field"] == "route"


class TestExecute:
    def test_execution_moves_balances_exactly_in_one_entry_when_accepted(self, conv: Node) -> None:
        quote = conv.conversion.quote(sell("0.5"))
        executed = conv.conversion.execute("alice", quote.id)
        assert executed.created
        assert executed.conversion.entry_id is not None
        entry = conv.queries.entry(executed.conversion.entry_id)
        assert entry is not None
        assert entry.idempotency_key == f"conversion:{quote.id}"
        assert balance(conv, ALICE_BTC) == "0.50000000"
        assert balance(conv, ALICE_USD) == "29820.15"
        assert balance(conv, inventory("USD")) == "70179.85"
        assert balance(conv, inventory("BTC")) == "10.49950000"
        assert conv.conversion.quote_of(None, quote.id).status is QuoteStatus.EXECUTED
        assert conv.conversion.conversion_of("alice", executed.conversion.id) == executed.conversion

    def test_event_is_emitted_with_the_entry_when_executed(self, conv: Node) -> None:
        quote = conv.conversion.quote(sell("0.5"))
        conv.conversion.execute("alice", quote.id)
        events = [e for e in conv.outbox.pending("t", 100) if e.type == "conversion.executed"]
        assert len(events) == 1
        assert events[0].payload["toAmount"] == "29820.15"
        assert events[0].aggregate == "user:alice"

    def test_second_acceptance_returns_the_same_conversion_when_repeated(self, conv: Node) -> None:
        quote = conv.conversion.quote(sell("0.5"))
        first = conv.conversion.execute("alice", quote.id)
        again = conv.conversion.execute("alice", quote.id)
        by_operator = conv.conversion.execute(None, quote.id)
        assert not again.created
        assert not by_operator.created
        assert again.conversion == first.conversion == by_operator.conversion
        assert balance(conv, ALICE_BTC) == "0.50000000"
        assert count(conv, "conversions") == 1

    def test_executed_quote_is_returned_even_after_expiry_when_accepted_again(
        self, conv: Node, clock: FixedClock
    ) -> None:
        quote = conv.conversion.quote(sell("0.5"))
        first = conv.conversion.execute("alice", quote.id)
        clock.advance(timedelta(hours=1))
        assert conv.conversion.execute("alice", quote.id).conversion == first.conversion

    def test_expired_quote_is_refused_and_nothing_posted_when_accepted_late(
        self, conv: Node, clock: FixedClock
    ) -> None:
        quote = conv.conversion.quote(sell("0.5"))
        clock.advance(timedelta(seconds=30))
        entries = conv.queries.head()[0]
        with pytest.raises(QuoteExpiredError):
            conv.conversion.execute("alice", quote.id)
        assert conv.queries.head()[0] == entries
        assert balance(conv, ALICE_BTC) == "1.00000000"

    def test_quote_of_another_user_is_not_found_when_accepted(self, conv: Node) -> None:
        quote = conv.conversion.quote(sell("0.5"))
        with pytest.raises(NotFoundError):
            conv.conversion.execute("bob", quote.id)
        with pytest.raises(NotFoundError):
            conv.conversion.quote_of("bob", quote.id)
        with pytest.raises(NotFoundError):
            conv.conversion.execute("alice", "cq_nothing")

    def test_short_user_balance_is_refused_and_the_quote_stays_open_when_accepted(
        self, conv: Node
    ) -> None:
        quote = conv.conversion.quote(sell("1.2"))
        with pytest.raises(InsufficientFundsError) as info:
            conv.conversion.execute("alice", quote.id)
        assert info.value.details["account"] == ALICE_BTC.code
        assert "available BTC balance" in info.value.message
        assert count(conv, "conversions") == 0
        fund(conv, ALICE_BTC, "1")
        assert conv.conversion.execute("alice", quote.id).created

    def test_short_operator_inventory_is_refused_and_nothing_moves_when_accepted(
        self, conv: Node
    ) -> None:
        fund(conv, ALICE_BTC, "99")
        quote = conv.conversion.quote(sell("2"))  # ~119,400 USD > 100,000 in inventory
        with pytest.raises(InsufficientFundsError) as info:
            conv.conversion.execute("alice", quote.id)
        assert info.value.details["account"] == inventory("USD").code
        assert "inventory" in info.value.message
        assert balance(conv, ALICE_BTC) == "100.00000000"
        assert balance(conv, inventory("USD")) == "100000.00"


class TestLimits:
    def test_quote_is_refused_early_when_it_would_exceed_a_limit(self, conv: Node) -> None:
        conv.conversion.limits.set("alice", LimitKind.ASSET, "BTC", Period.DAY, "0.4")
        with pytest.raises(PolicyDeniedError) as info:
            conv.conversion.quote(sell("0.5"))
        assert info.value.details["remaining"] == "0.40000000"

    def test_execution_is_refused_when_a_limit_set_after_the_quote_no_longer_fits(
        self, conv: Node
    ) -> None:
        quote = conv.conversion.quote(sell("0.5"))
        conv.conversion.limits.set("alice", LimitKind.ASSET, "BTC", Period.DAY, "0.4")
        with pytest.raises(PolicyDeniedError):
            conv.conversion.execute("alice", quote.id)
        assert balance(conv, ALICE_BTC) == "1.00000000"

    def test_usage_before_a_limit_existed_counts_when_the_limit_is_set(self, conv: Node) -> None:
        conv.conversion.execute("alice", conv.conversion.quote(sell("0.3")).id)
        conv.conversion.limits.set("alice", LimitKind.ASSET, "BTC", Period.DAY, "0.5")
        [status] = conv.conversion.limits.status("alice")
        assert (status.used, status.remaining) == (30_000_000, 20_000_000)
        with pytest.raises(PolicyDeniedError):
            conv.conversion.quote(sell("0.3"))

    def test_usage_starts_again_when_the_period_resets(self, conv: Node, clock: FixedClock) -> None:
        conv.conversion.limits.set("alice", LimitKind.ASSET, "BTC", Period.DAY, "0.5")
        conv.conversion.execute("alice", conv.conversion.quote(sell("0.5")).id)
        with pytest.raises(PolicyDeniedError):
            conv.conversion.quote(sell("0.1"))
        clock.advance(timedelta(days=1))
        conv.conversion.execute("alice", conv.conversion.quote(sell("0.4")).id)
        assert conv.conversion.limits.status("alice")[0].used == 40_000_000

    def test_default_limit_applies_until_the_user_gets_their_own_when_set(self, conv: Node) -> None:
        limits = conv.conversion.limits
        limits.set(None, LimitKind.ASSET, "BTC", Period.MONTH, "0.1")
        with pytest.raises(PolicyDeniedError):
            conv.conversion.quote(sell("0.2"))
        limits.set("alice", LimitKind.ASSET, "BTC", Period.MONTH, "1")
        conv.conversion.quote(sell("0.2"))
        [status] = limits.status("alice")
        assert not status.limit.is_default
        limits.set("alice", LimitKind.ASSET, "BTC", Period.MONTH, None)
        assert limits.status("alice")[0].limit.is_default

    def test_value_limit_counts_every_conversion_in_the_reference_currency_when_set(
        self, conv: Node
    ) -> None:
        fund(conv, user("alice", "ETH"), "10")
        fund(conv, inventory("ETH"), "10")
        conv.conversion.limits.set("alice", LimitKind.VALUE, "USD", Period.DAY, "35000")
        conv.conversion.execute("alice", conv.conversion.quote(sell("0.5")).id)  # 30,000 USD
        with pytest.raises(PolicyDeniedError) as info:
            conv.conversion.quote(sell("2", frm="ETH", to="BTC"))  # 6,000 USD
        assert info.value.details["kind"] == "value"
        conv.conversion.quote(sell("1", frm="ETH", to="BTC"))  # 3,000 USD fits

    def test_value_limit_is_refused_when_not_in_the_reference_currency(self, conv: Node) -> None:
        with pytest.raises(ValidationError):
            conv.conversion.limits.set("alice", LimitKind.VALUE, "EUR", Period.DAY, "1")

    def test_limit_change_is_emitted_as_an_event_when_set(self, conv: Node) -> None:
        conv.conversion.limits.set("alice", LimitKind.ASSET, "BTC", Period.DAY, "0.5")
        events = [e for e in conv.outbox.pending("t", 100) if e.type == "conversion.limit_set"]
        assert events[-1].payload == {
            "userId": "alice",
            "kind": "asset",
            "asset": "BTC",
            "period": "day",
            "limit": "0.50000000",
        }


class FakeBooks:
    """A ``MidPriceSource`` with settable mid prices."""

    def __init__(self) -> None:
        self.mids: dict[tuple[str, str], Fraction] = {}

    def mid_price(self, base: str, quote: str) -> Fraction | None:
        return self.mids.get((base, quote))


class TestBookMidPrices:
    def service(self, conv: Node, clock: FixedClock, books: FakeBooks) -> ConversionService:
        return build_conversion(
            conv.settings, conv.writer, conv.engine, conv.assets, clock, conv.ids, books=books
        )

    def test_median_of_fixed_rate_and_book_mid_prices_the_quote_when_both_are_fresh(
        self, conv: Node, clock: FixedClock
    ) -> None:
        books = FakeBooks()
        books.mids[("BTC", "USD")] = Fraction(62000)
        quote = self.service(conv, clock, books).quote(sell("0.1"))
        assert quote.priced.mid_rate == 61000  # mean of the two middle values: 60000, 62000
        assert quote.rate_source == "median(book,fixed)"

    def test_book_mid_price_alone_prices_a_pair_without_a_fixed_rate_when_inverted(
        self, conv: Node, clock: FixedClock
    ) -> None:
        books = FakeBooks()
        books.mids[("USD", "POL")] = Fraction(2)  # 1 USD buys 2 POL
        rate = self.service(conv, clock, books).rate("POL", "USD")
        assert rate.rate == Fraction(1, 2)
        assert rate.source == "book"
