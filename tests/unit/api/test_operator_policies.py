"""R18 for the admin routes the dashboard uses: custody payouts, address gaps, events.

(Halting and resuming pairs and the trades tape live under ``/api/v1/trading``, so their
rows are in ``test_trading_policies``, whose own test wants every trading route there; the
manager below runs them once more with a key that holds only ``dpg.trading.manage``.)

Callers: anonymous; a store key; the read-only key (stores and ledger); a custody viewer
(``dpg.custody.view`` + ``dpg.events.view``); a manager (``dpg.custody.approve`` +
``dpg.trading.manage``); an unrestricted admin; a revoked key. Approving and rejecting
also carry a valid operator token, so what is tested here is the API key's permission
(the payout in the URL does not exist: allowed callers get 404).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dpgnode.domain.access import (
    CUSTODY_APPROVE,
    CUSTODY_VIEW,
    EVENTS_VIEW,
    TRADING_MANAGE,
    UNRESTRICTED,
)
from tests.unit.api.conftest import Api

CALLERS = ("anonymous", "store_a", "readonly", "viewer", "manager", "admin", "revoked")
Request = tuple[str, str, dict[str, Any] | None]  # method, url, body

VIEW = (401, 403, 403, 200, 200, 200, 401)
APPROVE = (401, 403, 403, 403, 404, 404, 401)
MANAGE = (401, 403, 403, 403, 200, 200, 401)
TAPE = (401, 403, 403, 403, 200, 200, 401)  # market data: the manager's permission implies it


def _opened(api: Api, action: str) -> str:
    api.node.trading.open_pair("BTC-USD")
    if action == "resume":
        api.node.trading.halt_pair("BTC-USD")
    return f"/api/v1/trading/pairs/BTC-USD/{action}"


OPERATOR_MATRIX: dict[tuple[str, str], tuple[Callable[[Api], Request], tuple[int, ...]]] = {
    ("GET", "/api/v1/custody/payouts"): (
        lambda a: ("GET", "/api/v1/custody/payouts", None), VIEW),
    ("GET", "/api/v1/custody/payouts/{payoutId:str}"): (
        lambda a: ("GET", "/api/v1/custody/payouts/po_missing", None),
        (401, 403, 403, 404, 404, 404, 401)),
    ("POST", "/api/v1/custody/payouts/{payoutId:str}/approve"): (
        lambda a: ("POST", "/api/v1/custody/payouts/po_missing/approve", None), APPROVE),
    ("POST", "/api/v1/custody/payouts/{payoutId:str}/reject"): (
        lambda a: ("POST", "/api/v1/custody/payouts/po_missing/reject", {"reason": "no"}),
        APPROVE),
    ("GET", "/api/v1/custody/address-gaps"): (
        lambda a: ("GET", "/api/v1/custody/address-gaps", None), VIEW),
    ("GET", "/api/v1/events"): (lambda a: ("GET", "/api/v1/events", None),
                                (401, 403, 403, 200, 403, 200, 401)),
    ("GET", "/api/v1/events/progress"): (lambda a: ("GET", "/api/v1/events/progress", None),
                                         (401, 403, 403, 200, 403, 200, 401)),
    ("POST", "/api/v1/trading/pairs/{pair:str}/halt"): (
        lambda a: ("POST", _opened(a, "halt"), None), MANAGE),
    ("POST", "/api/v1/trading/pairs/{pair:str}/resume"): (
        lambda a: ("POST", _opened(a, "resume"), None), MANAGE),
    ("GET", "/api/v1/trading/tape/{pair:str}"): (
        lambda a: ("GET", "/api/v1/trading/tape/BTC-USD", None), TAPE),
}


def _headers(api: Api, caller: str) -> dict[str, str]:
    token = api.node.custody.operators.add(f"op-{caller}").token
    extra = {"X-Operator-Token": token}
    grants = {
        "viewer": (CUSTODY_VIEW, EVENTS_VIEW), "manager": (CUSTODY_APPROVE, TRADING_MANAGE),
    }
    if caller in grants:
        return {**extra, "Authorization": f"token {api.key(*grants[caller])}"}
    if caller == "revoked":
        secret = api.key(UNRESTRICTED)
        api.node.access.revoke_api_key(api.node.access.authenticate(secret).id)
        return {**extra, "Authorization": f"token {secret}"}
    return api.auth(caller, **extra)


@pytest.mark.parametrize("operation", sorted(OPERATOR_MATRIX),
                         ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix_holds_when_each_caller_calls_each_admin_route(
    api: Api, operation: tuple[str, str], caller: str
) -> None:
    build, expected = OPERATOR_MATRIX[operation]
    method, url, body = build(api)
    response = api.client.request(method, url, json=body, headers=_headers(api, caller))
    assert response.status_code == expected[CALLERS.index(caller)], response.text
