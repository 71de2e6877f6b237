"""Invoices and Webhooks: the merchant side, shown when the node serves it.

These areas belong to the merchant API (Greenfield's ``/stores/{storeId}/invoices`` and
``/webhooks``). A node without them answers 404, and the screen says "not available on
this node" rather than showing anything invented; a node that serves them gets the list of
each store's invoices or webhook endpoints.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from dpgnode.client import models as m

from ..connection import NotAvailable, feature
from ..formatting import when
from .base import AreaScreen


class MerchantScreen(AreaScreen):
    """A per-store listing that may be missing on this node."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    WHAT: ClassVar[str] = ""
    DEFAULT_CSS = """
    MerchantScreen Vertical { height: 1fr; }
    MerchantScreen #availability { height: auto; }
    MerchantScreen #listing { height: 1fr; }
    """

    def body(self) -> Iterable[Widget]:
        with Vertical():
            yield Static("", id="availability", classes="panel")
            table: DataTable[str] = DataTable(id="listing", cursor_type="row")
            table.add_class("panel")
            table.border_title = self.AREA
            yield table

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#listing", DataTable).add_columns("Store", *self.COLUMNS)
        self.query_one("#availability", Static).border_title = "Availability"

    def listing(self, store_id: str) -> Awaitable[list[Any]]:
        raise NotImplementedError

    def row(self, item: Any) -> tuple[str, ...]:
        raise NotImplementedError

    async def load(self) -> None:
        stores = await self.client.stores()
        note = self.query_one("#availability", Static)
        table = self.query_one("#listing", DataTable)
        if not stores:
            note.update(Text("no stores yet: `dpg store create`", "italic"))
            table.display = False
            return
        rows: list[tuple[str, ...]] = []
        try:
            for store in stores[:20]:
                rows += [(store.name, *self.row(item))
                         for item in await feature(self.listing(store.id))]
        except NotAvailable:
            note.update(Text(f"{self.WHAT}: not available on this node (its API does not "
                             "serve them yet)", "italic"))
            table.display = False
            return
        note.update(f"{len(rows)} {self.WHAT.lower()} in {min(len(stores), 20)} store(s)")
        table.display = True
        table.clear()
        for row in rows:
            table.add_row(*row)


class InvoicesScreen(MerchantScreen):
    AREA = "Invoices"
    WHAT = "Invoices"
    COLUMNS = ("Invoice", "Status", "Amount", "Created")

    def listing(self, store_id: str) -> Awaitable[list[m.Invoice]]:
        return self.client.invoices(store_id)

    def row(self, item: m.Invoice) -> tuple[str, ...]:
        return (item.id, item.status, f"{item.amount} {item.currency}", when(item.created_time))


class WebhooksScreen(MerchantScreen):
    AREA = "Webhooks"
    WHAT = "Webhooks"
    COLUMNS = ("Webhook", "URL", "Enabled")

    def listing(self, store_id: str) -> Awaitable[list[m.Webhook]]:
        return self.client.webhooks(store_id)

    def row(self, item: m.Webhook) -> tuple[str, ...]:
        return (item.id, item.url, "yes" if item.enabled else "no")


