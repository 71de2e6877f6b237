"""What every screen needs to reach the node: the API client and the operator's token."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from dpgnode.client import AsyncDpgClient
from dpgnode.errors import DpgError, NotFoundError

T = TypeVar("T")


@dataclass
class Connection:
    """The dashboard's link to one node.

    ``operator_token`` identifies the operator approving or rejecting payouts (the API key
    only says the dashboard may); without it those actions explain how to provide one.
    """

    client: AsyncDpgClient
    url: str
    operator_token: str | None = None
    poll_seconds: float = 5.0


class HasConnection(Protocol):
    connection: Connection


class NotAvailable(Exception):  # noqa: N818 - a state to show, not an error to report
    """A route this node does not serve (404 on a listing): the feature is not here."""


async def attempt(call: Awaitable[T]) -> T | DpgError:
    """The call's result, or the node's error: one failing panel does not blank the others."""
    try:
        return await call
    except DpgError as exc:
        return exc


async def feature(call: Awaitable[T]) -> T:
    """The result of a listing call whose 404 means the node lacks the feature."""
    try:
        return await call
    except NotFoundError as exc:
        raise NotAvailable(exc.message) from exc


def describe(error: DpgError) -> str:
    """A one-line message naming what failed, with the request id to quote."""
    request = error.details.get("requestId")
    suffix = f" (request {request})" if request else ""
    return f"{error.message}{suffix}"
