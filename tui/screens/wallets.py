"""Wallets: ledger balances per asset, and each address pool's gap.

Balances are the ledger's (every owner's available and held accounts, per asset). Chain
balances (hot, swept) and their reconciliation against the ledger need the chain watchers'
API; until the node serves it, the screen says so instead of guessing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal

from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from dpgnode.client import models as m
from dpgnode.errors import DpgError

from ..connection import attempt, describe
from ..formatting import amount, dec, short
from .base import AreaScreen


def asset_rows(accounts: list[m.Account]) -> list[tuple[str, str, str, str, str]]:
    """Per asset: available, held, total owned (outside world accounts), deposited.

    ``deposited`` is what came in from outside the ledger (minus the world accounts).
    """
    columns = {"available": 0, "held": 1, "world": 2}
    sums: dict[str, list[Decimal]] = {}
    for account in accounts:
        row = sums.setdefault(account.asset, [Decimal(0), Decimal(0), Decimal(0)])
        row[columns.get(account.kind, 0)] += dec(account.balance)
    return [
        (asset, amount(available), amount(held), amount(available + held), amount(-world))
        for asset, (available, held, world) in sorted(sums.items())
    ]


class WalletsScreen(AreaScreen):
    AREA = "Wallets"
    DEFAULT_CSS = """
    WalletsScreen Vertical { height: 1fr; }
    WalletsScreen #balances { height: auto; max-height: 45%; }
    WalletsScreen #gaps { height: auto; max-height: 45%; }
    WalletsScreen #chain { height: auto; }
    """

    def body(self) -> Iterable[Widget]:
        with Vertical():
            balances: DataTable[str] = DataTable(id="balances", cursor_type="row",
                                                 zebra_stripes=True)
            balances.border_title = "Ledger balances per asset"
            balances.add_class("panel")
            yield balances
            gaps: DataTable[str] = DataTable(id="gaps", cursor_type="row")
            gaps.border_title = "Address pools"
            gaps.add_class("panel")
            yield gaps
            chain = Static(
                "Chain balances (hot, swept) and reconciliation: not available on this node "
                "(it serves no chain balances)", id="chain", classes="panel unavailable")
            chain.border_title = "Chain"
            yield chain

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#balances", DataTable).add_columns(
            "Asset", "Available", "Held", "Total", "Deposited")
        self.query_one("#gaps", DataTable).add_columns(
            "Account", "Scheme", "Issued", "Used", "Unused", "Wallet gap", "Limit")

    async def load(self) -> None:
        accounts, gaps = await asyncio.gather(
            attempt(self.client.accounts()), attempt(self.client.address_gaps()))
        balances = self.query_one("#balances", DataTable)
        balances.clear()
        if isinstance(accounts, DpgError):
            balances.border_subtitle = describe(accounts)
        else:
            balances.border_subtitle = ""
            for row in asset_rows(accounts):
                balances.add_row(*row, key=row[0])
        self._show_gaps(gaps)
        for result in (accounts, gaps):
            if isinstance(result, DpgError):
                raise result

    def _show_gaps(self, gaps: list[m.AddressGap] | DpgError) -> None:
        table = self.query_one("#gaps", DataTable)
        table.clear()
        if isinstance(gaps, DpgError):
            table.border_subtitle = describe(gaps)
            return
        table.border_subtitle = "" if gaps else "no key accounts yet"
        for gap in gaps:
            unused = f"{gap.trailing_unused}{' ⚠' if gap.alert else ''}"
            table.add_row(short(gap.account_id, 8), gap.scheme, str(gap.issued),
                          str(gap.used), unused, str(gap.gap_limit_needed),
                          str(gap.configured_limit), key=gap.account_id)
