"""Domain events: past-tense facts that leave the node through the outbox.

An event is written in the same transaction as the change it describes, with a stable id
so that receivers can de-duplicate at-least-once deliveries. ``aggregate`` names the object
whose events must be delivered in order (``ledger``, ``store:st_1``, ``invoice:inv_1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

JsonScalar = str | int | bool | None
JsonValue = JsonScalar | list["JsonValue"] | Mapping[str, "JsonValue"]


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """An event before it is stored: what happened, to which aggregate, with what data."""

    type: str
    aggregate: str
    payload: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A stored event, as a relay delivers it."""

    seq: int
    id: str
    type: str
    aggregate: str
    payload: Mapping[str, JsonValue]
    created_at: datetime
