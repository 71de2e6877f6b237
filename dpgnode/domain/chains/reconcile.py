"""Reconciling the ledger's view of what the node holds on a chain with the chain's own view.

Both views are taken at the chain's *settled height*: the highest block whose payments the
confirmation policy has credited (``our height - confirmations + 1``, or the chain's
finalized height). Measuring the chain there too keeps unconfirmed and confirming payments
out of both sides, so a difference is never just a payment on its way.

Per ``(asset, address)``:

- the **ledger view** is the sum of the live ledger credits of the address's credited
  payments (the amount the journal entry posted, not what the payment row says), plus the
  movements of the node's own transactions (payouts, sweeps, gas top-ups) mined at or below
  the settled height (negative: value and fees that left the address);
- the **chain view** is what the chain says the address holds at the settled height
  (Bitcoin: outputs mined at or below it and unspent at the tip; EVM: the balance at it).

An address whose own movements are unmined, of unknown height or above the settled height,
or that has a payment the policy should have credited but has not yet, is *unsettled*: it
is left out of the comparison for this run (and listed), because the two views are known to
disagree until the watcher catches up. Everything else must agree to the base unit; any
difference is reported, never corrected: the ledger is only ever changed by the flows that
own it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from dpgnode.domain.chains.payments import ConfirmationPolicy

Holding = tuple[str, str]
"""``(asset, address)``: one balance the reconciliation compares."""


class ReconcileState(StrEnum):
    """Outcome of one reconciliation run."""

    MATCHED = "matched"
    MISMATCH = "mismatch"
    SKIPPED = "skipped"
    """Nothing was compared (see ``reason``): the chain is paused, not started, or moved."""
    FAILED = "failed"
    """The chain could not be read (see ``reason``); the next block tries again."""


class DifferenceKind(StrEnum):
    """What disagrees."""

    BALANCE = "balance"
    """The chain holds another amount than the ledger says."""
    LEDGER_RECORD = "ledger_record"
    """A payment is marked credited but its ledger entry is missing, reversed, or posted
    another amount (the payment records and the journal disagree)."""


@dataclass(frozen=True, slots=True)
class LedgerCredit:
    """A credited payment and what the journal holds for its credit."""

    asset: str
    address: str
    payment_key: str
    height: int
    """Height of the block that carries the payment."""
    recorded_units: int
    """The amount the payment record says was credited."""
    posted_units: int | None
    """The amount the live credit entry moved to the owner; ``None`` when the entry is
    missing or reversed."""


@dataclass(frozen=True, slots=True)
class OwnMovement:
    """Value one of the node's own transactions moved at an address the node issued."""

    address: str
    asset: str
    units: int
    """Signed: negative for value and fees that left the address, positive for value that
    arrived (change, a gas top-up)."""
    txid: str
    height: int | None = None
    """Best-chain height of the block that mined it; ``None`` when unmined or not known."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One holding on which the ledger and the chain disagree.

    For a ``LEDGER_RECORD`` difference, ``ledger`` is what the journal posted and ``chain``
    what the payment record (the watcher's record of the chain) says was credited.
    """

    asset: str
    address: str
    ledger: int
    chain: int
    kind: DifferenceKind = DifferenceKind.BALANCE
    detail: str = ""

    @property
    def delta(self) -> int:
        """``chain - ledger``: positive when the chain holds more than the ledger knows."""
        return self.chain - self.ledger


