"""Holds: value reserved for an order or a payout, later captured or released.

A hold moves value from an owner's ``available`` account to its ``held`` account; a capture
moves (part of) it from ``held`` to a destination; a release moves what remains back to
``available``. Invariants: ``captured + released <= amount``; a closed hold accepts nothing
more; the owner's ``held`` balance equals the remaining amount of its open holds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, EntryKind, Posting
from dpgnode.errors import ConflictError, ValidationError


class HoldStatus(StrEnum):
    """Whether a hold still accepts captures and a release."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Hold:
    """Value reserved on an available account until captured or released."""

    id: str
    account: AccountRef
    amount: int
    captured: int = 0
    released: int = 0
    status: HoldStatus = HoldStatus.OPEN

    @property
    def remaining(self) -> int:
        """Base units still on hold."""
        return self.amount - self.captured - self.released

    @property
    def held_account(self) -> AccountRef:
        """The owner's account that carries the reserved value."""
        return self.account.sibling(AccountKind.HELD)


def reserve_draft(hold: Hold, idempotency_key: str, memo: str = "") -> EntryDraft:
    """The entry that puts ``hold.amount`` on hold."""
    if hold.account.kind is not AccountKind.AVAILABLE:
        raise ValidationError("holds are taken on an available account", field="account")
    if hold.amount <= 0:
        raise ValidationError("hold amount must be positive", field="amount")
    return EntryDraft(
        idempotency_key=idempotency_key,
        postings=(Posting(hold.account, -hold.amount), Posting(hold.held_account, hold.amount)),
        kind=EntryKind.HOLD,
        memo=memo or f"hold {hold.id}",
        metadata={"hold_id": hold.id},
    )


def capture(
    hold: Hold, units: int, destination: AccountRef, idempotency_key: str, memo: str = ""
) -> tuple[Hold, EntryDraft]:
    """Capture ``units`` of an open hold into ``destination``; the hold closes when empty."""
    _ensure_open(hold)
    if units <= 0 or units > hold.remaining:
        raise ValidationError(
            f"capture must be between 1 and {hold.remaining} base units", field="amount"
        )
    if destination.asset != hold.account.asset:
        raise ValidationError("capture destination holds another asset", field="destination")
    updated = replace(hold, captured=hold.captured + units)
    if updated.remaining == 0:
        updated = replace(updated, status=HoldStatus.CLOSED)
    return updated, capture_draft(hold, units, destination, idempotency_key, memo)


def capture_draft(
    hold: Hold, units: int, destination: AccountRef, idempotency_key: str, memo: str = ""
) -> EntryDraft:
    """The entry of a capture; also what a replayed capture must match."""
    return EntryDraft(
        idempotency_key=idempotency_key,
        postings=(Posting(hold.held_account, -units), Posting(destination, units)),
        kind=EntryKind.CAPTURE,
        memo=memo or f"capture of hold {hold.id}",
        metadata={"hold_id": hold.id},
    )


def release(hold: Hold, idempotency_key: str, memo: str = "") -> tuple[Hold, EntryDraft]:
    """Return what remains of an open hold to the owner's available account."""
    _ensure_open(hold)
    units = hold.remaining
    updated = replace(hold, released=hold.released + units, status=HoldStatus.CLOSED)
    draft = EntryDraft(
        idempotency_key=idempotency_key,
        postings=(Posting(hold.held_account, -units), Posting(hold.account, units)),
        kind=EntryKind.RELEASE,
        memo=memo or f"release of hold {hold.id}",
        metadata={"hold_id": hold.id},
    )
    return updated, draft


def _ensure_open(hold: Hold) -> None:
    if hold.status is not HoldStatus.OPEN:
        raise ConflictError(f"hold {hold.id} is closed", details={"hold_id": hold.id})
