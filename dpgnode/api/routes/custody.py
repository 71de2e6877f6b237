"""Custody for admins (``/api/v1/custody``): the payout approval queue and address gaps.

Reading needs ``dpg.custody.view``; approving and rejecting need ``dpg.custody.approve``
*and* an operator token (``X-Operator-Token``, issued by ``dpg operator add``): the API
key says the caller may act here, the token says which operator acts, so the four-eyes
rule of the spend policy (the requester never approves their own payout) holds over HTTP
as on the command line.

The API process holds no signer (R22), so it records approvals but never signs: the
approval that would complete a payout's set is refused with 409 (``details.reason`` =
``signing_required``) before anything is recorded, and must be given with
``dpg payout approve`` where the HSM is reachable.
"""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from dpgnode.api.errors import READ_ERRORS, WRITE_ERRORS, problems
from dpgnode.api.policy import requires
from dpgnode.api.schemas.custody import AddressGapData, PayoutData, RejectPayoutRequest
from dpgnode.domain.access import CUSTODY_APPROVE, CUSTODY_VIEW
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.errors import AuthenticationError
from dpgnode.node import Node

_TAGS = ["Custody"]
OPERATOR_TOKEN_HEADER = "X-Operator-Token"  # noqa: S105 - a header's name, not a token
PayoutId = Annotated[str, PathParameter(name="payoutId", max_length=64)]
OperatorToken = Annotated[
    str | None,
    HeaderParameter(
        name=OPERATOR_TOKEN_HEADER,
        description="The acting operator's token (`dpg operator add` issues it); never logged",
    ),
]


def _payout(node: Node, payout: Payout) -> PayoutData:
    payouts = node.custody.payouts
    names = {op.id: op.name for op in node.custody.operators.operators()}
    return PayoutData.of(
        payout, payouts.approvals(payout.id), names, payouts.policy.for_asset(payout.asset),
        node.assets,
    )


def _operator(node: Node, token: str | None) -> Operator:
    if token is None or not token.strip():
        raise AuthenticationError(
            f"an operator token is required: send the header {OPERATOR_TOKEN_HEADER} "
            "(`dpg operator add NAME` issues one)"
        )
    return node.custody.operators.authenticate(token.strip())


@get(
    "/custody/payouts", opt=requires(CUSTODY_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def list_payouts(
    node: NamedDependency[Node],
    status: Annotated[
        Literal["pending_approval", "signing", "signed", "broadcast", "mined", "confirmed",
                "failed", "cancelled"]
        | None,
        QueryParameter(description="Only payouts in this state"),
    ] = None,
    asset: Annotated[str | None, QueryParameter(max_length=32)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
) -> list[PayoutData]:
    """Payouts, newest first, with their approvals and the policy that applies."""
    found = node.custody.payouts.payouts(
        status=PayoutStatus(status) if status else None, asset=asset, limit=limit
    )
    return [_payout(node, p) for p in found]


@get(
    "/custody/payouts/{payoutId:str}", opt=requires(CUSTODY_VIEW), sync_to_thread=True,
    tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def get_payout(node: NamedDependency[Node], payout_id: PayoutId) -> PayoutData:
    """One payout with its approvals and the policy that applies."""
    return _payout(node, node.custody.payouts.payout(payout_id))


@post(
    "/custody/payouts/{payoutId:str}/approve", opt=requires(CUSTODY_APPROVE),
    sync_to_thread=True, status_code=200, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def approve_payout(
    node: NamedDependency[Node], payout_id: PayoutId, operator_token: OperatorToken = None
) -> PayoutData:
    """Approve as the token's operator; approving twice counts once.

    Refused: the requester's own approval (422 ``policy_denied``, rule ``self_approval``);
    a payout no longer awaiting approval, or the approval that would complete the set and
    so needs the signer (409, ``details.reason`` = ``signing_required``: use
    ``dpg payout approve`` where the HSM is reachable).
    """
    operator = _operator(node, operator_token)
    payout = node.custody.payouts.approve(payout_id, operator, can_sign=False)
    return _payout(node, payout)


@post(
    "/custody/payouts/{payoutId:str}/reject", opt=requires(CUSTODY_APPROVE),
    sync_to_thread=True, status_code=200, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def reject_payout(
    node: NamedDependency[Node],
    payout_id: PayoutId,
    data: JSONBody[RejectPayoutRequest | None] = None,
    operator_token: OperatorToken = None,
) -> PayoutData:
    """Reject a payout awaiting approval: it is cancelled and its hold released (409 after)."""
    operator = _operator(node, operator_token)
    reason = (data.reason if data is not None else None) or ""
    payout = node.custody.payouts.reject(payout_id, operator, reason[:200])
    return _payout(node, payout)


@get(
    "/custody/address-gaps", opt=requires(CUSTODY_VIEW), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def address_gaps(node: NamedDependency[Node]) -> list[AddressGapData]:
    """Every key account's receiving addresses: issued, used and the gap a wallet needs."""
    addresses = node.custody.addresses
    return [
        AddressGapData.of(account, addresses.gap(account.id), addresses.gap_limit)
        for view in node.custody.keychains.keychains()
        for account in view.accounts
    ]


ROUTES = [list_payouts, get_payout, approve_payout, reject_payout, address_gaps]
