"""Overview: the node's health, chains, ledger, event queue, payouts, exchange and alerts.

Every panel comes from its own API call, made together; a panel whose call fails (a key
without that permission, a feature this node does not serve) says so and the others still
show. Alerts gather what needs a person: a ledger that does not verify, address pools past
their gap limit, payouts waiting for approval or failed, halted pairs, chains behind.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from dpgnode.client import models as m
from dpgnode.errors import DpgError

from ..connection import attempt, describe
from ..formatting import amount, dec, short
from .base import AreaScreen

Result = Any  # a model, a list of models, or the DpgError its call raised


def _grid(rows: Iterable[tuple[str, str | Text]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for name, value in rows:
        table.add_row(name, value)
    return table


def _failed(result: Result) -> Text | None:
    if isinstance(result, DpgError):
        return Text(describe(result), style="italic")
    return None


def _listing(result: Result, what: str) -> str:
    if isinstance(result, DpgError):
        return "not available on this node" if result.code == "not_found" else describe(result)
    return f"{len(result)} {what}"


def ledger_totals(accounts: list[m.Account]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per asset: what owners hold (available + held, outside world accounts) and the held part."""
    held: dict[str, Decimal] = defaultdict(Decimal)
    owned: dict[str, Decimal] = defaultdict(Decimal)
    for account in accounts:
        if account.kind == "world":
            continue
        owned[account.asset] += dec(account.balance)
        if account.kind == "held":
            held[account.asset] += dec(account.balance)
    return {asset: (owned[asset], held[asset]) for asset in sorted(owned)}


VERIFY_EVERY = 300.0
"""Seconds between ledger verifications: each walks the whole hash chain, too much work
for every refresh of a large ledger (``r`` forces one)."""


