"""``dpg audit``: the custody audit log of every signing decision, and its verification.

The log is append-only and hash-chained (each record's hash covers the previous hash and
the record's canonical JSON), so ``verify`` finds any record edited, deleted or moved and
names the first bad one; ``--anchor`` (a head printed earlier) also finds a log cut short.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dpgnode.domain.custody.audit import AuditRecord, parse_anchor

from .. import output
from ..errors import EXIT_FAILED, usage_errors
from ..state import open_node
from . import JSON_HELP, group

app = group("List and verify the custody audit log (hash-chained, append-only).")


def record_json(record: AuditRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "id": record.id,
        "at": record.at,
        "actor": record.actor,
        "action": record.action,
        "subject": record.subject,
        "result": record.result,
        "rule": record.rule,
        "details": dict(record.details),
        "hash": record.hash,
    }


@app.command("verify")
def verify(
    ctx: typer.Context,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH printed by an earlier verify and kept off this machine: that "
            "record must still be there, unchanged (catches a log cut short).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check the whole hash chain; exit 1 naming the first bad record if it is broken.

    On success it prints the head as SEQ:HASH. Keep that line somewhere the node cannot
    write (a ticket, a printout): someone who can write the database could cut records
    from the end and rewind the head, which no chain can tell from a shorter log, but
    `--anchor SEQ:HASH` can.

    Examples:
    ```
    dpg audit verify
    dpg audit verify --json
    dpg audit verify --anchor 1042:5f0c...e91a
    ```
    """
    with usage_errors("--anchor"):
        expected = parse_anchor(anchor) if anchor is not None else None
    result = open_node(ctx).custody.audit.verify(expected)
    head = f"{result.head[0]}:{result.head[1]}" if result.head else None
    if as_json:
        output.emit_json({
            "ok": result.ok,
            "checked": result.checked,
            "firstBadSeq": result.first_bad_seq,
            "firstBadId": result.first_bad_id,
            "reason": result.reason,
            "head": head,
        })
    elif result.ok:
        output.result(f"audit log ok: {result.checked} records, the chain is intact")
        output.result(f"head {head}: keep it off this machine; pass it to --anchor later")
    if not result.ok:
        record = f" ({result.first_bad_id})" if result.first_bad_id else ""
        where = f"at record {result.first_bad_seq}" if result.first_bad_seq else "at its head"
        output.error(f"audit log broken {where}{record}: {result.reason}")
        raise typer.Exit(EXIT_FAILED)


@app.command("list")
def list_records(
    ctx: typer.Context,
    after: Annotated[int, typer.Option("--after", min=0, help="Records after this seq.")] = 0,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="At most this many.")
    ] = 100,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only records about this id (po_..., kc_...).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """List audit records in order: who did what to which object, which rule, the result.

    Examples:
    ```
    dpg audit list
    dpg audit list --subject po_0123 --json
    dpg audit list --after 1000 --limit 50
    ```
    """
    records = open_node(ctx).custody.audit.records(after_seq=after, limit=limit, subject=subject)
    if as_json:
        output.emit_json([record_json(r) for r in records])
        return
    grid = output.table("Seq", "Time (UTC)", "Actor", "Action", "Subject", "Result", "Rule",
                        title="Audit log")
    for r in records:
        output.add_row(grid, str(r.seq), output.when(r.at), r.actor, r.action, r.subject,
                       r.result, r.rule)
    output.print_table(grid)
