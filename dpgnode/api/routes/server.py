"""Health, server information and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from dpgnode import __version__
from dpgnode.api.errors import PUBLIC_ERRORS, READ_ERRORS, problems
from dpgnode.api.policy import authenticated, public
from dpgnode.api.schemas.server import Health, ServerInfo


@get(
    "/health", opt=public(), sync_to_thread=False, tags=["Server"],
    responses=problems(*PUBLIC_ERRORS),
)
def health() -> Health:
    """Whether the node is up and synchronized (no key needed)."""
    return Health(synchronized=True)


@get(
    "/server/info", opt=authenticated(), sync_to_thread=False, tags=["Server"],
    responses=problems(*READ_ERRORS),
)
def server_info() -> ServerInfo:
    """Version and synchronization state of the node (any valid key)."""
    return ServerInfo(
        version=__version__, onion=None, supported_payment_methods=[], fully_synched=True,
        sync_status=[],
    )


@get(
    "/openapi.json", opt=public(), sync_to_thread=False, include_in_schema=False,
    media_type="application/vnd.oai.openapi+json",
)
def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return request.app.openapi_schema.to_schema()


ROUTES = [health, server_info, openapi_document]
