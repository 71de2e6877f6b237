"""Quotes: lifetime, and the one balanced journal entry that executes them."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpgnode.domain.conversion.pricing import FixedSide, Terms, price_buy, price_sell
from dpgnode.domain.conversion.quote import (
    Quote,
    QuoteExpiredError,
    Route,
    conversion_draft,
    conversion_id_for,
    entry_key,
)
from dpgnode.domain.ledger import AccountKind, OwnerType, ensure_balanced, sum_by_asset
from dpgnode.domain.money import Amount, Asset
from dpgnode.errors import ConflictError, ValidationError
from tests.factories import T0

BTC = Asset("BTC", 8)
USD = Asset("USD", 2)
ETH = Asset("ETH", 18)
TERMS = Terms(50, 10)


def make_quote(
    amount: Amount | None = None,
    other: Asset = USD,
    mid: Fraction = Fraction(60000),
    terms: Terms = TERMS,
    side: FixedSide = FixedSide.SELL,
    lifetime: int = 30,
) -> Quote:
    offered = amount or Amount.parse("0.5", BTC)
    priced = (
        price_sell(offered, other, mid, terms)
        if side is FixedSide.SELL
        else price_buy(offered, other, mid, terms)
    )
    return Quote(
        id="cq_0001",
        owner_id="alice",
        side=side,
        route=Route.INVENTORY,
        priced=priced,
        terms=terms,
        rate_source="fixed",
        rate_observed_at=T0,
        reference=None,
        max_slippage_bps=100,
        created_at=T0,
        expires_at=T0 + timedelta(seconds=lifetime),
    )


class TestLifetime:
    def test_quote_is_acceptable_when_within_its_lifetime(self) -> None:
        last_moment = T0 + timedelta(seconds=29, microseconds=999_999)
        quote = make_quote()
        assert not quote.is_expired(last_moment)
        quote.ensure_acceptable(last_moment)  # does not raise
        assert quote.is_expired(last_moment + timedelta(microseconds=1))

    def test_quote_is_refused_with_its_own_code_when_its_lifetime_is_over(self) -> None:
        with pytest.raises(QuoteExpiredError) as info:
            make_quote().ensure_acceptable(T0 + timedelta(seconds=30))
        assert isinstance(info.value, ConflictError)
        assert info.value.code == "quote_expired"
        assert info.value.details["quoteId"] == "cq_0001"

    def test_quote_is_refused_when_it_expires_before_it_is_made(self) -> None:
        with pytest.raises(ValidationError):
            make_quote(lifetime=0)


class TestEntry:
    def test_entry_moves_sell_fee_and_buy_through_the_operator_when_executed(self) -> None:
        draft = conversion_draft(make_quote(), "cv_0001", "op")
        moves = {(p.account.code, p.units) for p in draft.postings}
        assert moves == {
            ("user:alice:BTC:available", -50_000_000),
            ("operator:op:BTC:inventory", 49_950_000),
            ("operator:op:BTC:fees", 50_000),
            ("operator:op:USD:inventory", -2_982_015),
            ("user:alice:USD:available", 2_982_015),
        }
        assert draft.idempotency_key == entry_key("cq_0001") == "conversion:cq_0001"
        assert draft.metadata["conversionId"] == "cv_0001"

    def test_fee_posting_is_left_out_when_the_fee_is_zero(self) -> None:
        draft = conversion_draft(make_quote(terms=Terms(50, 0)), "cv_0001", "op")
        assert len(draft.postings) == 4
        assert all(p.account.kind is not AccountKind.FEES for p in draft.postings)

    def test_conversion_id_derives_from_the_quote_id_when_named(self) -> None:
        assert conversion_id_for("cq_01ab") == "cv_01ab"


@given(
    units=st.integers(min_value=1, max_value=10**30),
    mid=st.fractions(
        min_value=Fraction(1, 10**6), max_value=Fraction(10**6), max_denominator=10**9
    ),
    spread=st.integers(0, 5000),
    fee=st.integers(0, 5000),
    side=st.sampled_from(FixedSide),
)
def test_entry_balances_per_asset_and_pays_the_user_exactly_the_quote_when_drafted(
    units: int, mid: Fraction, spread: int, fee: int, side: FixedSide
) -> None:
    amount = Amount(units, ETH) if side is FixedSide.SELL else Amount(units, USD)
    to = USD if side is FixedSide.SELL else ETH
    try:
        quote = make_quote(amount, to, mid, Terms(spread, fee), side)
    except ValidationError:
        return  # too small to buy one base unit, or beyond uint256
    draft = conversion_draft(quote, conversion_id_for(quote.id), "op")
    ensure_balanced(draft.postings)
    assert set(sum_by_asset(draft.postings).values()) == {0}
    to_user = [
        p.units for p in draft.postings if p.account.owner_type is OwnerType.USER and p.units > 0
    ]
    from_user = [
        p.units for p in draft.postings if p.account.owner_type is OwnerType.USER and p.units < 0
    ]
    assert to_user == [quote.priced.buy.units]  # never more than the quote says
    assert from_user == [-quote.priced.sell.units]