class OverviewScreen(AreaScreen):
    AREA = "Overview"
    DEFAULT_CSS = """
    OverviewScreen Horizontal { height: 1fr; }
    OverviewScreen Vertical { width: 1fr; height: 1fr; overflow-y: auto; }
    OverviewScreen .panel { height: auto; }
    """

    def body(self) -> Iterable[Widget]:
        with Horizontal():
            with Vertical():
                yield self._panel("node", "Node")
                yield self._panel("chains", "Chains")
                yield self._panel("ledger", "Ledger")
            with Vertical():
                yield self._panel("alerts", "Alerts")
                yield self._panel("queue", "Events and webhooks")
                yield self._panel("activity", "Payouts, exchange, invoices")

    def __init__(self) -> None:
        super().__init__()
        self._verified: tuple[float, Result] | None = None

    def action_reload(self) -> None:
        self._verified = None
        super().action_reload()

    async def _verify(self) -> Result:
        now = time.monotonic()
        if self._verified is None or now - self._verified[0] >= VERIFY_EVERY:
            self._verified = (now, await attempt(self.client.verify_ledger()))
        return self._verified[1]

    @staticmethod
    def _panel(name: str, title: str) -> Static:
        panel = Static("loading…", id=name, classes="panel")
        panel.border_title = title
        return panel

    async def load(self) -> None:
        c = self.client
        names = ("health", "info", "key", "verify", "accounts", "progress", "pending",
                 "failed", "pairs", "gaps", "stores")
        results = await asyncio.gather(
            attempt(c.health()), attempt(c.server_info()), attempt(c.current_key()),
            self._verify(), attempt(c.accounts()), attempt(c.event_progress()),
            attempt(c.payouts(status="pending_approval", limit=100)),
            attempt(c.payouts(status="failed", limit=100)), attempt(c.pairs()),
            attempt(c.address_gaps()), attempt(c.stores()),
        )
        data = dict(zip(names, results, strict=True))
        invoices, webhooks = await self._merchant(data["stores"])
        self._show_node(data)
        self._show_chains(data["info"])
        self._show_ledger(data["verify"], data["accounts"])
        self._show_queue(data["progress"], webhooks)
        self._show_activity(data, invoices)
        self._show_alerts(data)
        health = data["health"]
        if isinstance(health, DpgError):
            raise health

    async def _merchant(self, stores: Result) -> tuple[str, str]:
        """What the invoice and webhook listings of the first store say (404: not here)."""
        if isinstance(stores, DpgError) or not stores:
            return "no store to look at", "no store to look at"
        store = stores[0]
        invoices, webhooks = await asyncio.gather(
            attempt(self.client.invoices(store.id)), attempt(self.client.webhooks(store.id)))
        return (_listing(invoices, f"in {store.name}"),
                _listing(webhooks, f"endpoint(s) in {store.name}"))

    def _show_node(self, data: dict[str, Result]) -> None:
        health, info, key = data["health"], data["info"], data["key"]
        up = Text("down: " + describe(health), "red") if isinstance(health, DpgError) else (
            Text("up, synchronized", "green") if health.synchronized else Text("up, syncing",
                                                                                "yellow"))
        rows: list[tuple[str, str | Text]] = [("URL", self.connection.url), ("Status", up)]
        rows.append(("Version", _failed(info) or info.version))
        rows.append(("API key", _failed(key) or f"{key.label} ({short(key.api_key, 8)})"))
        self.query_one("#node", Static).update(_grid(rows))

    def _show_chains(self, info: Result) -> None:
        panel = self.query_one("#chains", Static)
        if isinstance(info, DpgError):
            panel.update(_failed(info) or "")
            return
        if not info.sync_status:
            panel.update(Text("not available on this node: it reports no chain status",
                              style="italic"))
            return
        panel.update(_grid(
            (s.payment_method_id, f"height {s.chain_height}, synced to "
             f"{s.sync_height if s.sync_height is not None else '-'}"
             f"{'' if s.available else ' (unavailable)'}")
            for s in info.sync_status
        ))

    def _show_ledger(self, verify: Result, accounts: Result) -> None:
        rows: list[tuple[str, str | Text]] = []
        if isinstance(verify, DpgError):
            rows.append(("Verify", describe(verify)))
        else:
            state = Text("balanced", "green") if verify.ok else Text(
                f"{len(verify.problems)} problem(s)", "red")
            rows.append(("Verify", state))
            rows.append(("Entries", f"{verify.entries} in {verify.accounts} accounts"))
        if isinstance(accounts, DpgError):
            rows.append(("Balances", describe(accounts)))
        else:
            for asset, (owned, held) in ledger_totals(accounts).items():
                rows.append((asset, f"{amount(owned)} (held {amount(held)})"))
        self.query_one("#ledger", Static).update(_grid(rows))

    def _show_queue(self, progress: Result, webhooks: str) -> None:
        panel = self.query_one("#queue", Static)
        if isinstance(progress, DpgError):
            panel.update(_failed(progress) or "")
            return
        rows: list[tuple[str, str | Text]] = [("Newest event", f"#{progress.newest_seq}")]
        rows += [(f"→ {s.sink}", f"{s.pending} pending (delivered #{s.delivered_seq})")
                 for s in progress.sinks]
        if not progress.sinks:
            rows.append(("Relay", "no sinks registered on this node"))
        rows.append(("Webhooks", webhooks))
        panel.update(_grid(rows))

    def _show_activity(self, data: dict[str, Result], invoices: str) -> None:
        pending, pairs = data["pending"], data["pairs"]
        rows: list[tuple[str, str | Text]] = [
            ("Payouts", _failed(pending) or f"{len(pending)} awaiting approval"),
        ]
        if isinstance(pairs, DpgError):
            rows.append(("Pairs", describe(pairs)))
        else:
            count: dict[str, int] = defaultdict(int)
            for pair in pairs:
                count[pair.status] += 1
            rows.append(("Pairs", f"{count['open']} open, {count['halted']} halted, "
                                  f"{count['closed']} closed"))
        rows.append(("Invoices", invoices))
        self.query_one("#activity", Static).update(_grid(rows))

    def _show_alerts(self, data: dict[str, Result]) -> None:
        alerts = list(alerts_of(data))
        panel = self.query_one("#alerts", Static)
        if not alerts:
            panel.update(Text("nothing needs attention", "green"))
            return
        panel.update(Text("\n").join(Text(f"• {text}", style) for style, text in alerts))


def alerts_of(data: dict[str, Result]) -> Iterable[tuple[str, str]]:
    """``(style, text)`` of each condition that needs a person, worst first."""
    verify, gaps, info = data["verify"], data["gaps"], data["info"]
    if not isinstance(verify, DpgError) and not verify.ok:
        yield "bold red", f"ledger does not verify: {verify.problems[0]}"
    if not isinstance(info, DpgError):
        for s in info.sync_status:
            if not s.available or (s.sync_height is not None and s.sync_height < s.chain_height):
                yield "red", f"chain {s.payment_method_id} behind or unavailable"
    if not isinstance(gaps, DpgError):
        for gap in gaps:
            if gap.alert:
                yield "red", (f"address gap {gap.trailing_unused} on {gap.account_id} exceeds "
                              f"{gap.configured_limit}")
    failed, pending, pairs = data["failed"], data["pending"], data["pairs"]
    if not isinstance(failed, DpgError) and failed:
        yield "yellow", f"{len(failed)} failed payout(s)"
    if not isinstance(pending, DpgError) and pending:
        yield "yellow", f"{len(pending)} payout(s) awaiting approval"
    if not isinstance(pairs, DpgError):
        halted = [p.symbol for p in pairs if p.status == "halted"]
        if halted:
            yield "yellow", f"halted: {', '.join(halted[:4])}{'…' if len(halted) > 4 else ''}"
