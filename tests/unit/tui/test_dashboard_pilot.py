"""The dashboard driven by key presses against a real node served over HTTP.

Each test reads the effect on the node itself (approvals recorded, holds released, pairs
halted), not only on the screen: the dashboard acts through the API or not at all.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from dpgnode.domain.custody.payout import PayoutStatus
from dpgnode.domain.ledger import AccountKind
from dpgnode.ports.trading import PairStatus
from dpgnode.tui.app import DARK, LIGHT
from dpgnode.tui.screens.dialogs import ConfirmScreen, HelpScreen
from dpgnode.tui.screens.events import EventsScreen
from dpgnode.tui.screens.exchange import ExchangeScreen
from dpgnode.tui.screens.merchant import InvoicesScreen, WebhooksScreen
from dpgnode.tui.screens.overview import OverviewScreen
from dpgnode.tui.screens.payouts import PayoutsScreen
from dpgnode.tui.screens.wallets import WalletsScreen
from tests.support.dashboard import DEBIT
from tests.unit.tui.conftest import Dash, settle

pytestmark = pytest.mark.anyio
SIZE = (80, 24)


def _text(widget: Static) -> str:
    """What a Static shows, as plain text (its content may be a Rich renderable)."""
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


async def _select(pilot: Pilot[None], table: DataTable[str], key: str) -> None:
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()


class TestNavigation:
    async def test_number_keys_show_every_area_when_pressed_in_turn(self, dash: Dash) -> None:
        app = dash.app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, OverviewScreen)
            for key, screen in (("2", WalletsScreen), ("3", PayoutsScreen),
                                ("4", ExchangeScreen), ("5", EventsScreen),
                                ("6", InvoicesScreen), ("7", WebhooksScreen),
                                ("1", OverviewScreen)):
                await pilot.press(key)
                shown = await settle(pilot, screen)
                assert shown.sub_title == shown.AREA

    async def test_overview_shows_what_the_node_reports_when_loaded(self, dash: Dash) -> None:
        async with dash.app().run_test(size=SIZE) as pilot:
            screen = await settle(pilot, OverviewScreen)
            alerts = _text(screen.query_one("#alerts", Static))
            activity = _text(screen.query_one("#activity", Static))
            chains = _text(screen.query_one("#chains", Static))
        assert "2 payout(s) awaiting approval" in alerts
        assert "halted: ETH-USD" in alerts
        assert "1 open, 1 halted" in activity
        assert "Invoices not available on this node" in activity
        assert "not available on this node" in chains

    async def test_palette_runs_a_go_to_command_when_one_is_typed(self, dash: Dash) -> None:
        async with dash.app().run_test(size=SIZE) as pilot:
            await settle(pilot, OverviewScreen)
            await pilot.press("ctrl+p")
            await pilot.pause()
            assert isinstance(pilot.app.screen, CommandPalette)
            await pilot.press(*"go to wallets")
            await pilot.pause(0.3)  # the palette searches in a worker
            await pilot.press("enter")
            await settle(pilot, WalletsScreen)

    async def test_help_opens_and_closes_when_question_mark_then_escape(self, dash: Dash) -> None:
        async with dash.app().run_test(size=SIZE) as pilot:
            await settle(pilot, OverviewScreen)
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(pilot.app.screen, HelpScreen)
            await pilot.press("escape")
            await settle(pilot, OverviewScreen)

    async def test_theme_switches_between_dark_and_light_when_t_is_pressed(
        self, dash: Dash
    ) -> None:
        async with dash.app().run_test(size=SIZE) as pilot:
            await settle(pilot, OverviewScreen)
            assert pilot.app.theme == DARK
            await pilot.press("t")
            assert pilot.app.theme == LIGHT
            await pilot.press("t")
            assert pilot.app.theme == DARK

    async def test_wallets_show_ledger_totals_and_address_gaps_when_loaded(
        self, dash: Dash
    ) -> None:
        async with dash.app(start="wallets").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, WalletsScreen)
            balances = screen.query_one("#balances", DataTable)
            btc = balances.get_row("BTC")
            gaps = screen.query_one("#gaps", DataTable)
        # The seed funds 5 BTC to a trader and 3 BTC to the shop; 0.75 BTC of payouts and
        # 2.1 BTC of resting sell orders are held.
        assert btc == ["BTC", "5.15000000", "2.85000000", "8.00000000", "8.00000000"]
        assert gaps.row_count == 1
        assert gaps.get_row_at(0)[2:6] == ["4", "1", "2", "2"]


class TestPayouts:
    async def test_approval_is_recorded_when_confirmed_in_the_dialog(self, dash: Dash) -> None:
        big = dash.seed.payouts["big"]
        async with dash.app(operator="bob", start="payouts").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, PayoutsScreen)
            await _select(pilot, screen.query_one("#payouts", DataTable), big)
            await pilot.press("a")
            await pilot.pause()
            dialog = pilot.app.screen
            assert isinstance(dialog, ConfirmScreen)
            shown = _text(dialog.query_one("#body", Static))
            assert "0.50000000 BTC" in shown
            assert "2 operator(s), never the requester" in shown
            assert "on the allow-list" in shown
            await pilot.press("y")
            await settle(pilot, PayoutsScreen)
        approvers = [op for op, _ in dash.node.custody.payouts.approvals(big)]
        names = {op.id: op.name for op in dash.node.custody.operators.operators()}
        assert [names[op] for op in approvers] == ["bob"]
        assert dash.node.custody.payouts.payout(big).status is PayoutStatus.PENDING_APPROVAL

    async def test_nothing_is_approved_when_the_dialog_is_cancelled(self, dash: Dash) -> None:
        big = dash.seed.payouts["big"]
        async with dash.app(operator="bob", start="payouts").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, PayoutsScreen)
            await _select(pilot, screen.query_one("#payouts", DataTable), big)
            await pilot.press("a")
            await pilot.pause()
            await pilot.press("escape")
            await settle(pilot, PayoutsScreen)
        assert dash.node.custody.payouts.approvals(big) == []

    async def test_final_approval_is_refused_with_the_command_to_run_when_it_would_sign(
        self, dash: Dash
    ) -> None:
        half = dash.seed.payouts["half"]  # carol approved; one more completes the set
        async with dash.app(operator="alice", start="payouts").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, PayoutsScreen)
            await _select(pilot, screen.query_one("#payouts", DataTable), half)
            await pilot.press("a")
            await pilot.pause()
            dialog = pilot.app.screen
            assert isinstance(dialog, ConfirmScreen)
            assert f"dpg payout approve {half}" in _text(dialog.query_one("#body", Static))
            assert not dialog.query("#confirm")
            await pilot.press("y")  # no confirm button: nothing to confirm
            await pilot.press("escape")
            await settle(pilot, PayoutsScreen)
        assert len(dash.node.custody.payouts.approvals(half)) == 1
        assert dash.node.custody.payouts.payout(half).status is PayoutStatus.PENDING_APPROVAL

    async def test_rejection_cancels_and_releases_the_hold_when_confirmed_with_a_reason(
        self, dash: Dash
    ) -> None:
        big = dash.seed.payouts["big"]
        held = dash.node.queries.account(DEBIT.sibling(AccountKind.HELD))
        assert held is not None
        async with dash.app(operator="carol", start="payouts").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, PayoutsScreen)
            await _select(pilot, screen.query_one("#payouts", DataTable), big)
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press(*"wrong address", "enter")
            await settle(pilot, PayoutsScreen)
            remaining = screen.query_one("#payouts", DataTable).row_count
        assert dash.node.custody.payouts.payout(big).status is PayoutStatus.CANCELLED
        after = dash.node.queries.account(DEBIT.sibling(AccountKind.HELD))
        assert after is not None
        assert after.balance == held.balance - 50_000_000
        assert remaining == 1  # the queue shows only what still awaits approval

    async def test_approving_explains_how_to_give_a_token_when_none_was_given(
        self, dash: Dash
    ) -> None:
        big = dash.seed.payouts["big"]
        async with dash.app(operator=None, start="payouts").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, PayoutsScreen)
            await _select(pilot, screen.query_one("#payouts", DataTable), big)
            await pilot.press("a")
            await pilot.pause()
            assert not isinstance(pilot.app.screen, ConfirmScreen)
            messages = [n.message for n in pilot.app._notifications]
        assert any("DPG_OPERATOR_TOKEN" in m for m in messages)
        assert dash.node.custody.payouts.approvals(big) == []

    async def test_requester_is_refused_with_the_rule_when_approving_their_own(
        self, dash: Dash
    ) -> None:
        big = dash.seed.payouts["big"]  # requested by alice
        async with dash.app(operator="alice", start="payouts").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, PayoutsScreen)
            await _select(pilot, screen.query_one("#payouts", DataTable), big)
            await pilot.press("a", "y")
            await settle(pilot, PayoutsScreen)
            status = _text(screen.query_one("#status", Static))
        assert "cannot approve" in status
        assert dash.node.custody.payouts.approvals(big) == []


class TestExchange:
    async def test_pair_is_halted_then_resumed_when_confirmed_with_keys(self, dash: Dash) -> None:
        async with dash.app(start="exchange").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, ExchangeScreen)
            assert screen.symbol == "BTC-USD"
            await pilot.press("h")
            await pilot.pause()
            assert isinstance(pilot.app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot, ExchangeScreen)
            assert _pair_status(dash, "BTC-USD") is PairStatus.HALTED
            assert screen.pairs["BTC-USD"].status == "halted"
            await pilot.press("u", "y")
            await settle(pilot, ExchangeScreen)
        assert _pair_status(dash, "BTC-USD") is PairStatus.OPEN

    async def test_book_follows_the_feed_when_an_order_arrives(self, dash: Dash) -> None:
        from tests.support.trading import place

        async with dash.app(start="exchange").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, ExchangeScreen)
            seq = screen.book.seq if screen.book else -1
            place(dash.node, "maker", "buy", "0.25", "59950")
            for _ in range(200):  # bounded: the feed brings the delta
                if screen.book is not None and "59950" in screen.book.bids:
                    break
                await pilot.pause(0.05)
            assert screen.book is not None
            assert screen.book.bids["59950"] == "0.25000000"
            assert screen.book.seq == seq + 1

    async def test_trades_reach_the_tape_live_when_an_order_matches(self, dash: Dash) -> None:
        from tests.support.trading import place

        async with dash.app(start="exchange").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, ExchangeScreen)
            before = len(screen.query_one("#tape").trades)  # type: ignore[attr-defined]
            place(dash.node, "taker", "buy", "0.05", "60100")
            tape = screen.query_one("#tape")
            for _ in range(200):
                if len(tape.trades) > before:  # type: ignore[attr-defined]
                    break
                await pilot.pause(0.05)
            newest = tape.trades[0]  # type: ignore[attr-defined]
        assert (newest.price, newest.quantity, newest.taker_side) == ("60100", "0.05000000",
                                                                       "buy")

    async def test_halting_a_halted_pair_asks_nothing_when_it_is_already_halted(
        self, dash: Dash
    ) -> None:
        async with dash.app(start="exchange").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, ExchangeScreen)
            await _select(pilot, screen.query_one("#pairs", DataTable), "ETH-USD")
            await settle(pilot, ExchangeScreen)
            await pilot.press("h")
            await pilot.pause()
            assert not isinstance(pilot.app.screen, ConfirmScreen)


def _pair_status(dash: Dash, symbol: str) -> PairStatus:
    states = {pair.symbol: state for pair, state in dash.node.trading.pairs()}
    state = states[symbol]
    assert state is not None
    return state.status


class TestEvents:
    async def test_filter_keeps_only_matching_types_when_a_prefix_is_entered(
        self, dash: Dash
    ) -> None:
        async with dash.app(start="events").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, EventsScreen)
            table = screen.query_one("#events", DataTable)
            assert table.row_count > 10
            await pilot.press("slash")
            assert isinstance(pilot.app.focused, Input)
            await pilot.press(*"custody.payout", "enter")
            await settle(pilot, EventsScreen)
            types = {table.get_row_at(i)[2] for i in range(table.row_count)}
        assert types == {"custody.payout_requested"}

    async def test_new_events_appear_when_the_node_writes_them(self, dash: Dash) -> None:
        async with dash.app(start="events").run_test(size=SIZE) as pilot:
            screen = await settle(pilot, EventsScreen)
            table = screen.query_one("#events", DataTable)
            before = table.row_count
            dash.node.trading.halt_pair("BTC-USD")
            screen.reload()  # what the screen's one-second timer does
            await settle(pilot, EventsScreen)
            last = table.get_row_at(table.row_count - 1)
        assert table.row_count == before + 1
        assert last[2:] == ["trading.pair", "trading:BTC-USD"]
