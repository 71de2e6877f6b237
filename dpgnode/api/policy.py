"""Route access policies and the one guard that enforces them.

Every route declares who may call it through its ``opt`` (``opt=public()``,
``opt=authenticated()`` or ``opt=requires(permission, ...)``); :func:`policy_guard`, installed
on the whole app, reads that declaration and nothing else decides access. A route without a
policy is refused (fail closed), and a test enumerates the app's routes to catch one early.

Outcomes: no or bad credentials -> 401; a key that cannot see the store named in the path
-> 404 (the store's existence is not revealed); a key that sees the store, or a route with
no store, but lacks the permission -> 403. What a permission implies is decided by
:meth:`dpgnode.domain.access.ApiKey.allows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from litestar.connection import ASGIConnection
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler

from dpgnode.api.auth import authenticated_key
from dpgnode.domain.access import ApiKey
from dpgnode.errors import NotFoundError, PermissionDeniedError

POLICY = "policy"
SECRET_RESPONSE = "secret_response"  # noqa: S105 - an opt key, not a credential
"""``opt`` flag of routes whose success response carries a secret shown only once."""


@dataclass(frozen=True, slots=True)
class Policy:
    kind: Literal["public", "authenticated", "permission"]
    permission: str | None = None
    store_param: str | None = None
    """Path parameter holding the store the permission must cover."""
    any_store: bool = False
    """Satisfied by the permission on any one store (listing routes filter what they show)."""

    def describe(self) -> str:
        if self.kind != "permission":
            return self.kind
        scope = f" on {{{self.store_param}}}" if self.store_param else ""
        return f"{self.permission}{scope}{' (any store)' if self.any_store else ''}"


_PREFLIGHT = Policy("public")


def public() -> dict[str, Any]:
    """Anyone, without a key."""
    return {POLICY: Policy("public")}


def authenticated() -> dict[str, Any]:
    """Any valid, unrevoked API key."""
    return {POLICY: Policy("authenticated")}


def requires(
    permission: str, *, store_param: str | None = None, any_store: bool = False
) -> dict[str, Any]:
    """A key granting ``permission``: for the path's store, on any store, or unscoped."""
    return {POLICY: Policy("permission", permission, store_param, any_store)}


def shows_secret() -> dict[str, Any]:
    """Mark a route whose success response carries a secret (never stored for replay)."""
    return {SECRET_RESPONSE: True}


def policy_of(handler: BaseRouteHandler) -> Policy | None:
    """The route's declared policy; Litestar's own OPTIONS answers count as public."""
    policy = handler.opt.get(POLICY)
    if isinstance(policy, Policy):
        return policy
    return _PREFLIGHT if is_framework_preflight(handler) else None


def is_framework_preflight(handler: BaseRouteHandler) -> bool:
    """Whether Litestar made this handler to answer OPTIONS with the allowed methods.

    It reveals nothing but the route's methods, and cannot carry our ``opt``.
    """
    return (
        isinstance(handler, HTTPRouteHandler)
        and handler.http_methods == {"OPTIONS"}
        and getattr(handler.fn, "__module__", "") == "litestar.routes.http"
    )


def policy_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    policy = policy_of(handler)
    if policy is None:
        raise PermissionDeniedError("this route declares no access policy")
    if policy.kind == "public":
        return
    key = authenticated_key(connection.scope)
    if policy.kind == "authenticated" or policy.permission is None:
        return
    permission = policy.permission
    if policy.store_param is not None:
        store_id = str(connection.path_params[policy.store_param])
        if key.allows(permission, store_id):
            return
        visible = key.visible_store_ids()
        if visible is not None and store_id not in visible:
            raise NotFoundError(
                f"no store {store_id[:64]}", details={"field": policy.store_param}
            )
    elif key.allows(permission) or (policy.any_store and _on_some_store(key, permission)):
        return
    raise PermissionDeniedError(
        f"this API key lacks the permission {permission}", details={"permission": permission}
    )


def _on_some_store(key: ApiKey, permission: str) -> bool:
    return any(
        key.allows(permission, granted.store_id)
        for granted in key.permissions
        if granted.store_id is not None
    )
