"""``dpg operator``: the registered people who request and approve payouts.

Each operator gets a secret token, printed once by ``add``; the node keeps only its SHA-256
digest. Payout commands read the token from ``DPG_OPERATOR_TOKEN`` or ``--token-file``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from dpgnode.domain.custody.operator import Operator
from dpgnode.errors import AuthenticationError, ConfigError
from dpgnode.node import Node

from .. import output
from ..state import open_node
from . import JSON_HELP, group

app = group("Register the operators who request and approve payouts.")

TOKEN_ENV = "DPG_OPERATOR_TOKEN"  # noqa: S105 - the variable's name, not a token
TOKEN_FILE_HELP = "File holding your operator token (mode 0600). Default: DPG_OPERATOR_TOKEN."  # noqa: S105


def operator_json(operator: Operator) -> dict[str, Any]:
    return {
        "id": operator.id,
        "name": operator.name,
        "createdAt": operator.created_at,
        "disabledAt": operator.disabled_at,
        "active": operator.active,
    }


def current_operator(node: Node, token_file: Path | None) -> Operator:
    """The operator whose token this command was given (file first, then the variable)."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {token_file}: {exc.strerror or exc}") from exc
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise AuthenticationError(
            f"an operator token is required: set {TOKEN_ENV} or pass --token-file "
            "(`dpg operator add NAME` issues one)"
        )
    return node.custody.operators.authenticate(token)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The operator's name (unique).", metavar="NAME")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Register an operator and print their token ONCE (it cannot be shown again).

    Hand the token to the operator; they present it through DPG_OPERATOR_TOKEN or a token
    file when requesting or approving payouts.

    Examples:
    ```
    dpg operator add alice
    dpg operator add bob --json
    ```
    """
    issued = open_node(ctx).custody.operators.add(name)
    output.warn("hand this token to the operator now: it is shown only once")
    if as_json:
        output.emit_json({**operator_json(issued.operator), "token": issued.token})
        return
    output.result(f"registered operator {issued.operator.name} ({issued.operator.id})")
    output.result(f"token: {issued.token}")


@app.command("list")
def list_operators(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List operators (never their tokens).

    Examples:
    ```
    dpg operator list
    ```
    """
    operators = open_node(ctx).custody.operators.operators()
    if as_json:
        output.emit_json([operator_json(op) for op in operators])
        return
    grid = output.table("Id", "Name", "Created", "Status", title="Operators")
    for op in operators:
        status = "active" if op.active else f"disabled {output.when(op.disabled_at)}"
        output.add_row(grid, op.id, op.name, output.when(op.created_at), status)
    output.print_table(grid)


@app.command("disable")
def disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The operator's name.", metavar="NAME")],
) -> None:
    """Disable an operator: their token stops working at once. Disabling twice is a no-op.

    Examples:
    ```
    dpg operator disable alice
    ```
    """
    operator = open_node(ctx).custody.operators.disable(name)
    output.result(f"operator {operator.name} disabled since {output.when(operator.disabled_at)}")
