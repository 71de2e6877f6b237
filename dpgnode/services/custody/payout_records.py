"""What payouts write besides their own row: ledger entries, events, audit details.

Kept apart from ``payouts`` so the use cases read as the steps they are; everything here is
called inside a payout command's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.ledger import AccountKind, AccountRef
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import IdempotencyKeyReusedError, ValidationError


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    """What an operator asks to pay: ``units`` of ``asset`` to ``destination``."""

    asset: str
    units: int
    destination: str
    """Any valid form; it is normalised (bech32 lower case, EIP-55) before the policy sees it."""
    debit_account: AccountRef
    source: str
    request_key: str
    memo: str = ""


def check_request(request: PayoutRequest, assets: AssetRegistry) -> None:
    """Refuse a request that is malformed whatever the policy says."""
    assets.require(request.asset)
    if type(request.units) is not int or request.units <= 0:
        raise ValidationError("amount must be positive", field="amount")
    if request.debit_account.asset != request.asset:
        raise ValidationError("the debit account holds another asset", field="debit")
    if request.debit_account.kind is not AccountKind.AVAILABLE:
        raise ValidationError("payouts are paid from an available account", field="debit")
    if not request.request_key or len(request.request_key) > 200:
        raise ValidationError("request key must be 1-200 characters", field="request_key")


def replayed(existing: Payout, request: PayoutRequest, operator: Operator) -> Payout:
    """The payout a repeated request key names, if the request is the same one."""
    same = (
        existing.asset == request.asset and existing.units == request.units
        and existing.destination == request.destination
        and existing.debit_account == request.debit_account
        and existing.source == request.source and existing.requested_by == operator.id
    )
    if not same:
        raise IdempotencyKeyReusedError(
            "this request key was already used for a different payout",
            details={"payout_id": existing.id},
        )
    return existing


def request_details(request: PayoutRequest) -> dict[str, str]:
    """What the audit log records of a request (no secrets: ids, amounts, addresses)."""
    return {
        "asset": request.asset, "units": str(request.units),
        "destination": request.destination, "debit": request.debit_account.code,
        "source": request.source,
    }


def payout_event(kind: str, payout: Payout) -> DomainEvent:
    """The outbox event announcing a payout's new state."""
    return DomainEvent(kind, f"payout:{payout.id}", {
        "payoutId": payout.id, "asset": payout.asset, "units": str(payout.units),
        "destination": payout.destination, "status": str(payout.status),
        "txid": payout.txid,
    })
