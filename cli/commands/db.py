"""``dpg db``: schema migrations and database checks."""

from __future__ import annotations

from typing import Annotated

import typer

from dpgnode.node import check_database, schema_status, upgrade_schema

from .. import output
from ..errors import EXIT_FAILED
from ..state import require_database, settings, sqlite_file
from . import JSON_HELP, group

app = group("Migrate and check the database.")


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration (creates the database if it does not exist).

    Stop the node first: migrations take the database's write lock.

    Examples:
    ```
    dpg db upgrade
    ```
    """
    loaded = settings(ctx)
    if sqlite_file(loaded) is not None:
        loaded.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    before, after = upgrade_schema(loaded)
    if before.current == after.current:
        output.result(f"the database is up to date (revision {after.current})")
    else:
        output.result(
            f"migrated the database from {before.current or 'empty'} to {after.current}"
        )


@app.command("current")
def current(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show the database's migration revision and the newest one this version ships.

    Examples:
    ```
    dpg db current
    dpg db current --json
    ```
    """
    loaded = settings(ctx)
    require_database(loaded)
    status = schema_status(loaded)
    if as_json:
        output.emit_json(
            {"current": status.current, "head": status.head, "upToDate": status.up_to_date}
        )
        return
    output.result(f"current revision: {status.current or '(none)'}")
    output.result(f"newest revision:  {status.head}")
    output.result("up to date" if status.up_to_date else "pending migrations: run `dpg db upgrade`")


@app.command("check")
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check the database: integrity, foreign keys, pending migrations and schema drift.

    Exit status 1 when any problem is found.

    Examples:
    ```
    dpg db check
    dpg db check --json
    ```
    """
    loaded = settings(ctx)
    require_database(loaded)
    report = check_database(loaded)
    if as_json:
        output.emit_json(
            {
                "ok": report.ok,
                "current": report.current,
                "head": report.head,
                "problems": list(report.problems),
            }
        )
    elif report.ok:
        output.result(f"database ok (revision {report.current})")
    else:
        for problem in report.problems:
            output.result(f"- {problem}")
    if not report.ok:
        output.error(f"the database check found {len(report.problems)} problem(s)")
        raise typer.Exit(EXIT_FAILED)
