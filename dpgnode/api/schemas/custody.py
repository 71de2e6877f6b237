"""Custody bodies: payouts in the approval queue, the policy that applies, address gaps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from dpgnode.api.schemas.base import Input, Output
from dpgnode.domain.custody.payout import Payout
from dpgnode.domain.custody.policy import AssetPolicy, distinct_approvers
from dpgnode.domain.custody.wallet import GapReport, KeyAccount
from dpgnode.domain.money import AssetRegistry


def _unix(at: datetime) -> int:
    return int(at.timestamp())


class ApprovalData(Output):
    operator_id: str
    operator_name: str
    approved_time: int


class PayoutPolicyData(Output):
    """The asset's spend policy, and how it applies to this payout."""

    asset: str
    max_per_transaction: str | None
    max_per_day: str | None
    max_payouts_per_hour: int | None
    approval_threshold: str | None
    """Payouts of at least this amount need approvals (null: never)."""
    approvals_required: int
    require_allowlist: bool
    allowed_destinations: list[str]
    destination_allowed: bool
    """Whether this payout's destination is on the allow-list."""

    @classmethod
    def of(cls, policy: AssetPolicy, destination: str, assets: AssetRegistry) -> PayoutPolicyData:
        def amount(units: int | None) -> str | None:
            return None if units is None else assets.format(units, policy.asset)

        return cls(
            asset=policy.asset,
            max_per_transaction=amount(policy.max_per_transaction),
            max_per_day=amount(policy.max_per_day),
            max_payouts_per_hour=policy.max_payouts_per_hour,
            approval_threshold=amount(policy.approval_threshold),
            approvals_required=policy.approvals_required,
            require_allowlist=policy.require_allowlist,
            allowed_destinations=sorted(policy.allowed_destinations),
            destination_allowed=destination in policy.allowed_destinations,
        )


class PayoutData(Output):
    id: str
    status: str
    asset: str
    amount: str
    destination: str
    debit: str
    """The ledger account the amount is held on and paid from."""
    source: str
    requested_by: str
    requested_by_name: str
    approvals_required: int
    approvals: list[ApprovalData]
    approvals_missing: int
    """Approvals still needed (the requester's own never counts)."""
    memo: str
    txid: str | None
    failure: str
    created_time: int
    updated_time: int
    policy: PayoutPolicyData | None
    """The asset's policy as configured now (null: payouts of the asset are disabled)."""

    @classmethod
    def of(
        cls,
        payout: Payout,
        approvals: Sequence[tuple[str, datetime]],
        names: Mapping[str, str],
        policy: AssetPolicy | None,
        assets: AssetRegistry,
    ) -> PayoutData:
        counted = distinct_approvers((op for op, _ in approvals), payout.requested_by)
        return cls(
            id=payout.id, status=str(payout.status), asset=payout.asset,
            amount=assets.format(payout.units, payout.asset), destination=payout.destination,
            debit=payout.debit_account.code, source=payout.source,
            requested_by=payout.requested_by,
            requested_by_name=names.get(payout.requested_by, ""),
            approvals_required=payout.approvals_required,
            approvals=[
                ApprovalData(operator_id=op, operator_name=names.get(op, ""),
                             approved_time=_unix(at))
                for op, at in approvals
            ],
            approvals_missing=max(0, payout.approvals_required - len(counted)),
            memo=payout.memo, txid=payout.txid, failure=payout.failure,
            created_time=_unix(payout.created_at), updated_time=_unix(payout.updated_at),
            policy=None if policy is None else PayoutPolicyData.of(
                policy, payout.destination, assets),
        )


class RejectPayoutRequest(Input):
    reason: str | None = None
    """Why (kept in the audit log, at most 200 characters)."""


class AddressGapData(Output):
    """One key account's receiving addresses: how far issued-but-unused ones stretch."""

    account_id: str
    keychain_id: str
    scheme: str
    network: str
    issued: int
    used: int
    last_used_index: int
    trailing_unused: int
    gap: int
    gap_limit_needed: int
    """The gap limit an external wallet restored from the xpub needs."""
    configured_limit: int
    alert: bool
    """Whether ``trailingUnused`` exceeds the configured limit."""

    @classmethod
    def of(cls, account: KeyAccount, report: GapReport, limit: int) -> AddressGapData:
        return cls(
            account_id=account.id, keychain_id=account.keychain_id, scheme=str(account.scheme),
            network=str(account.network), issued=report.issued, used=report.used,
            last_used_index=report.last_used_index, trailing_unused=report.trailing_unused,
            gap=report.gap, gap_limit_needed=report.gap_limit_needed, configured_limit=limit,
            alert=report.trailing_unused > limit,
        )
