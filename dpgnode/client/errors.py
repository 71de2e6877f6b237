"""Problem documents (RFC 9457) back into the node's own error types.

The API maps each :class:`~dpgnode.errors.DpgError` category to a status and puts its
stable ``code`` in the body (``dpgnode.api.errors``); this is the inverse, so a caller of
the client catches the same ``NotFoundError`` or ``PolicyDeniedError`` the node raised,
with ``details`` naming the field, plus ``status`` and ``requestId`` (quote the request id
in a support ticket: the node's logs carry it). Transport failures (refused connection,
timeout) become :class:`~dpgnode.errors.UnavailableError`: the node may come back.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from dpgnode import errors
from dpgnode.errors import DpgError

__all__ = ["ServerError", "error_from_response", "unavailable"]


class ServerError(DpgError):
    """The node failed on its side (5xx other than 503), or answered something unreadable."""

    code = "internal_error"


def _codes(root: type[DpgError]) -> dict[str, type[DpgError]]:
    found: dict[str, type[DpgError]] = {}
    for sub in root.__subclasses__():
        found[sub.code] = sub
        found.update(_codes(sub))
    return found


_BY_CODE: dict[str, type[DpgError]] = {
    code: cls for code, cls in _codes(DpgError).items()
    if cls.__module__ == errors.__name__ and not cls.__name__.startswith("_")
}
# Codes of the 400 family the API produces while decoding a request (not DpgError codes).
_MALFORMED = {"invalid_request", "invalid_json", "bad_request", "payload_too_large",
              "method_not_allowed", "not_acceptable", "unsupported_media_type"}
_BY_STATUS: dict[int, type[DpgError]] = {
    400: errors.ValidationError, 401: errors.AuthenticationError,
    403: errors.PermissionDeniedError, 404: errors.NotFoundError, 409: errors.ConflictError,
    413: errors.ValidationError, 422: errors.ValidationError, 429: errors.RateLimitedError,
    503: errors.UnavailableError,
}


class _FieldError(msgspec.Struct):
    path: str = ""
    message: str = ""


class _Problem(msgspec.Struct, rename="camel"):
    status: int = 0
    code: str = ""
    message: str = ""
    detail: str = ""
    request_id: str = ""
    errors: list[_FieldError] = msgspec.field(default_factory=list)
    details: dict[str, str | int] = msgspec.field(default_factory=dict)


def _problem(response: httpx.Response) -> _Problem | None:
    try:
        return msgspec.json.decode(response.content, type=_Problem)
    except msgspec.DecodeError:
        return None


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else 1


def error_from_response(response: httpx.Response) -> DpgError:
    """The error a non-2xx response stands for, as the node's own exception type."""
    status = response.status_code
    problem = _problem(response)
    if problem is None:
        message = f"HTTP {status} from {response.request.url.path} without a problem document"
        return _build(_BY_STATUS.get(status, ServerError), message, {"status": status}, None,
                      response)
    details: dict[str, str | int] = {**problem.details, "status": status}
    if problem.request_id:
        details["requestId"] = problem.request_id
    field = problem.details.get("field")
    if field is None and problem.errors:
        field = problem.errors[0].path
    message = problem.message or problem.detail or f"HTTP {status}"
    cls: type[DpgError] = (
        errors.ValidationError if problem.code in _MALFORMED
        else _BY_CODE.get(problem.code) or _BY_STATUS.get(status, ServerError)
    )
    return _build(cls, message, details, str(field) if field is not None else None, response)


def _build(
    cls: type[DpgError], message: str, details: dict[str, str | int], field: str | None,
    response: httpx.Response,
) -> DpgError:
    kwargs: dict[str, Any] = {"details": details}
    if issubclass(cls, errors.ValidationError):
        kwargs["field"] = field
    if issubclass(cls, (errors.RateLimitedError, errors.UnavailableError)):
        kwargs["retry_after"] = _retry_after(response)
    return cls(message, **kwargs)


def unavailable(exc: httpx.TransportError, base_url: str) -> errors.UnavailableError:
    """A transport failure: the node is down, unreachable or too slow to answer."""
    reason = type(exc).__name__
    return errors.UnavailableError(
        f"cannot reach the node at {base_url} ({reason}): is it running, is the URL right?",
        details={"reason": reason},
    )
