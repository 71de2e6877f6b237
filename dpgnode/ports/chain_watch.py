"""What the chain watchers keep: cursors, recent blocks, payments, incidents.

Methods taking a :class:`~dpgnode.ports.uow.Tx` run inside a writer command, so a block's
payments, credits, events and the cursor move together or not at all; the others read
committed data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from dpgnode.domain.chains.blocks import BlockRef
from dpgnode.domain.chains.cursor import ChainCursor, Incident
from dpgnode.domain.chains.payments import Payment, PaymentStatus, WatchedAddress
from dpgnode.ports.uow import Tx


class ChainStore(Protocol):
    """Storage of the chain watchers."""

    # -- reads ----------------------------------------------------------------------------

    def cursor(self, chain: str) -> ChainCursor | None:
        """Where the chain's watcher stands; ``None`` before its first block."""
        ...

    def watched_addresses(
        self, family: str, network: str, after_id: int, limit: int
    ) -> Sequence[WatchedAddress]:
        """Issued addresses of ``family`` (``bitcoin``/``evm``) key accounts after ``after_id``.

        In id order; Bitcoin accounts of ``network`` only (``network`` is ignored for EVM).
        """
        ...

    def blocks(self, chain: str, above: int) -> Mapping[int, str]:
        """Remembered block hashes by height, above ``above``."""
        ...

    def payment(self, chain: str, key: str) -> Payment | None:
        """One payment by its key."""
        ...

    def payments(
        self, chain: str | None = None, *, status: PaymentStatus | None = None,
        address: str | None = None, txid: str | None = None, offset: int = 0, limit: int = 100,
    ) -> Sequence[Payment]:
        """Payments, newest first, filtered."""
        ...

    def incidents(self, chain: str | None = None, *, open_only: bool = True) -> Sequence[Incident]:
        """Incidents, newest first."""
        ...

    # -- inside a writer command -------------------------------------------------------------

    def cursor_in(self, tx: Tx, chain: str) -> ChainCursor | None:
        """The cursor as this transaction sees it."""
        ...

    def save_cursor(self, tx: Tx, cursor: ChainCursor) -> None:
        """Insert or update the chain's cursor."""
        ...

    def blocks_in(self, tx: Tx, chain: str, above: int) -> Mapping[int, str]:
        """Remembered block hashes by height, above ``above``."""
        ...

    def add_block(self, tx: Tx, chain: str, block: BlockRef) -> None:
        """Remember a processed block (replacing one remembered at that height)."""
        ...

    def forget_blocks(self, tx: Tx, chain: str, *, above: int | None = None,
                      below: int | None = None) -> None:
        """Forget remembered blocks above ``above`` (a rollback) or below ``below`` (pruning)."""
        ...

    def addresses_in(self, tx: Tx, addresses: Iterable[str]) -> Mapping[str, WatchedAddress]:
        """The issued addresses among ``addresses``."""
        ...

    def payment_in(self, tx: Tx, chain: str, key: str) -> Payment | None:
        """One payment, locked for this transaction."""
        ...

    def payments_in(
        self, tx: Tx, chain: str, statuses: Iterable[PaymentStatus], *,
        mined_above: int | None = None,
    ) -> Sequence[Payment]:
        """Payments of the chain in these states (mined above a height, when given)."""
        ...

    def save_payment(self, tx: Tx, payment: Payment) -> None:
        """Insert or update a payment by its key."""
        ...

    def own_txids_in(self, tx: Tx, txids: Iterable[str]) -> set[str]:
        """Those of ``txids`` the node sent itself (payouts, sweeps): not deposits."""
        ...

    def add_incident(self, tx: Tx, incident: Incident) -> int:
        """Record an incident; its id."""
        ...

    def resolve_incidents(self, tx: Tx, chain: str, at: datetime) -> int:
        """Close the chain's open incidents; how many were open."""
        ...
