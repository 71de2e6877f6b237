"""``dpg apikey``: issue, list and revoke API keys.

A key's secret is printed once, when it is created; the node keeps only its SHA-256 digest,
so neither the secret nor the digest is ever shown again.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dpgnode.domain.access import STORE_PERMISSIONS, ApiKey, Permission
from dpgnode.errors import NotFoundError

from .. import output
from ..errors import usage_errors
from ..state import open_node
from . import JSON_HELP, group

app = group("Issue, list and revoke API keys.")


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "label": key.label,
        "permissions": [str(p) for p in key.permissions],
        "createdAt": key.created_at,
        "revokedAt": key.revoked_at,
        "active": key.active,
    }


def scoped_permissions(texts: list[str], store_id: str | None) -> list[str]:
    """The permissions to grant: with ``--store``, every store permission limited to it."""
    granted: list[str] = []
    for text in texts:
        with usage_errors("--permission"):
            permission = Permission.parse(text)
        if store_id is not None:
            if permission.name not in STORE_PERMISSIONS:
                raise typer.BadParameter(
                    f"{permission.name} is a server permission: it cannot be limited to a "
                    "store; create a separate key for it without --store",
                    param_hint="--permission",
                )
            if permission.store_id not in (None, store_id):
                raise typer.BadParameter(
                    f"{text} names another store than --store {store_id}",
                    param_hint="--permission",
                )
            permission = Permission(permission.name, store_id)
        granted.append(str(permission))
    return granted


@app.command("create")
def create(
    ctx: typer.Context,
    permissions: Annotated[
        list[str],
        typer.Option(
            "--permission",
            help="Greenfield permission, e.g. btcpay.store.canviewinvoices; repeat for each. "
            "NAME:STORE_ID limits a store permission to one store.",
            show_default=False,
        ),
    ],
    store: Annotated[
        str | None,
        typer.Option("--store", help="Limit every store permission to this store id."),
    ] = None,
    label: Annotated[str, typer.Option("--label", help="What the key is for.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Create an API key and print its secret ONCE (it cannot be shown again).

    Clients send it as `Authorization: token SECRET`.

    Examples:
    ```
    dpg apikey create --store st_1 --permission btcpay.store.canmodifyinvoices --label shop
    dpg apikey create --permission btcpay.server.canviewserversettings --json
    ```
    """
    granted = scoped_permissions(permissions, store)
    node = open_node(ctx)
    issued = node.access.create_api_key(label, granted)
    output.warn("store this API key now: it is shown only once and cannot be recovered")
    if as_json:
        output.emit_json({**key_json(issued.key), "apiKey": issued.secret})
        return
    output.result(f"created API key {issued.key.id}")
    output.result(f"permissions: {', '.join(str(p) for p in issued.key.permissions)}")
    output.result(f"secret: {issued.secret}")


@app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List API keys with their permissions (never their secrets).

    Examples:
    ```
    dpg apikey list
    dpg apikey list --json
    ```
    """
    node = open_node(ctx)
    keys = node.access.api_keys()
    if as_json:
        output.emit_json([key_json(key) for key in keys])
        return
    grid = output.table("Id", "Label", "Permissions", "Created", "Status", title="API keys")
    for key in keys:
        status = "active" if key.active else f"revoked {output.when(key.revoked_at)}"
        output.add_row(
            grid, key.id, key.label, "\n".join(str(p) for p in key.permissions),
            output.when(key.created_at), status,
        )
    output.print_table(grid)
    if not keys:
        output.info("no API keys yet: create one with `dpg apikey create`")


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[
        str, typer.Argument(help="Id of the key (see `dpg apikey list`).", metavar="KEY_ID")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revoke an API key: requests made with it are refused from now on.

    Asks for confirmation unless --yes is given. Revoking a revoked key changes nothing.

    Examples:
    ```
    dpg apikey revoke key_0123
    dpg apikey revoke key_0123 --yes
    ```
    """
    node = open_node(ctx)
    key = node.queries.api_key(key_id)
    if key is None:
        raise NotFoundError(f"no API key {key_id[:64]}", details={"field": "keyId"})
    if not key.active:
        output.result(f"API key {key.id} was already revoked; nothing changed")
        return
    if not yes:
        label = f" ({key.label})" if key.label else ""
        typer.confirm(
            f"Revoke API key {key.id}{label}? Clients using it will be refused",
            abort=True,
            err=True,
        )
    node.access.revoke_api_key(key.id)
    output.result(f"revoked API key {key.id}")
