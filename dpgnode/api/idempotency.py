"""``Idempotency-Key`` on every mutating route, as ASGI middleware.

For a POST/PUT/PATCH/DELETE carrying the header, the middleware reads the whole body
(enforcing the size limit), hashes method + path + query + body, and asks
:class:`~dpgnode.services.idempotency.IdempotencyService` for the key (scoped to the API
key, or to the client address on public routes). A first request runs with its response
buffered; the response is stored (when replayable) *before* it is sent, so a client never
sees a response that a retry could not reproduce. A repeat gets the stored status,
content type and body byte for byte, with ``Idempotent-Replayed: true``.

Requests whose credentials the policy guard will refuse pass straight through: they never
run, so they take no key.
"""

from __future__ import annotations

import anyio
import msgspec
import structlog
from litestar.enums import ScopeType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from dpgnode.api.auth import client_ip, identity_of
from dpgnode.api.errors import bad_request, problem_for, request_id_of
from dpgnode.api.policy import SECRET_RESPONSE, policy_of
from dpgnode.errors import SecretNotReplayableError
from dpgnode.ports.idempotency import StoredResponse
from dpgnode.services.idempotency import IdempotencyService, is_valid_key, request_hash

HEADER = "Idempotency-Key"
REQUEST_KEY_STATE = "dpg.idempotency_key"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HEADER = HEADER.lower().encode()
log = structlog.get_logger("dpgnode.api")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes with 413."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestEntityTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def request_key_of(scope: Scope) -> str | None:
    """``owner:key`` of the request's Idempotency-Key, for services that create resources.

    Such a service records it in the same transaction as its effect, so a retry after a
    crash between commit and response finds the first result instead of repeating it.
    """
    value = scope.get("state", {}).get(REQUEST_KEY_STATE)
    return value if isinstance(value, str) else None


def _owner(scope: Scope) -> str | None:
    """Whose keys these are, or ``None`` when the request will be refused anyway."""
    identity = identity_of(scope)
    if identity.scope_id is not None:
        return identity.scope_id
    handler = scope.get("route_handler")
    policy = policy_of(handler) if handler is not None else None
    if identity.error is None and policy is not None and policy.kind == "public":
        return f"ip:{client_ip(scope)}"
    return None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, service: IdempotencyService, max_body_bytes: int) -> None:
        self.app = app
        self._service = service
        self._limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        key = _header(scope, _HEADER)
        owner = _owner(scope) if key is not None else None
        if key is None or owner is None:
            await self.app(scope, receive, send)
            return
        if not is_valid_key(key):
            raise bad_request(HEADER, "must be 1-255 printable ASCII characters without spaces")
        body = await read_body(scope, receive, self._limit)
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        digest = request_hash(scope["method"], f"{target}?{query}", body)
        stored = await self._service.begin(owner, key, digest)
        if stored is not None:
            await _replay(stored, send)
            return
        scope.setdefault("state", {})[REQUEST_KEY_STATE] = f"{owner}:{key}"
        await self._run_first(scope, _replaying(body, receive), send, (owner, key, digest))

    async def _run_first(
        self, scope: Scope, receive: Receive, send: Send, claim: tuple[str, str, str]
    ) -> None:
        start: HTTPResponseStartEvent | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._service.abandon(*claim)
            raise
        if start is None:  # the app sent nothing: nothing to keep or replay
            await self._service.abandon(*claim)
            return
        body = b"".join(chunks)
        try:
            response = StoredResponse(start["status"], _content_type(start), body)
            if _shows_secret(scope) and 200 <= start["status"] < 300:
                response = _secret_withheld(scope)
            await self._service.finish(*claim, response)
        except Exception as exc:
            # The request took effect: still answer it. The key stays claimed until its
            # lock expires, so a retry waits (then 409) rather than running it twice.
            log.error("idempotency record not stored", error=type(exc).__name__)
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _shows_secret(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return handler is not None and bool(handler.opt.get(SECRET_RESPONSE))


def _secret_withheld(scope: Scope) -> StoredResponse:
    """What a retry gets instead of a secret: the effect happened once, the secret is gone.

    Storing the first response would keep the secret in plain text at rest.
    """
    error = SecretNotReplayableError(
        "this request already succeeded and its response carried a secret that is shown "
        "only once; if it was lost, revoke what was created and repeat with a new key"
    )
    problem, status = problem_for(error, scope["path"], request_id_of(scope), scope)
    return StoredResponse(status, "application/problem+json", msgspec.json.encode(problem))


def _content_type(start: HTTPResponseStartEvent) -> str:
    for name, value in start.get("headers", ()):
        if name.lower() == b"content-type":
            return str(value.decode("latin-1"))
    return ""


def _replaying(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def receive_again() -> ReceiveMessage:
        nonlocal delivered
        if not delivered:
            delivered = True
            event: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
            return event
        return await receive()

    return receive_again


async def _replay(stored: StoredResponse, send: Send) -> None:
    headers = [
        (b"content-length", str(len(stored.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    if stored.content_type:
        headers.append((b"content-type", stored.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": stored.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})
