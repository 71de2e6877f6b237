"""What both clients share: the API's base URL, headers, encoding and decoding."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import msgspec

from dpgnode.client.calls import Call
from dpgnode.client.errors import ServerError, error_from_response
from dpgnode.errors import ValidationError

T = TypeVar("T")
API_PREFIX = "/api/v1"
USER_AGENT = "dpgnode-client"


def api_base(url: str) -> str:
    """``http(s)://host[:port][/prefix]/api/v1`` from a node URL, with or without the prefix.

    Raises:
        ValidationError: not an http(s) URL with a host (``field='url'``).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(
            f"the node URL must look like http://host:port, not {url[:80]!r}", field="url"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path += API_PREFIX
    return f"{parts.scheme}://{parts.netloc}{path}"


def feed_url(base: str) -> str:
    """The trading WebSocket's URL under an API base."""
    scheme, rest = base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/trading/ws"


def headers(api_key: str | None) -> dict[str, str]:
    found = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        found["Authorization"] = f"token {api_key}"
    return found


def request_args(call: Call[Any]) -> dict[str, Any]:
    """Keyword arguments of ``httpx.Client.request`` for ``call`` (relative URL)."""
    # Relative to the client's base_url, which ends in /api/v1/.
    args: dict[str, Any] = {"method": call.method, "url": call.path.lstrip("/")}
    if call.params:
        args["params"] = dict(call.params)
    if call.json is not None:
        args["content"] = msgspec.json.encode(call.json)
        args["headers"] = {"Content-Type": "application/json", **call.headers}
    elif call.headers:
        args["headers"] = dict(call.headers)
    return args


def decode(call: Call[T], response: httpx.Response) -> T:
    """The decoded body of a 2xx answer; the node's error type otherwise."""
    if not response.is_success:
        raise error_from_response(response)
    if call.result is None:
        return None  # type: ignore[return-value]  # calls whose answer carries nothing
    try:
        result: T = msgspec.json.decode(response.content, type=call.result)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ServerError(
            f"unexpected answer to {call.method} {call.path}: {exc}",
            details={"status": response.status_code},
        ) from exc
    return result
