"""The dashboard's book from the feed, and its display helpers: pure, no app, no node."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dpgnode.client import models as m
from dpgnode.tui.book import BookState
from dpgnode.tui.formatting import bar, elide, short, when
from dpgnode.tui.screens.overview import alerts_of, ledger_totals
from dpgnode.tui.screens.wallets import asset_rows


def _book() -> BookState:
    book = BookState("BTC-USD")
    book.apply("snapshot", {"seq": 5, "bids": [["100", "1"], ["99", "2"]],
                            "asks": [["101", "3"]]})
    return book


class TestBookState:
    def test_delta_that_follows_on_changes_levels_when_applied(self) -> None:
        book = _book()
        assert book.apply("delta", {"seq": 6, "bids": [["100", "0"], ["98", "4"]],
                                    "asks": [["101", "1.5"]]})
        assert book.best_bids(5) == [("99", "2"), ("98", "4")]
        assert book.best_asks(5) == [("101", "1.5")]
        assert (book.seq, book.spread()) == (6, Decimal(2))

    def test_gap_is_reported_and_nothing_changes_when_a_delta_is_missing(self) -> None:
        book = _book()
        assert not book.apply("delta", {"seq": 7, "bids": [["100", "0"]], "asks": []})
        assert (book.seq, book.best_bids(1)) == (5, [("100", "1")])

    def test_old_delta_is_ignored_when_the_snapshot_already_covers_it(self) -> None:
        book = _book()
        assert book.apply("delta", {"seq": 5, "bids": [["100", "0"]], "asks": []})
        assert book.best_bids(1) == [("100", "1")]

    def test_delta_before_any_snapshot_asks_for_one_when_the_book_is_empty(self) -> None:
        assert not BookState("BTC-USD").apply("delta", {"seq": 1, "bids": [], "asks": []})

    def test_prices_sort_by_value_not_text_when_levels_differ_in_length(self) -> None:
        book = BookState("X")
        book.load(1, [["9.5", "1"], ["10", "1"]], [["100", "1"], ["99.9", "1"]])
        assert [p for p, _ in book.best_bids(2)] == ["10", "9.5"]
        assert [p for p, _ in book.best_asks(2)] == ["99.9", "100"]


class TestFormatting:
    @pytest.mark.parametrize(("fraction", "expected"), [
        (Decimal(0), "    "), (Decimal(1), "████"), (Decimal("0.5"), "██  "),
        (Decimal("0.53125"), "██▏ "), (Decimal(2), "████"),
    ])
    def test_bar_fills_in_eighths_when_given_a_fraction(
        self, fraction: Decimal, expected: str
    ) -> None:
        assert bar(fraction, 4) == expected

    def test_ids_and_addresses_keep_head_and_tail_when_shortened(self) -> None:
        assert short("po_00000000000000000000000000000066") == "po_…000066"
        assert short("st_1") == "st_1"
        assert elide("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 18) == "bcrt1qw508d6…gt080"
        assert len(elide("x" * 40, 18)) == 18

    def test_times_are_utc_when_shown(self) -> None:
        assert when(1767225600) == "2026-01-01 00:00:00"
        assert when(None) == "-"


def _account(asset: str, kind: str, balance: str) -> m.Account:
    return m.Account(account=f"user:u:{asset}:{kind}", owner_type="user", owner_id="u",
                     asset=asset, kind=kind, balance=balance)


def test_ledger_sums_are_exact_decimals_when_amounts_have_many_places() -> None:
    accounts = [
        _account("ETH", "available", "0.100000000000000001"),
        _account("ETH", "held", "0.2"),
        _account("ETH", "world", "-0.300000000000000001"),
    ]
    assert ledger_totals(accounts) == {
        "ETH": (Decimal("0.300000000000000001"), Decimal("0.2"))}
    assert asset_rows(accounts) == [("ETH", "0.100000000000000001", "0.2",
                                     "0.300000000000000001", "0.300000000000000001")]


def test_alerts_name_what_needs_a_person_worst_first_when_several_apply() -> None:
    gap = m.AddressGap(account_id="ka_1", keychain_id="kc_1", scheme="bip84",
                       network="regtest", issued=30, used=1, last_used_index=0,
                       trailing_unused=29, gap=29, gap_limit_needed=29, configured_limit=20,
                       alert=True)
    data = {
        "verify": m.LedgerReport(ok=False, entries=1, accounts=2, problems=["asset BTC: off"]),
        "gaps": [gap], "info": m.ServerInfo(version="x", fully_synched=False),
        "failed": [], "pending": [], "pairs": [],
    }
    alerts = [text for _, text in alerts_of(data)]
    assert alerts == ["ledger does not verify: asset BTC: off",
                      "address gap 29 on ka_1 exceeds 20"]