@dataclass(frozen=True, slots=True)
class AssetTotals:
    """One asset's totals over the holdings compared in a run."""

    asset: str
    ledger: int
    chain: int
    addresses: int
    """Holdings compared."""
    unsettled: int = 0
    """Holdings left out of this run (see the module docstring)."""

    @property
    def delta(self) -> int:
        """``chain - ledger``."""
        return self.chain - self.ledger


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The result of one run on one chain."""

    chain: str
    state: ReconcileState
    at: datetime
    settled_height: int | None = None
    reason: str = ""
    differences: tuple[Difference, ...] = ()
    totals: tuple[AssetTotals, ...] = ()
    unsettled: tuple[Holding, ...] = ()
    incident_id: int | None = None
    """The open mismatch incident this run recorded or found already open."""

    @property
    def matched(self) -> bool:
        """Whether every compared holding agreed."""
        return self.state is ReconcileState.MATCHED


@dataclass(slots=True)
class LedgerView:
    """The ledger's side of a run: balances, holdings left out, and record differences."""

    balances: dict[Holding, int] = field(default_factory=dict)
    unsettled: set[Holding] = field(default_factory=set)
    record_differences: list[Difference] = field(default_factory=list)


def settled_height(
    policy: ConfirmationPolicy, our_height: int, finalized_height: int | None
) -> int | None:
    """The highest block whose payments the policy has credited; ``None`` before any."""
    if policy.finalized:
        if finalized_height is None:
            return None
        return min(finalized_height, our_height)
    height = our_height - policy.confirmations + 1
    return height if height >= 0 else None


def ledger_view(
    credits: Iterable[LedgerCredit], movements: Iterable[OwnMovement], settled: int,
    confirming: Iterable[Holding] = (),
) -> LedgerView:
    """The ledger's balances at ``settled`` (see the module docstring).

    ``confirming`` names holdings with a payment mined at or below ``settled`` that is not
    credited yet: they are unsettled for this run.
    """
    view = LedgerView()
    for credit in credits:
        key = (credit.asset, credit.address)
        if credit.height > settled:
            view.unsettled.add(key)  # credited while this run was reading: next run
            continue
        posted = credit.posted_units
        view.balances[key] = view.balances.get(key, 0) + (posted or 0)
        if posted != credit.recorded_units:
            reason = ("no live ledger entry" if posted is None
                      else f"the entry posted {posted}")
            view.record_differences.append(Difference(
                credit.asset, credit.address, posted or 0, credit.recorded_units,
                DifferenceKind.LEDGER_RECORD,
                f"payment {credit.payment_key} is credited with {credit.recorded_units}; "
                f"{reason}",
            ))
    for movement in movements:
        key = (movement.asset, movement.address)
        if movement.height is None or movement.height > settled:
            view.unsettled.add(key)
            continue
        view.balances[key] = view.balances.get(key, 0) + movement.units
    view.unsettled.update(confirming)
    return view


def compare(
    holdings: Iterable[Holding], ledger: LedgerView, chain: Mapping[Holding, int]
) -> tuple[list[Difference], list[AssetTotals]]:
    """Differences and per-asset totals over ``holdings`` that are settled.

    A holding missing from ``chain`` holds nothing there; one missing from the ledger view
    holds nothing in the ledger.
    """
    differences: list[Difference] = []
    sums: dict[str, list[int]] = {}
    for key in sorted(set(holdings)):
        asset, address = key
        row = sums.setdefault(asset, [0, 0, 0, 0])
        if key in ledger.unsettled:
            row[3] += 1
            continue
        booked = ledger.balances.get(key, 0)
        held = chain.get(key, 0)
        row[0] += booked
        row[1] += held
        row[2] += 1
        if booked != held:
            differences.append(Difference(asset, address, booked, held))
    differences.extend(ledger.record_differences)
    totals = [AssetTotals(asset, *row) for asset, row in sorted(sums.items())]
    return differences, totals


def fingerprint(differences: Sequence[Difference]) -> str:
    """A stable digest of a set of differences: the same mismatch seen again is one alert."""
    digest = hashlib.sha256()
    for d in sorted(differences, key=lambda d: (d.asset, d.address, d.kind, d.detail)):
        digest.update(f"{d.kind}|{d.asset}|{d.address}|{d.ledger}|{d.chain}|{d.detail}\n"
                      .encode())
    return digest.hexdigest()
