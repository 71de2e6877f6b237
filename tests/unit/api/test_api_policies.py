"""R18: every route declares its access policy, and the policy guard enforces it.

The matrix below is the authorization contract of the API: every route of the app must
appear in it (a new route without a row fails ``test_matrix_covers_every_route...``), and
each row says what each kind of caller gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from dpgnode.api.policy import is_framework_preflight, policy_guard, policy_of
from dpgnode.domain.access import UNRESTRICTED
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from tests.unit.api.conftest import Api

CALLERS = ("anonymous", "store_a", "store_b", "readonly", "admin", "revoked")
HOT = AccountRef(OwnerType.OPERATOR, "op", "BTC", AccountKind.AVAILABLE)
WORLD = AccountRef(OwnerType.OPERATOR, "op", "BTC", AccountKind.WORLD)

Request = tuple[str, dict[str, Any] | None]  # url, json body
ALL_OK = (200, 200, 200, 200, 200, 200)


def _entry_body(api: Api) -> dict[str, Any]:
    return {"idempotencyKey": "m1", "postings": [
        {"account": WORLD.code, "amount": "-1"}, {"account": HOT.code, "amount": "1"}]}


def _reversible(api: Api) -> str:
    posted = api.node.ledger.post(EntryDraft("seed", (Posting(WORLD, -100), Posting(HOT, 100))))
    return posted.entry.id


def _seeded(api: Api) -> int:
    _reversible(api)
    return 0


# (method, route path) -> (request builder, expected status per caller in CALLERS order)
MATRIX: dict[tuple[str, str], tuple[Callable[[Api], Request], tuple[int, ...]]] = {
    ("GET", "/api/v1/health"): (lambda a: ("/api/v1/health", None), ALL_OK),
    ("GET", "/api/v1/openapi.json"): (lambda a: ("/api/v1/openapi.json", None), ALL_OK),
    ("GET", "/api/v1/docs"): (lambda a: ("/api/v1/docs", None), ALL_OK),
    ("GET", "/api/v1/docs/openapi.json"): (lambda a: ("/api/v1/docs/openapi.json", None), ALL_OK),
    ("GET", "/api/v1/docs/oauth2-redirect.html"): (
        lambda a: ("/api/v1/docs/oauth2-redirect.html", None), ALL_OK),
    ("GET", "/api/v1/docs/{path:str}"): (
        lambda a: ("/api/v1/docs/nothing-here", None), (404,) * 6),
    ("GET", "/api/v1/server/info"): (
        lambda a: ("/api/v1/server/info", None), (401, 200, 200, 200, 200, 401)),
    ("GET", "/api/v1/stores"): (
        lambda a: ("/api/v1/stores", None), (401, 200, 200, 200, 200, 401)),
    ("POST", "/api/v1/stores"): (
        lambda a: ("/api/v1/stores", {"name": "New"}), (401, 403, 403, 403, 200, 401)),
    ("GET", "/api/v1/stores/{storeId:str}"): (
        lambda a: (f"/api/v1/stores/{a.store_a}", None), (401, 200, 404, 200, 200, 401)),
    ("PUT", "/api/v1/stores/{storeId:str}"): (
        lambda a: (f"/api/v1/stores/{a.store_a}", {"name": "Renamed"}),
        (401, 200, 404, 403, 200, 401)),
    ("DELETE", "/api/v1/stores/{storeId:str}"): (
        lambda a: (f"/api/v1/stores/{a.store_a}", None), (401, 200, 404, 403, 200, 401)),
    ("GET", "/api/v1/api-keys/current"): (
        lambda a: ("/api/v1/api-keys/current", None), (401, 200, 200, 200, 200, 401)),
    ("DELETE", "/api/v1/api-keys/current"): (
        lambda a: ("/api/v1/api-keys/current", None), (401, 200, 200, 200, 200, 401)),
    ("POST", "/api/v1/api-keys"): (
        lambda a: ("/api/v1/api-keys", {"label": "x", "permissions": [UNRESTRICTED]}),
        (401, 403, 403, 403, 200, 401)),
    ("GET", "/api/v1/ledger/accounts"): (
        lambda a: ("/api/v1/ledger/accounts", None), (401, 403, 403, 200, 200, 401)),
    ("GET", "/api/v1/ledger/accounts/{account:str}/statement"): (
        lambda a: (f"/api/v1/ledger/accounts/{HOT.code}/statement?from={_seeded(a)}", None),
        (401, 403, 403, 200, 200, 401)),
    ("POST", "/api/v1/ledger/entries"): (
        lambda a: ("/api/v1/ledger/entries", _entry_body(a)), (401, 403, 403, 403, 201, 401)),
    ("POST", "/api/v1/ledger/entries/{entryId:str}/reverse"): (
        lambda a: (f"/api/v1/ledger/entries/{_reversible(a)}/reverse", None),
        (401, 403, 403, 403, 201, 401)),
    ("GET", "/api/v1/ledger/verify"): (
        lambda a: ("/api/v1/ledger/verify", None), (401, 403, 403, 200, 200, 401)),
    # Prometheus scrape: dpg.metrics.view only (test_metrics_api: a key with just that scope).
    ("GET", "/metrics"): (lambda a: ("/metrics", None), (401, 403, 403, 403, 200, 401)),
}


def _guarded(handler: Any) -> bool:
    return any(policy_guard in (layer.guards or []) for layer in handler.ownership_layers)


def _operations(app: Litestar) -> list[tuple[str, str, Any]]:
    """Every (method, path, handler) of the app, WebSocket and ASGI routes included."""
    operations: list[tuple[str, str, Any]] = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                operations.extend((m, route.path, handler) for m in sorted(handler.http_methods))
        else:
            operations.append((str(route.scope_type), route.path, route.route_handler))
    return operations


class TestEveryRouteDeclaresAPolicy:
    def test_every_route_declares_a_policy_when_the_app_is_built(self, api: Api) -> None:
        undeclared = [
            f"{method} {path}" for method, path, handler in _operations(api.client.app)
            if policy_of(handler) is None
            or (not is_framework_preflight(handler) and "policy" not in handler.opt)
        ]
        assert undeclared == []

    def test_every_route_runs_the_policy_guard_when_the_app_is_built(self, api: Api) -> None:
        unguarded = [
            f"{method} {path}" for method, path, handler in _operations(api.client.app)
            if not is_framework_preflight(handler) and not _guarded(handler)
        ]
        assert unguarded == []

    def test_route_without_policy_is_refused_when_someone_forgets_to_declare_one(self) -> None:
        @get("/forgot", sync_to_thread=False)
        def forgot() -> str:
            return "secret"

        with TestClient(Litestar([forgot], guards=[policy_guard])) as client:
            response = client.get("/forgot")
        assert response.status_code >= 400
        assert "secret" not in response.text

    def test_matrix_covers_every_route_when_routes_are_added(self, api: Api) -> None:
        operations = {
            (method, path) for method, path, _ in _operations(api.client.app)
            if method != "OPTIONS"
        }
        # Each area keeps its own matrix (its own callers: user-bound keys, managers); together
        # they must cover every route, so a new route cannot ship without its row.
        from tests.unit.api import test_conversion_api, test_trading_policies
        from tests.unit.api.test_operator_policies import OPERATOR_MATRIX
        from tests.unit.api.test_wallets_policies import WALLET_MATRIX

        covered = set(MATRIX) | set(WALLET_MATRIX) | set(test_trading_policies.MATRIX)
        covered |= set(OPERATOR_MATRIX)
        covered |= {
            (method, f"/api/v1/conversion{path}") for method, path in test_conversion_api.MATRIX
        }
        from tests.unit.api.test_blockchain_api import BLOCKCHAIN_MATRIX

        covered |= set(BLOCKCHAIN_MATRIX)
        # The trading feed's handshake has its own test (test_trading_policies).
        covered.add(("ScopeType.WEBSOCKET", "/api/v1/trading/ws"))
        assert operations == covered

    def test_preflight_is_answered_without_a_key_when_a_client_asks_for_options(
        self, api: Api
    ) -> None:
        response = api.client.options("/api/v1/stores")
        assert response.status_code == 204
        assert "OPTIONS" in response.headers["allow"]


def _headers(api: Api, caller: str) -> dict[str, str]:
    if caller == "revoked":
        secret = api.key(UNRESTRICTED)
        api.node.access.revoke_api_key(api.node.access.authenticate(secret).id)
        return {"Authorization": f"token {secret}"}
    return api.auth(caller)


@pytest.mark.parametrize("operation", sorted(MATRIX), ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("caller", CALLERS)
def test_authorization_matrix_holds_when_each_caller_calls_each_route(
    api: Api, operation: tuple[str, str], caller: str
) -> None:
    build, expected = MATRIX[operation]
    url, body = build(api)
    response = api.client.request(operation[0], url, json=body, headers=_headers(api, caller))
    assert response.status_code == expected[CALLERS.index(caller)], response.text


def test_store_list_shows_only_own_store_when_the_key_is_limited_to_it(api: Api) -> None:
    listed = api.client.get("/api/v1/stores", headers=api.auth("store_a")).json()
    assert [store["id"] for store in listed] == [api.store_a]
    everything = api.client.get("/api/v1/stores", headers=api.auth("readonly")).json()
    assert {store["id"] for store in everything} == {api.store_a, api.store_b}
