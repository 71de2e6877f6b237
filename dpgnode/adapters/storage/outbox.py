"""The relay's view of the outbox table: pending events, cursors and attempts.

Cursor moves and attempt records go through the ``Writer`` like every other write, so the
single-writer discipline holds on SQLite and every acknowledged cursor move is durable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.adapters.storage.writer import SqlWriter
from dpgnode.domain.events import OutboxEvent
from dpgnode.ports.clock import Clock


class SqlOutboxStore:
    """``OutboxStore`` over the outbox tables."""

    def __init__(self, engine: Engine, writer: SqlWriter, clock: Clock) -> None:
        self._engine = engine
        self._writer = writer
        self._clock = clock

    def cursor(self, sink: str) -> int:
        with self._engine.connect() as conn:
            value = conn.execute(
                select(tables.outbox_cursors.c.last_seq).where(tables.outbox_cursors.c.sink == sink)
            ).scalar()
        return int(value or 0)

    def pending(self, sink: str, limit: int) -> Sequence[OutboxEvent]:
        return self.events(after=self.cursor(sink), limit=limit)

    def events(
        self, *, after: int = 0, type_prefix: str | None = None, limit: int = 100
    ) -> Sequence[OutboxEvent]:
        """Events after ``after`` in commit order, optionally only types with a prefix.

        Admins read the stream through this (``/api/v1/events``); it moves no cursor.
        """
        o = tables.outbox
        query = select(o).where(o.c.seq > after)
        if type_prefix:
            query = query.where(o.c.type.startswith(type_prefix, autoescape=True))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(o.c.seq).limit(limit)).mappings()
            return [_event(row) for row in rows]

    def progress(self) -> tuple[int, dict[str, int]]:
        """The newest event's seq and each sink's delivered-up-to cursor (the queue's depth)."""
        with self._engine.connect() as conn:
            newest = conn.execute(select(func.max(tables.outbox.c.seq))).scalar()
            c = tables.outbox_cursors
            cursors = {row.sink: int(row.last_seq) for row in conn.execute(select(c))}
        return int(newest or 0), cursors

    def mark_delivered(self, sink: str, event: OutboxEvent, *, attempt: int) -> None:
        now = self._clock.now()
        c = tables.outbox_cursors

        def command(tx: SqlTx) -> None:
            tx.execute(
                insert(tables.outbox_attempts).values(
                    sink=sink, event_id=event.id, attempt=attempt, ok=True, error="", at=now
                )
            )
            done = tx.execute(
                update(c)
                .where(c.c.sink == sink, c.c.last_seq < event.seq)
                .values(last_seq=event.seq, updated_at=now)
            )
            if (
                done.rowcount == 0
                and tx.execute(select(c.c.sink).where(c.c.sink == sink)).first() is None
            ):
                tx.execute(insert(c).values(sink=sink, last_seq=event.seq, updated_at=now))

        self._writer.run_sql(command)

    def record_failure(self, sink: str, event: OutboxEvent, *, error: str, attempt: int) -> None:
        row = {
            "sink": sink,
            "event_id": event.id,
            "attempt": attempt,
            "ok": False,
            "error": error,
            "at": self._clock.now(),
        }
        self._writer.run_sql(lambda tx: tx.execute(insert(tables.outbox_attempts).values(row)))

    def attempt_history(self, sink: str, event: OutboxEvent) -> tuple[int, datetime | None]:
        a = tables.outbox_attempts
        with self._engine.connect() as conn:
            row = conn.execute(
                select(func.count(), func.max(a.c.at)).where(
                    a.c.sink == sink, a.c.event_id == event.id
                )
            ).one()
        return int(row[0] or 0), row[1]


def _event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        seq=row["seq"],
        id=row["id"],
        type=row["type"],
        aggregate=row["aggregate"],
        payload=json.loads(row["payload"]),
        created_at=row["created_at"],
    )
