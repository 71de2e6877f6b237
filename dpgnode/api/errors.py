"""The one place that turns errors into HTTP responses: RFC 9457 problem documents.

Status codes by error category:

============================  ======  =================================================
error                         status  notes
============================  ======  =================================================
malformed JSON, wrong types,  400     raised while decoding (msgspec / Litestar) or for a
unknown fields, bad headers           malformed header or query parameter: the request
                                      cannot be understood as sent (Greenfield's 400)
``ValidationError``           422     understood, but a business rule refuses it
                                      (over-precise amount, unknown asset, bad range)
``AuthenticationError``       401     with ``WWW-Authenticate: token``
``PermissionDeniedError``     403
``NotFoundError``             404     also for objects of a store the key cannot see
``ConflictError``             409     ``IdempotencyKeyReusedError`` has its own ``code``
``InsufficientFundsError``    422
``PolicyDeniedError``         422
body too large                413
``RateLimitedError``          429     with ``Retry-After``
``UnavailableError``          503     with ``Retry-After``
anything else                 500     the body carries only the request id
============================  ======  =================================================

Every body is ``application/problem+json`` with ``type`` (a documentation URL of the
``code``), ``title``, ``status``, ``detail``, ``instance`` (the request path), plus ``code``
and ``message`` (what Greenfield clients read), ``requestId`` and, for the 400/422
families, ``errors: [{"path", "message"}]`` naming each offending field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import ParameterKwarg
from litestar.types import Scope

from dpgnode.errors import (
    AuthenticationError,
    ConflictError,
    DpgError,
    InsufficientFundsError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    PolicyDeniedError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
)

PROBLEM_JSON = "application/problem+json"
DOCS_URL = "https://docs.dpg.example/errors/"
REQUEST_ID_STATE = "dpg.request_id"
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_NAMED_FIELD = re.compile(r"(contains unknown|missing required) field `([^`]*)`")

# Most specific first: the first matching class decides.
_STATUS: tuple[tuple[type[DpgError], int], ...] = (
    (ValidationError, 422),
    (NotFoundError, 404),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (ConflictError, 409),
    (InsufficientFundsError, 422),
    (PolicyDeniedError, 422),
    (RateLimitedError, 429),
    (UnavailableError, 503),
)
_HTTP_CODES: Mapping[int, str] = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited",
    503: "unavailable",
}
_TITLES: Mapping[str, str] = {
    "validation_failed": "Validation failed",
    "invalid_request": "Invalid request",
    "invalid_json": "Malformed JSON",
    "unauthenticated": "Authentication required",
    "forbidden": "Permission denied",
    "not_found": "Not found",
    "conflict": "Conflict",
    "idempotency_key_reused": "Idempotency key reused",
    "insufficient_funds": "Insufficient funds",
    "policy_denied": "Refused by policy",
    "rate_limited": "Too many requests",
    "unavailable": "Temporarily unavailable",
    "payload_too_large": "Request body too large",
    "internal_error": "Internal error",
}
log = structlog.get_logger("dpgnode.api")


class FieldError(msgspec.Struct):
    path: str
    message: str


class Problem(msgspec.Struct, rename="camel", omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    message: str
    request_id: str
    errors: list[FieldError] | msgspec.UnsetType = msgspec.UNSET
    details: dict[str, str | int] | msgspec.UnsetType = msgspec.UNSET


def bad_request(field: str, message: str) -> ValidationException:
    """A 400 naming ``field``: for malformed headers and query parameters."""
    return ValidationException(
        detail=f"{field}: {message}", extra=[{"key": field, "message": message}]
    )


def request_id_of(scope: Scope) -> str:
    """The request's id: set by the context middleware, else taken or made here."""
    state = scope.setdefault("state", {})
    existing = state.get(REQUEST_ID_STATE)
    if isinstance(existing, str):
        return existing
    rid = incoming_request_id(scope) or new_request_id()
    state[REQUEST_ID_STATE] = rid
    return rid


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.match(text) else None
    return None


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def status_for(exc: BaseException) -> int:
    """The HTTP status an exception becomes (also used for access logs)."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    for category, status in _STATUS:
        if isinstance(exc, category):
            return status
    return 500


def _title(code: str) -> str:
    return _TITLES.get(code) or code.replace("_", " ").capitalize()


def _aliases(scope: Scope | None) -> dict[str, str]:
    """Python parameter name -> the name the client sent (``owner_type`` -> ``ownerType``)."""
    handler = scope.get("route_handler") if scope is not None else None
    signature = getattr(handler, "parsed_fn_signature", None)
    if signature is None:
        return {}
    return {
        name: field.kwarg_definition.name
        for name, field in signature.parameters.items()
        if isinstance(field.kwarg_definition, ParameterKwarg) and field.kwarg_definition.name
    }


def _from_http(
    exc: HTTPException, scope: Scope | None = None
) -> tuple[str, str, list[FieldError]]:
    status = exc.status_code
    detail = str(exc.detail)
    if isinstance(exc, ValidationException) or (status == 400 and isinstance(exc.extra, list)):
        aliases = _aliases(scope)
        errors = [
            _field_error(item, aliases) for item in exc.extra or [] if isinstance(item, dict)
        ]
        if errors:
            summary = "; ".join(f"{e.path}: {e.message}" for e in errors)
            return "invalid_request", summary, errors
        return "invalid_request", detail, []
    if status == 400 and isinstance(exc.__cause__, SerializationException):
        message = f"the body is not valid JSON: {detail}"
        return "invalid_json", message, [FieldError("body", message)]
    return _HTTP_CODES.get(status, f"http_{status}"), detail, []


def _field_error(item: dict[str, Any], aliases: Mapping[str, str]) -> FieldError:
    key = str(item.get("key", ""))
    key = aliases.get(key, key)
    message = str(item.get("message", "invalid value"))
    parent = "" if key in ("", "data") else f"{key}."
    named = _NAMED_FIELD.search(message)
    if named is not None:
        unknown = named.group(1) == "contains unknown"
        what = "unknown field" if unknown else "required field is missing"
        return FieldError(f"{parent}{named.group(2)}", what)
    if key == "data":
        if message.startswith("'"):  # Litestar's KeyError text: no body at all
            return FieldError("body", "a JSON body is required")
        return FieldError("body", message)
    return FieldError(key or "body", message)


def problem_for(
    exc: BaseException, instance: str, request_id: str, scope: Scope | None = None
) -> tuple[Problem, int]:
    """The problem document and status for ``exc`` (``scope`` names aliased parameters)."""
    status = status_for(exc)
    errors: list[FieldError] = []
    details: dict[str, str | int] = {}
    if isinstance(exc, HTTPException) and status < 500:
        code, detail, errors = _from_http(exc, scope)
    elif isinstance(exc, DpgError) and (status < 500 or isinstance(exc, UnavailableError)):
        code, detail = exc.code, exc.message
        details = {k: v for k, v in exc.details.items() if k != "field"}
        if isinstance(exc, ValidationError):
            errors = [FieldError(exc.field or str(exc.details.get("field", "body")), detail)]
    else:
        status, code = 500, "internal_error"
        detail = f"An internal error occurred; quote request id {request_id} when reporting it."
    problem = Problem(
        type=f"{DOCS_URL}{code}", title=_title(code), status=status, detail=detail,
        instance=instance, code=code, message=detail, request_id=request_id,
        errors=errors or msgspec.UNSET, details=details or msgspec.UNSET,
    )
    return problem, status


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar exception handler for every exception (registered for ``Exception``)."""
    request_id = request_id_of(request.scope)
    problem, status = problem_for(exc, request.url.path, request_id, request.scope)
    if isinstance(exc, IntegrityError):
        log.critical("invariant failed", error=type(exc).__name__, exc_info=exc)
    elif status == 500:
        log.error("request failed", error=type(exc).__name__, exc_info=exc)
    headers = {REQUEST_ID_HEADER: request_id}
    if isinstance(exc, HTTPException) and exc.headers:
        headers.update(exc.headers)
    if status == 401:
        headers["WWW-Authenticate"] = "token"
    if isinstance(exc, RateLimitedError | UnavailableError):
        headers["Retry-After"] = str(max(1, exc.retry_after))
    return Response(
        content=msgspec.json.encode(problem), status_code=status,
        media_type=PROBLEM_JSON, headers=headers,
    )


_DESCRIPTIONS: Mapping[int, str] = {
    400: "Malformed request: bad JSON, wrong types, unknown fields, bad header or query",
    401: "Missing, malformed or revoked API key",
    403: "The API key lacks the permission this route needs",
    404: "No such object, or not visible to this API key",
    409: "Conflict: illegal state change, or Idempotency-Key reused for another request",
    413: "Request body too large",
    422: "Refused by a business rule; `errors` names the fields",
    429: "Too many requests; retry after `Retry-After` seconds",
    503: "A chain node or another dependency cannot be reached; retry after `Retry-After`",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries documenting the problem documents a route may answer with."""
    return {
        status: ResponseSpec(
            data_container=Problem, description=_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON, generate_examples=False,
        )
        for status in statuses
    }


PUBLIC_ERRORS = (429,)
READ_ERRORS = (400, 401, 403, 429)
WRITE_ERRORS = (400, 401, 403, 409, 413, 422, 429)
