"""Who is calling: ``Authorization: token <API key>`` resolved to a stored key.

The middleware only *identifies* the caller (or records why it could not); the policy
guard decides what the caller may do. Only the ``token`` scheme is accepted (Basic and
Bearer are refused with 401). The secret is hashed and looked up on each request, so a
revoked key stops working at once; it is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from dpgnode.domain.access import ApiKey
from dpgnode.errors import AuthenticationError
from dpgnode.services.access import AccessService

IDENTITY_STATE = "dpg.identity"


@dataclass(frozen=True, slots=True)
class Identity:
    key: ApiKey | None = None
    error: AuthenticationError | None = None

    @property
    def scope_id(self) -> str | None:
        """The key's id as a rate-limit and idempotency scope, if authenticated."""
        return f"key:{self.key.id}" if self.key is not None else None


ANONYMOUS = Identity()


def identity_of(scope: Scope) -> Identity:
    identity = scope.get("state", {}).get(IDENTITY_STATE)
    return identity if isinstance(identity, Identity) else ANONYMOUS


def authenticated_key(scope: Scope) -> ApiKey:
    """The caller's key, else ``AuthenticationError`` saying what was wrong."""
    identity = identity_of(scope)
    if identity.error is not None:
        raise identity.error
    if identity.key is None:
        raise AuthenticationError(
            "authentication required: send the header Authorization: token <API key>"
        )
    return identity.key


def provide_api_key(request: Request[Any, Any, Any]) -> ApiKey:
    """Dependency ``api_key`` for handlers of non-public routes."""
    return authenticated_key(request.scope)


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return str(value.decode("latin-1"))
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, access: AccessService) -> None:
        self.app = app
        self._access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            identity = await self._identify(_authorization(scope))
            scope.setdefault("state", {})[IDENTITY_STATE] = identity
        await self.app(scope, receive, send)

    async def _identify(self, header: str | None) -> Identity:
        if header is None or not header.strip():
            return ANONYMOUS
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "token":
            return Identity(
                error=AuthenticationError(
                    f"the {scheme[:20]} authorization scheme is not supported: "
                    "send Authorization: token <API key>"
                )
            )
        secret = credentials.strip()
        try:
            key = await anyio.to_thread.run_sync(self._access.authenticate, secret)
        except AuthenticationError as exc:
            return Identity(error=exc)
        return Identity(key=key)
