"""The node's own transactions on chain: payouts and sweeps as the chain watcher follows them.

Methods taking a :class:`~dpgnode.ports.uow.Tx` run inside a writer command (the watcher's
per-block command, or a sweep's own): what they read and write commits with the block's
cursor, ledger entries and events, or not at all. The others read committed data.

Contract for every :class:`OutgoingStore`:

- ``payouts_on_chain_in`` returns payouts of the given assets in ``signed``, ``broadcast``
  or ``mined`` (:attr:`~dpgnode.domain.custody.payout.PayoutStatus.on_chain`) and
  ``sweeps_on_chain_in`` sweeps of the chain in the same states, oldest first;
- ``add_sweep`` refuses a txid the chain already has a sweep for (``ConflictError``), so a
  repeated command records one sweep;
- the ``*_to_resend`` reads return unmined, broadcast transactions last sent before the
  given time, oldest first; ``*_without_fee`` mined ones whose fee is not known yet.

Contract for :class:`OwnTxFees`: read-only; ``None`` when the chain's node does not have the
transaction in a block; ``UnavailableError`` when the node cannot be reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dpgnode.domain.chains.sweeps import Sweep, SweepStatus
from dpgnode.domain.custody.payout import Payout
from dpgnode.ports.uow import Tx


@dataclass(frozen=True, slots=True)
class PaidFee:
    """The fee a mined transaction paid, and the block whose receipt says so."""

    block_hash: str | None
    """``None`` where the fee is the transaction's own, whatever block mines it (Bitcoin)."""
    units: int


@dataclass(frozen=True, slots=True)
class SweptFrom:
    """Value a sweep took from one address (what reconciliation subtracts)."""

    sweep_id: str
    chain: str
    asset: str
    units: int
    txid: str
    status: SweepStatus
    fee_asset: str
    fee_units: int | None
    """The sweep's network fee, paid by this address on EVM chains (one input per sweep);
    on Bitcoin the fee comes out of the inputs and ``units`` already include it."""


class OutgoingStore(Protocol):
    """Payouts and sweeps with their chain state (see the module contract)."""

    # -- inside a writer command -------------------------------------------------------------

    def payouts_on_chain_in(self, tx: Tx, assets: Iterable[str]) -> Sequence[Payout]:
        """Payouts of ``assets`` the chain still decides, oldest first."""
        ...

    def sweeps_on_chain_in(self, tx: Tx, chain: str) -> Sequence[Sweep]:
        """Sweeps of ``chain`` the chain still decides, oldest first."""
        ...

    def sweep_in(self, tx: Tx, sweep_id: str) -> Sweep | None:
        """One sweep as this transaction sees it."""
        ...

    def add_sweep(self, tx: Tx, sweep: Sweep) -> None:
        """Record a new sweep with its inputs (``ConflictError`` for a known txid)."""
        ...

    def save_sweep(self, tx: Tx, sweep: Sweep) -> None:
        """Update a recorded sweep's state (its inputs never change)."""
        ...

    # -- reads -------------------------------------------------------------------------------

    def payouts_to_resend(
        self, assets: Iterable[str], sent_before: datetime, limit: int
    ) -> Sequence[Payout]:
        """Broadcast, unmined payouts of ``assets`` last sent before ``sent_before``."""
        ...

    def sweeps_to_resend(self, chain: str, sent_before: datetime, limit: int) -> Sequence[Sweep]:
        """Broadcast, unmined sweeps of ``chain`` last sent before ``sent_before``."""
        ...

    def payouts_without_fee(self, assets: Iterable[str], limit: int) -> Sequence[Payout]:
        """Mined payouts of ``assets`` whose fee is not recorded yet."""
        ...

    def sweeps_without_fee(self, chain: str, limit: int) -> Sequence[Sweep]:
        """Mined sweeps of ``chain`` whose fee is not recorded yet."""
        ...

    def sweep(self, sweep_id: str) -> Sweep | None:
        """One sweep."""
        ...

    def sweeps(
        self, *, chain: str | None = None, batch: str | None = None,
        status: SweepStatus | None = None, limit: int = 100,
    ) -> Sequence[Sweep]:
        """Sweeps, newest first, filtered."""
        ...

    def swept_from(self, address: str) -> Sequence[SweptFrom]:
        """Every sweep that took value from ``address``, oldest first.

        Of any status: failed ones never moved anything, so reconciliation skips them.
        """
        ...

    def topped_up(self, address: str) -> Sequence[Sweep]:
        """Gas top-ups sent to ``address``, oldest first."""
        ...


class OwnTxFees(Protocol):
    """Reads what the node's own mined transactions paid (see the module contract)."""

    def fee_paid(self, chain: str, txid: str) -> PaidFee | None:
        """The fee ``txid`` paid in the chain's native asset, with the block it was mined in."""
        ...
