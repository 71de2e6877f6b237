"""How far a watcher got on its chain, and why it may have stopped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class IncidentKind(StrEnum):
    """Why a chain's watcher paused itself instead of going on."""

    DEEP_REORG = "deep_reorg"
    """A reorganisation deeper than ``reorg_limit``: undoing it would rewrite settled history."""
    LOST_HISTORY = "lost_history"
    """No block in the remembered window links to the node's chain (wrong node or network)."""
    RECONCILIATION_MISMATCH = "reconciliation_mismatch"
    """The ledger's and the chain's balances of the node's addresses disagree. An alert, not
    a pause: the watcher goes on, the ledger is never adjusted to match."""


@dataclass(frozen=True, slots=True)
class ChainCursor:
    """The last block a chain's watcher processed; ``paused`` holds an open incident's text."""

    chain: str
    height: int
    hash: str
    updated_at: datetime
    paused: str = ""

    @property
    def is_paused(self) -> bool:
        """Whether an incident stops the watcher until an operator resumes it."""
        return bool(self.paused)


@dataclass(frozen=True, slots=True)
class Incident:
    """Something on a chain an operator must look at before the watcher goes on."""

    chain: str
    kind: IncidentKind
    message: str
    details: dict[str, str]
    created_at: datetime
    id: int | None = None
    resolved_at: datetime | None = None
