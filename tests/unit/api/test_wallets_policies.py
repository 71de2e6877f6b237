"""R18 for ``/api/v1/wallets``: every wallet route x every kind of caller.

``WALLET_MATRIX`` has the shape of ``test_api_policies.MATRIX`` (request builder, expected
status per caller in ``CALLERS`` order), so it can be merged there. Wallets of store A are
visible to store A's key, to the read-only key (``dpg.ledger.canview`` implies
``dpg.wallets.view``) and to admin; store B's key gets 404, never 403, so it cannot learn
that the wallet exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar.routes import HTTPRoute

from dpgnode.domain.access import UNRESTRICTED
from dpgnode.domain.ledger import AccountRef, EntryDraft, OwnerType, Posting
from tests.unit.api.conftest import Api

CALLERS = ("anonymous", "store_a", "store_b", "readonly", "admin", "revoked")
Request = tuple[str, dict[str, Any] | None]


def _wallet(api: Api, store: str, asset: str = "USD") -> str:
    return api.node.wallets.open(OwnerType.STORE, store, asset).wallet.id


def _funded(api: Api) -> tuple[str, str]:
    source, target = _wallet(api, api.store_a), _wallet(api, api.store_b)
    world = AccountRef.parse("operator:op:USD:world")
    funded = AccountRef.parse(f"store:{api.store_a}:USD:available")
    api.node.ledger.post(EntryDraft("seed", (Posting(world, -1000), Posting(funded, 1000))))
    return source, target


def _transfer(api: Api) -> Request:
    source, target = _funded(api)
    return (f"/api/v1/wallets/{source}/transfer",
            {"toWalletId": target, "amount": "1", "idempotencyKey": "m1"})


def _open(api: Api) -> Request:
    return "/api/v1/wallets", {"ownerType": "store", "ownerId": api.store_a, "asset": "EUR"}


WALLET_MATRIX: dict[tuple[str, str], tuple[Callable[[Api], Request], tuple[int, ...]]] = {
    ("GET", "/api/v1/wallets"): (
        lambda a: ("/api/v1/wallets", None), (401, 200, 200, 200, 200, 401)),
    ("POST", "/api/v1/wallets"): (_open, (401, 201, 404, 403, 201, 401)),
    ("GET", "/api/v1/wallets/{walletId:str}"): (
        lambda a: (f"/api/v1/wallets/{_wallet(a, a.store_a)}", None),
        (401, 200, 404, 200, 200, 401)),
    ("GET", "/api/v1/wallets/{walletId:str}/balance"): (
        lambda a: (f"/api/v1/wallets/{_wallet(a, a.store_a)}/balance", None),
        (401, 200, 404, 200, 200, 401)),
    ("GET", "/api/v1/wallets/{walletId:str}/transactions"): (
        lambda a: (f"/api/v1/wallets/{_wallet(a, a.store_a)}/transactions", None),
        (401, 200, 404, 200, 200, 401)),
    ("GET", "/api/v1/wallets/{walletId:str}/statement"): (
        lambda a: (f"/api/v1/wallets/{_wallet(a, a.store_a)}/statement?format=csv", None),
        (401, 200, 404, 200, 200, 401)),
    ("POST", "/api/v1/wallets/{walletId:str}/transfer"): (
        _transfer, (401, 201, 404, 403, 201, 401)),
}


def _headers(api: Api, caller: str) -> dict[str, str]:
    if caller == "revoked":
        secret = api.key(UNRESTRICTED)
        api.node.access.revoke_api_key(api.node.access.authenticate(secret).id)
        return {"Authorization": f"token {secret}"}
    return api.auth(caller)


def test_matrix_covers_every_wallet_route_when_the_app_is_built(api: Api) -> None:
    routes = {
        (method, route.path)
        for route in api.client.app.routes if isinstance(route, HTTPRoute)
        for handler in route.route_handlers for method in handler.http_methods
        if route.path.startswith("/api/v1/wallets") and method != "OPTIONS"
    }
    assert routes == set(WALLET_MATRIX)


@pytest.mark.parametrize("operation", sorted(WALLET_MATRIX), ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("caller", CALLERS)
def test_wallet_authorization_holds_when_each_caller_calls_each_route(
    api: Api, operation: tuple[str, str], caller: str
) -> None:
    build, expected = WALLET_MATRIX[operation]
    url, body = build(api)
    response = api.client.request(operation[0], url, json=body, headers=_headers(api, caller))
    assert response.status_code == expected[CALLERS.index(caller)], response.text
