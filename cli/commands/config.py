"""``dpg config``: show and check the effective settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import typer
from pydantic import BaseModel, SecretStr

from dpgnode.errors import ConfigError
from dpgnode.settings import semantic_problems

from .. import output
from ..errors import EXIT_CONFIG
from ..state import settings, state
from . import JSON_HELP, group

app = group("Show and check the configuration.")

_MASK = "**********"


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Print the effective settings (file, environment and defaults merged), secrets masked.

    Examples:
    ```
    dpg config show
    dpg config show --json | jq .api.port
    ```
    """
    current = settings(ctx)
    if as_json:
        output.emit_json(current.model_dump(mode="json"))
        return
    source = state(ctx).config_path()
    output.info(f"configuration file: {source}{'' if source.is_file() else ' (not present)'}")
    grid = output.table("Setting", "Value", "Description", title="Effective settings")
    for name, value, description in _rows(current):
        output.add_row(grid, name, value, description)
    output.print_table(grid)


def _rows(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _rows(value, f"{prefix}{name}.")
            continue
        description = " ".join((field.description or "").split()).replace("``", "`")
        yield f"{prefix}{name}", _display(value), description


def _display(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, SecretStr):
        return f"{_MASK} (set)" if value.get_secret_value() else "(not set)"
    if isinstance(value, list):
        return ", ".join(str(getattr(item, "code", item)) for item in value) or "(none)"
    return str(value)


@app.command("validate")
def validate(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check the configuration and report every problem at once (exit 3 if there is any).

    Checks the file's syntax, every field's type and range (from the file and from DPG_*
    variables alike), then what needs the whole picture: the database URL, a writable data
    directory, assets defined twice.

    Examples:
    ```
    dpg config validate
    DPG_API__PORT=8080 dpg config validate --json
    ```
    """
    try:
        problems = semantic_problems(settings(ctx))
    except ConfigError as exc:
        problems = _problems(exc)
    if as_json:
        output.emit_json({"valid": not problems, "problems": problems})
    elif problems:
        output.error(f"the configuration has {len(problems)} problem(s):")
        for problem in problems:
            output.info(f"  - {problem}")
    else:
        output.result("configuration is valid")
    if problems:
        raise typer.Exit(EXIT_CONFIG)


def _problems(exc: ConfigError) -> list[str]:
    # load_settings lists one invalid field per line under a heading line.
    head, *rest = exc.message.splitlines()
    return rest if head.endswith(":") and rest else [exc.message]
