"""API keys: the caller's own key, and issuing new ones (``/api/v1/api-keys``)."""

from __future__ import annotations

from litestar import Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from dpgnode.api.errors import READ_ERRORS, WRITE_ERRORS, problems
from dpgnode.api.policy import authenticated, requires, shows_secret
from dpgnode.api.schemas.keys import ApiKeyData, CreateApiKeyRequest
from dpgnode.domain.access import UNRESTRICTED, ApiKey
from dpgnode.errors import NotFoundError, ValidationError
from dpgnode.node import Node

_TAGS = ["API keys"]


@get(
    "/api-keys/current", opt=authenticated(), sync_to_thread=False, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def current_key(api_key: NamedDependency[ApiKey]) -> ApiKeyData:
    """The calling key: its id (never its secret), label and permissions."""
    return ApiKeyData(
        api_key=api_key.id, label=api_key.label,
        permissions=[str(p) for p in api_key.permissions],
    )


@delete(
    "/api-keys/current", opt=authenticated(), sync_to_thread=True, status_code=200, tags=_TAGS,
    responses=problems(*WRITE_ERRORS),
)
def revoke_current_key(
    node: NamedDependency[Node], api_key: NamedDependency[ApiKey]
) -> Response[bytes]:
    """Revoke the calling key; it fails with 401 from now on."""
    node.access.revoke_api_key(api_key.id)
    return Response(content=b"", status_code=200)


@post(
    "/api-keys", opt={**requires(UNRESTRICTED), **shows_secret()}, sync_to_thread=True,
    status_code=200, tags=_TAGS,
    responses=problems(*WRITE_ERRORS),
)
def create_key(node: NamedDependency[Node], data: JSONBody[CreateApiKeyRequest]) -> ApiKeyData:
    """Issue a key; the response carries its secret this once (stored only hashed)."""
    try:
        issued = node.access.create_api_key(data.label or "", data.permissions)
    except NotFoundError as exc:  # a permission names a store that does not exist
        raise ValidationError(exc.message, field="permissions") from exc
    return ApiKeyData(
        api_key=issued.secret, label=issued.key.label,
        permissions=[str(p) for p in issued.key.permissions],
    )


ROUTES = [current_key, revoke_current_key, create_key]
