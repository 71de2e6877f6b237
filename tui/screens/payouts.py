"""Payouts: the approval queue; approve or reject after seeing the policy that applies.

Approving and rejecting go through the API as the operator whose token the dashboard was
given (``DPG_OPERATOR_TOKEN`` or ``--operator-token-file``), so the four-eyes rule holds:
the requester's own approval never counts. The API process holds no signer, so the
approval that would complete a payout's set cannot be given here: the dialog says so and
names the command to run where the HSM is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from dpgnode.client import models as m

from ..formatting import elide, short, when
from .base import AreaScreen
from .dialogs import ConfirmScreen

FILTERS = ("pending_approval", "signing", "signed", "broadcast", "failed", "cancelled", None)


def policy_table(payout: m.Payout) -> Table:
    """The payout and the policy of its asset, as the confirmation shows them."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("Payout", f"{payout.id} ({payout.status})")
    table.add_row("Amount", f"{payout.amount} {payout.asset}")
    table.add_row("To", payout.destination)
    table.add_row("From", f"{payout.debit} via {payout.source}")
    table.add_row("Requested", f"by {payout.requested_by_name or payout.requested_by} at "
                               f"{when(payout.created_time)}")
    approved = ", ".join(a.operator_name or a.operator_id for a in payout.approvals) or "none"
    table.add_row("Approvals", f"{len(payout.approvals)} of {payout.approvals_required} "
                               f"({approved}); {payout.approvals_missing} missing")
    if payout.memo:
        table.add_row("Memo", payout.memo)
    policy = payout.policy
    if policy is None:
        table.add_row("Policy", Text(f"none: payouts of {payout.asset} are disabled", "red"))
        return table
    table.add_row("Policy", f"approvals above {policy.approval_threshold or 'never'}: "
                            f"{policy.approvals_required} operator(s), never the requester")
    limits = [f"per payout {policy.max_per_transaction or '∞'}",
              f"per day {policy.max_per_day or '∞'}",
              f"{policy.max_payouts_per_hour or '∞'}/hour"]
    table.add_row("Limits", ", ".join(limits))
    listed = Text("on the allow-list", "green") if policy.destination_allowed else (
        Text("NOT on the allow-list", "bold red") if policy.require_allowlist
        else Text("not listed (allow-list not required)", "yellow"))
    table.add_row("Destination", listed)
    return table


class PayoutsScreen(AreaScreen):
    AREA = "Payouts"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve"),
        Binding("x", "reject", "Reject"),
        Binding("f", "cycle_filter", "Filter"),
    ]
    DEFAULT_CSS = """
    PayoutsScreen Vertical { height: 1fr; }
    PayoutsScreen #payouts { height: auto; max-height: 40%; min-height: 4; }
    PayoutsScreen #detail { height: 1fr; overflow-y: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.filter: str | None = "pending_approval"
        self.payouts: dict[str, m.Payout] = {}

    def body(self) -> Iterable[Widget]:
        with Vertical():
            table: DataTable[str] = DataTable(id="payouts", cursor_type="row")
            table.add_class("panel")
            yield table
            detail = Static("", id="detail", classes="panel")
            detail.border_title = "Selected payout"
            yield detail

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#payouts", DataTable).add_columns(
            "Payout", "Status", "Amount", "To", "Approvals")
        self._title()

    def _title(self) -> None:
        table = self.query_one("#payouts", DataTable)
        table.border_title = f"Payouts: {self.filter or 'all'} (f: filter)"

    async def load(self) -> None:
        found = await self.client.payouts(status=self.filter, limit=100)
        self.payouts = {p.id: p for p in found}
        table = self.query_one("#payouts", DataTable)
        selected = self.selected()
        table.clear()
        for p in found:
            table.add_row(short(p.id), p.status, f"{p.amount} {p.asset}",
                          elide(p.destination, 18),
                          f"{len(p.approvals)}/{p.approvals_required}", key=p.id)
        if selected is not None and selected.id in self.payouts:
            table.move_cursor(row=table.get_row_index(selected.id))
        table.border_subtitle = f"{len(found)} shown" if found else "none"
        self._show_detail()

    def selected(self) -> m.Payout | None:
        table = self.query_one("#payouts", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.payouts.get(key or "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        payout = self.selected()
        detail = self.query_one("#detail", Static)
        detail.update(policy_table(payout) if payout else Text("no payout selected", "dim"))

    def action_cycle_filter(self) -> None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        self._title()
        self.reload()

    def _actionable(self) -> tuple[m.Payout, str] | None:
        payout = self.selected()
        if payout is None:
            self.notify("select a payout first", severity="warning")
            return None
        if payout.status != "pending_approval":
            self.notify(f"{payout.id} is {payout.status}: only payouts awaiting approval can "
                        "be approved or rejected", severity="warning")
            return None
        token = self.connection.operator_token
        if not token:
            self.notify("approving needs your operator token: start the dashboard with "
                        "DPG_OPERATOR_TOKEN or --operator-token-file", title="No operator token",
                        severity="error")
            return None
        return payout, token

    def action_approve(self) -> None:
        found = self._actionable()
        if found is None:
            return
        payout, token = found
        if payout.approvals_missing <= 1:
            _ = self.app.push_screen(ConfirmScreen(
                "This approval completes the payout and signs it",
                Group(policy_table(payout), Text.assemble(
                    "\nSigning needs the HSM, which the node's API never reaches. Approve it "
                    "where the signer runs:\n", (f"  dpg payout approve {payout.id}", "bold"))),
                confirm=None,
            ))
            return

        def done(reason: str | None) -> None:
            if reason is not None:
                call = partial(self.client.approve_payout, payout.id, token)
                self.spawn("act", "Not approved", partial(self._act, call, "approved"))

        _ = self.app.push_screen(ConfirmScreen(f"Approve payout {payout.id}?", policy_table(payout),
                                           confirm="Approve"), done)

    def action_reject(self) -> None:
        found = self._actionable()
        if found is None:
            return
        payout, token = found

        def done(reason: str | None) -> None:
            if reason is not None:
                call = partial(self.client.reject_payout, payout.id, token, reason)
                self.spawn("act", "Not rejected", partial(self._act, call, "rejected"))

        _ = self.app.push_screen(ConfirmScreen(
            f"Reject payout {payout.id}? It is cancelled and its hold released",
            policy_table(payout), confirm="Reject", ask_reason=True), done)

    async def _act(self, call: Callable[[], Awaitable[m.Payout]], verb: str) -> None:
        payout = await call()
        self.notify(f"{payout.id} {verb}: {len(payout.approvals)} of "
                    f"{payout.approvals_required} approvals, now {payout.status}",
                    title=f"Payout {verb}")
        self.reload()
