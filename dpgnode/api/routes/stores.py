"""Stores, in Greenfield's shape (``/api/v1/stores``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from dpgnode.api.errors import READ_ERRORS, WRITE_ERRORS, problems
from dpgnode.api.idempotency import request_key_of
from dpgnode.api.policy import requires
from dpgnode.api.schemas.stores import CreateStoreRequest, StoreData, UpdateStoreRequest
from dpgnode.domain.access import STORE_MODIFY, STORE_VIEW, ApiKey
from dpgnode.node import Node

_TAGS = ["Stores"]
StoreId = Annotated[str, PathParameter(name="storeId")]


@get(
    "/stores", opt=requires(STORE_VIEW, any_store=True), sync_to_thread=True, tags=_TAGS,
    responses=problems(*READ_ERRORS),
)
def list_stores(node: NamedDependency[Node], api_key: NamedDependency[ApiKey]) -> list[StoreData]:
    """The stores this key may view."""
    stores = node.access.stores(api_key.visible_store_ids())
    return [StoreData.of(s) for s in stores if api_key.allows(STORE_VIEW, s.id)]


@post(
    "/stores", opt=requires(STORE_MODIFY), sync_to_thread=True, status_code=200, tags=_TAGS,
    responses=problems(*WRITE_ERRORS),
)
def create_store(
    request: Request[Any, Any, Any],
    node: NamedDependency[Node],
    data: JSONBody[CreateStoreRequest],
) -> StoreData:
    """Create a store (needs a key not limited to stores); once per Idempotency-Key."""
    fields = data.fields(data.name)
    return StoreData.of(
        node.access.create_store(fields, request_key=request_key_of(request.scope))
    )


@get(
    "/stores/{storeId:str}", opt=requires(STORE_VIEW, store_param="storeId"),
    sync_to_thread=True, tags=_TAGS, responses=problems(*READ_ERRORS, 404),
)
def get_store(node: NamedDependency[Node], store_id: StoreId) -> StoreData:
    return StoreData.of(node.access.store(store_id))


@put(
    "/stores/{storeId:str}", opt=requires(STORE_MODIFY, store_param="storeId"),
    sync_to_thread=True, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def update_store(
    node: NamedDependency[Node], store_id: StoreId, data: JSONBody[UpdateStoreRequest]
) -> StoreData:
    """Change a store's settings; absent or null fields keep their value."""
    return StoreData.of(node.access.update_store(store_id, data.fields(data.name)))


@delete(
    "/stores/{storeId:str}", opt=requires(STORE_MODIFY, store_param="storeId"),
    sync_to_thread=True, status_code=200, tags=_TAGS, responses=problems(*WRITE_ERRORS, 404),
)
def delete_store(node: NamedDependency[Node], store_id: StoreId) -> Response[bytes]:
    """Archive a store: it disappears from the API, its ledger history stays."""
    node.access.archive_store(store_id)
    return Response(content=b"", status_code=200)


ROUTES = [list_stores, create_store, get_store, update_store, delete_store]
