"""Spend policy: the rules every payout passes before a signature is asked for.

A payout is checked twice: when it is requested (so a request that can never pass is refused
at once and nothing is held) and again right before its transaction is signed (limits may
have been lowered, an allow-list entry removed, approvals must be complete). Both checks run
inside the write transaction that also counts the history they rely on, so two concurrent
requests cannot both squeeze under one limit.

Rules, in the order they are checked (the first that fails names itself in ``rule``):

============================  ===========================================================
rule                          refuses when
============================  ===========================================================
``asset_not_enabled``         no policy is configured for the asset (fail closed)
``destination_not_allowed``   the allow-list is required and does not hold the destination
``per_transaction_limit``     the amount exceeds ``max_per_transaction``
``daily_limit``               the amounts of the last 24 hours (rolling), this one included,
                              exceed ``max_per_day``
``velocity_limit``            more than ``max_payouts_per_hour`` payouts in the last hour
                              (rolling), this one included
``approvals_missing``         (before signing) fewer distinct approvers than required
============================  ===========================================================

Approvals: a payout of at least ``approval_threshold`` base units needs
``approvals_required`` distinct operators. The requester's own approval never counts (four
eyes: whoever asks for money to leave cannot also be the one who lets it leave), and an
operator approving twice counts once.

Invariant: :func:`evaluate` is total and pure: the same policy, request and history always
give the same decision, and it never raises for a well-formed request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from dpgnode.errors import PolicyDeniedError, ValidationError

DAY_WINDOW = timedelta(hours=24)
"""The daily limit counts payouts of this rolling window (no burst at midnight)."""
VELOCITY_WINDOW = timedelta(hours=1)
"""The velocity limit counts payouts of this rolling window."""


class PolicyRule(StrEnum):
    """The rule that refused a payout; stable names, shown to operators and in the audit log."""

    ASSET_NOT_ENABLED = "asset_not_enabled"
    DESTINATION_NOT_ALLOWED = "destination_not_allowed"
    PER_TRANSACTION_LIMIT = "per_transaction_limit"
    DAILY_LIMIT = "daily_limit"
    VELOCITY_LIMIT = "velocity_limit"
    APPROVALS_MISSING = "approvals_missing"


@dataclass(frozen=True, slots=True)
class AssetPolicy:
    """Limits for payouts of one asset; amounts are base units, ``None`` means no limit."""

    asset: str
    max_per_transaction: int | None = None
    max_per_day: int | None = None
    max_payouts_per_hour: int | None = None
    approval_threshold: int | None = None
    """Payouts of at least this many base units need approvals; ``None``: never, 0: always."""
    approvals_required: int = 1
    """Distinct operators (other than the requester) who must approve above the threshold."""
    allowed_destinations: frozenset[str] = field(default_factory=frozenset)
    """Normalised destination addresses payouts may go to."""
    require_allowlist: bool = True
    """Refuse destinations outside ``allowed_destinations`` (the safe default)."""

    def __post_init__(self) -> None:
        for name in ("max_per_transaction", "max_per_day", "approval_threshold"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise ValidationError(f"{name} must be a non-negative integer", field=name)
        if self.max_payouts_per_hour is not None and self.max_payouts_per_hour < 1:
            raise ValidationError(
                "max_payouts_per_hour must be at least 1", field="max_payouts_per_hour"
            )
        if self.approvals_required < 1:
            raise ValidationError(
                "approvals_required must be at least 1", field="approvals_required"
            )

    def approvals_needed(self, units: int) -> int:
        """Distinct approvers a payout of ``units`` needs (0: it is signed right away)."""
        if self.approval_threshold is None or units < self.approval_threshold:
            return 0
        return self.approvals_required


@dataclass(frozen=True, slots=True)
class SpendPolicy:
    """Every asset's policy; an asset without one cannot be paid out at all."""

    assets: Mapping[str, AssetPolicy] = field(default_factory=dict)

    def for_asset(self, asset: str) -> AssetPolicy | None:
        """The asset's policy, or ``None`` when payouts of it are not enabled."""
        return self.assets.get(asset)


@dataclass(frozen=True, slots=True)
class SpendRequest:
    """What a payout wants to do, as the policy sees it."""

    asset: str
    units: int
    destination: str
    """Normalised destination address (the form allow-lists are kept in)."""


@dataclass(frozen=True, slots=True)
class SpendHistory:
    """Earlier payouts of the asset that still count, not including the one being checked."""

    units_last_day: int = 0
    payouts_last_hour: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer: allowed (with the approvals it needs) or refused by ``rule``."""

    allowed: bool
    rule: PolicyRule | None = None
    message: str = ""
    approvals_required: int = 0

    def raise_if_denied(self, asset: str) -> None:
        """Raise ``PolicyDeniedError`` naming the rule when the decision is a refusal."""
        if not self.allowed:
            raise PolicyDeniedError(
                self.message,
                details={"rule": str(self.rule), "asset": asset},
            )


def evaluate(policy: AssetPolicy | None, request: SpendRequest, history: SpendHistory) -> Decision:
    """Check ``request`` against every limit; see the module docstring for the order."""
    if policy is None or policy.asset != request.asset:
        return _deny(PolicyRule.ASSET_NOT_ENABLED, f"payouts of {request.asset} are not enabled")
    if policy.require_allowlist and request.destination not in policy.allowed_destinations:
        return _deny(
            PolicyRule.DESTINATION_NOT_ALLOWED,
            f"the destination is not on the {request.asset} allow-list",
        )
    if policy.max_per_transaction is not None and request.units > policy.max_per_transaction:
        return _deny(
            PolicyRule.PER_TRANSACTION_LIMIT,
            f"the amount exceeds the {request.asset} per-transaction limit",
        )
    if (
        policy.max_per_day is not None
        and history.units_last_day + request.units > policy.max_per_day
    ):
        return _deny(
            PolicyRule.DAILY_LIMIT, f"the amount would exceed the {request.asset} daily limit"
        )
    if (
        policy.max_payouts_per_hour is not None
        and history.payouts_last_hour + 1 > policy.max_payouts_per_hour
    ):
        return _deny(
            PolicyRule.VELOCITY_LIMIT,
            f"too many {request.asset} payouts in the last hour (velocity limit)",
        )
    return Decision(True, approvals_required=policy.approvals_needed(request.units))


def distinct_approvers(approvers: Iterable[str], requester: str) -> frozenset[str]:
    """The operators whose approvals count: each once, never the requester."""
    return frozenset(a for a in approvers if a != requester)


def evaluate_for_signing(
    policy: AssetPolicy | None,
    request: SpendRequest,
    history: SpendHistory,
    approvers: frozenset[str],
) -> Decision:
    """The check right before a signature: every limit again, then the approvals."""
    decision = evaluate(policy, request, history)
    if not decision.allowed:
        return decision
    if len(approvers) < decision.approvals_required:
        return _deny(
            PolicyRule.APPROVALS_MISSING,
            f"{len(approvers)} of {decision.approvals_required} required approvals",
        )
    return decision


def _deny(rule: PolicyRule, message: str) -> Decision:
    return Decision(False, rule, message)
