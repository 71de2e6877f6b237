"""``dpg store``: create and list stores."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dpgnode.domain.store import Store
from dpgnode.services.access import StoreFields

from .. import output
from ..state import open_node
from . import JSON_HELP, group

app = group("Create and list stores (a merchant's shop).")


def store_json(store: Store) -> dict[str, Any]:
    return {
        "id": store.id,
        "name": store.name,
        "website": store.website,
        "defaultCurrency": store.default_currency,
        "invoiceExpiration": store.invoice_expiration,
        "monitoringExpiration": store.monitoring_expiration,
        "speedPolicy": str(store.speed_policy),
        "paymentTolerance": store.payment_tolerance,
        "createdAt": store.created_at,
    }


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Store name (1-100 characters).")],
    default_currency: Annotated[
        str, typer.Option("--default-currency", help="Currency invoices are priced in.")
    ] = "USD",
    website: Annotated[str, typer.Option("--website", help="The shop's website URL.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create a store and print its id (use it with `dpg apikey create --store`).

    Examples:
    ```
    dpg store create --name "Corner shop"
    dpg store create --name Boutique --default-currency EUR --website https://example.com --json
    ```
    """
    node = open_node(ctx)
    store = node.access.create_store(
        StoreFields(name=name, website=website, default_currency=default_currency)
    )
    if as_json:
        output.emit_json(store_json(store))
        return
    output.result(f"created store {store.name!r}: {store.id}")


@app.command("list")
def list_stores(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List the active stores.

    Examples:
    ```
    dpg store list
    dpg store list --json
    ```
    """
    node = open_node(ctx)
    stores = node.access.stores()
    if as_json:
        output.emit_json([store_json(store) for store in stores])
        return
    grid = output.table("Id", "Name", "Currency", "Website", "Created", title="Stores")
    for store in stores:
        output.add_row(
            grid, store.id, store.name, store.default_currency, store.website,
            output.when(store.created_at),
        )
    output.print_table(grid)
    if not stores:
        output.info("no stores yet: create one with `dpg store create --name NAME`")
