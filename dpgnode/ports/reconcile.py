"""What reconciliation reads of the ledger and the node's own transactions, and records.

Reads see committed data; the methods taking a :class:`~dpgnode.ports.uow.Tx` run inside the
writer command that records (or closes) a mismatch alert, so the incident and its outbox
event commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from dpgnode.domain.chains.cursor import Incident, IncidentKind
from dpgnode.domain.chains.reconcile import Holding, LedgerCredit, OwnMovement
from dpgnode.ports.uow import Tx


class LedgerHoldings(Protocol):
    """The ledger's record of what the node received on a chain."""

    def credits(self, chain: str, *, address: str | None = None) -> Sequence[LedgerCredit]:
        """Every credited payment of ``chain`` (to ``address``) with what its entry posted.

        ``posted_units`` is what the entry keyed by the payment's credit key moved to the
        owner, ``None`` when no such entry exists or it was reversed.
        """
        ...

    def holdings(self, chain: str, *, address: str | None = None) -> Sequence[Holding]:
        """Every ``(asset, address)`` of ``chain`` that ever received a payment, any state."""
        ...

    def confirming(self, chain: str, at_or_below: int) -> Sequence[Holding]:
        """Holdings with a payment mined at or below ``at_or_below`` not credited yet."""
        ...


class OwnMovements(Protocol):
    """What the node's own transactions moved at addresses it issued.

    Contract: every transaction the node sent itself (payouts, sweeps, gas top-ups) that
    spends from or pays to an issued address appears once per ``(address, asset)`` it
    touches, with the net units (fees paid by the address included, as negative units of
    the chain's native asset) and the best-chain height that mined it, ``None`` while it is
    unmined or its height is not known. Reconciliation leaves a holding with an unmined or
    unknown movement out of the comparison, so an implementation that cannot tell the
    height must say ``None``, never guess.
    """

    def movements(self, chain: str) -> Sequence[OwnMovement]:
        """The movements of ``chain`` (see the contract)."""
        ...


class ReconcileIncidents(Protocol):
    """Mismatch alerts, kept with the chain's other incidents (they never pause it)."""

    def open_incidents_in(self, tx: Tx, chain: str, kind: IncidentKind) -> Sequence[Incident]:
        """The chain's open incidents of ``kind``, newest first."""
        ...

    def resolve_incident(self, tx: Tx, incident_id: int, at: datetime) -> bool:
        """Close one incident; whether it was open."""
        ...
