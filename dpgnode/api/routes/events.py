"""The node's event stream for admins (``/api/v1/events``): the outbox, read-only.

Every change that leaves the node (ledger entries, payouts, trades, stores, keys) is an
outbox event written in the change's own transaction; this reads them in commit order
(``after`` = the last seq seen, so polling never misses or repeats one) and how far each
relay sink has delivered. Reading moves no cursor. Needs ``dpg.events.view``.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from dpgnode.api.errors import READ_ERRORS, problems
from dpgnode.api.policy import requires
from dpgnode.api.schemas.events import (
    EventData,
    EventPage,
    EventProgressData,
    SinkProgressData,
)
from dpgnode.domain.access import EVENTS_VIEW
from dpgnode.node import Node

_TAGS = ["Events"]


@get(
    "/events", opt=requires(EVENTS_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def list_events(
    node: NamedDependency[Node],
    after: Annotated[int, QueryParameter(ge=0, le=2**62, description="Events after this seq")]
    = 0,
    type_prefix: Annotated[
        str | None,
        QueryParameter(
            name="type", max_length=80, pattern=r"^[a-z0-9_.]+$",
            description="Only types starting with this (e.g. `custody.` or `trading.trade`)",
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 100,
) -> EventPage:
    """Events after ``after``, oldest first; poll with ``after`` = the page's ``next``."""
    found = node.outbox.events(after=after, type_prefix=type_prefix, limit=limit)
    return EventPage(
        events=[EventData.of(e) for e in found], next=found[-1].seq if found else after
    )


@get(
    "/events/progress", opt=requires(EVENTS_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def progress(node: NamedDependency[Node]) -> EventProgressData:
    """The newest event and how far each relay sink has delivered (the queue's depth)."""
    newest, cursors = node.outbox.progress()
    return EventProgressData(
        newest_seq=newest,
        sinks=[
            SinkProgressData(sink=sink, delivered_seq=seq, pending=max(0, newest - seq))
            for sink, seq in sorted(cursors.items())
        ],
    )


ROUTES = [list_events, progress]
