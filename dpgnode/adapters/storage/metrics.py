"""Scrape-time reads for ``/metrics`` (``ObservedState``): ledger totals, outbox and signing.

Balances are summed exactly. PostgreSQL sums its ``NUMERIC(78,0)`` column itself (exact, and
one row per group crosses the wire); on SQLite, whose INTEGER stops at 2**63 and where
balances are TEXT, they are summed in Python while the accounts table streams past in
batches: one pass over it per scrape (about 0.5 s for 100,000 accounts on a loaded 2-core
machine) and no more memory than a batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Engine, func, select

from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.types import BigUnits
from dpgnode.ports.metrics import BalanceTotal, SinkBacklog

_BATCH = 5000
_SIGNING = "signing."


class SqlObservedState:
    """``ObservedState`` over one read engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ledger_totals(self) -> Sequence[BalanceTotal]:
        a = tables.accounts
        groups = (a.c.asset, a.c.owner_type, a.c.kind)
        sums: dict[tuple[str, str, str], int] = defaultdict(int)
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                query = select(*groups, func.sum(a.c.balance, type_=BigUnits)).group_by(*groups)
                rows = conn.execute(query)
            else:
                query = select(*groups, a.c.balance)
                rows = conn.execution_options(yield_per=_BATCH).execute(query)
            for asset, owner_type, kind, balance in rows:
                sums[(asset, owner_type, kind)] += balance
        return [BalanceTotal(*key, units) for key, units in sorted(sums.items())]

    def ledger_entries(self) -> int:
        with self._engine.connect() as conn:
            seq = conn.execute(select(tables.ledger_head.c.seq)).scalar()
        return int(seq or 0)

    def outbox_events(self) -> int:
        with self._engine.connect() as conn:
            seq = conn.execute(select(func.max(tables.outbox.c.seq))).scalar()
        return int(seq or 0)

    def outbox_backlog(self, sinks: Iterable[str]) -> Sequence[SinkBacklog]:
        o, c = tables.outbox, tables.outbox_cursors
        backlog = []
        with self._engine.connect() as conn:
            cursors = {row.sink: int(row.last_seq) for row in conn.execute(select(c))}
            for sink in sinks:
                after = cursors.get(sink, 0)
                pending = conn.execute(select(func.count()).where(o.c.seq > after)).scalar()
                oldest = conn.execute(
                    select(o.c.created_at).where(o.c.seq > after).order_by(o.c.seq).limit(1)
                ).scalar()
                backlog.append(SinkBacklog(sink, int(pending or 0), oldest))
        return backlog

    def signing_outcomes(self) -> Mapping[str, int]:
        audit = tables.custody_audit
        query = (
            select(audit.c.action, func.count())
            .where(audit.c.action.startswith(_SIGNING, autoescape=True))
            .group_by(audit.c.action)
        )
        with self._engine.connect() as conn:
            return {str(action): int(count) for action, count in conn.execute(query)}
