"""One JSON-RPC call over HTTP, and the one place that translates its failures.

Bitcoin Core/Knots and EVM nodes both speak JSON-RPC over HTTP POST; they differ in the
version they announce and in how they authenticate. Everything that can go wrong on the way
becomes a :mod:`dpgnode.errors` category here (httpx's ``map_httpcore_exceptions`` idea), so
the chain clients above never see an ``httpx`` exception:

- the node cannot be reached, the request times out, the connection breaks, or an HTTP
  error without a JSON-RPC body (a proxy's 502, a busy node's 503, a provider's 429)
  -> ``UnavailableError`` (transient: the caller may retry; ``retry_after`` from the
  response when it says so);
- HTTP 401/403 -> ``ConfigError``: the credentials in the settings are wrong;
- a JSON-RPC error object -> :class:`RpcError`, a ``ValidationError`` carrying the node's
  code and message (what the node refused, in its own words);
- a body that is not JSON-RPC -> ``UnavailableError`` (something else answered).

Amounts in Bitcoin replies are JSON numbers with 8 decimals: they are parsed as ``Decimal``,
never as floats. Messages name the endpoint by scheme, host and port only: RPC URLs of
hosted EVM providers carry API keys in their path, and httpx's own request log line (which
prints the whole URL) is masked for every endpoint built here.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import httpx

from dpgnode.errors import ConfigError, UnavailableError, ValidationError

Auth = Callable[[], tuple[str, str] | None]
"""Returns the basic-auth pair to send (read when needed: a cookie file changes on restart)."""

_MAX_MESSAGE = 300
_IDS = itertools.count(1)


class RpcError(ValidationError):
    """The node answered with a JSON-RPC error: it refused the request, saying why."""

    def __init__(
        self, endpoint: str, method: str, code: int, message: str, *, http_status: int = 200
    ) -> None:
        text = message[:_MAX_MESSAGE]
        super().__init__(
            f"{endpoint} refused {method}: {text}",
            details={"rpcCode": code, "rpcMessage": text, "method": method},
        )
        self.rpc_code = code
        self.rpc_message = text
        self.http_status = http_status
        """HTTP status the error came with (providers send rate-limit errors with 429)."""


class _MaskUrls(logging.Filter):
    """Masks registered secret URLs in httpx's request log lines (they print the full URL)."""

    def __init__(self) -> None:
        super().__init__()
        self._urls: set[str] = set()
        self._lock = threading.Lock()

    def add(self, url: str) -> None:
        with self._lock:
            self._urls.add(url)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            urls = tuple(self._urls)
        if not urls:
            return True
        message = record.getMessage()
        masked = message
        for url in urls:
            masked = masked.replace(url, "<rpc endpoint>")
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_MASK = _MaskUrls()
logging.getLogger("httpx").addFilter(_MASK)


def endpoint_name(url: str) -> str:
    """``http://host:port`` of ``url``: what messages may show (no path, no credentials)."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


class JsonRpcEndpoint:
    """A JSON-RPC endpoint: POSTs one call at a time and translates every failure.

    ``transport`` lets tests put an ``httpx.MockTransport`` in place of the network.
    Thread-safe as far as httpx's client is (one connection pool per endpoint).
    """

    def __init__(
        self,
        url: str,
        *,
        label: str,
        timeout: float,
        version: str = "2.0",
        auth: Auth | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        try:
            self.name = f"{label} at {endpoint_name(url)}"
        except httpx.InvalidURL as exc:
            raise ConfigError(f"{label}: invalid RPC URL") from exc
        if httpx.URL(url).scheme not in ("http", "https"):
            raise ConfigError(f"{label}: the RPC URL must be http:// or https://")
        self._url = url
        self._version = version
        self._auth = auth
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, transport=transport)
        _MASK.add(url)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """The ``result`` of ``method(*params)``; see the module docstring for the errors."""
        body = {"jsonrpc": self._version, "id": next(_IDS), "method": method,
                "params": list(params)}
        return self._result(method, self._send(method, body, timeout))

    def call_many(
        self, method: str, params: Sequence[Sequence[Any]], *, timeout: float | None = None
    ) -> list[Any]:
        """``method`` once per parameter list, in one HTTP request (a JSON-RPC batch).

        Saves a round trip per call where many answers are needed at once (a mempool's
        transactions). Returns, in the order of ``params``, each call's result or the
        :class:`RpcError` the node answered it with (returned, not raised: one refused call
        does not void the others). The request's own failures raise as in :meth:`call`; a
        reply that leaves a call unanswered is ``UnavailableError``.
        """
        if not params:
            return []
        ids = [next(_IDS) for _ in params]
        body = [{"jsonrpc": self._version, "id": id_, "method": method, "params": list(p)}
                for id_, p in zip(ids, params, strict=True)]
        response = self._send(method, body, timeout)
        try:
            replies = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            replies = None
        if not isinstance(replies, list):  # refused as a whole: one error object, or junk
            self._result(method, response)
            raise UnavailableError(f"{self.name} answered a {method} batch without a list")
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        results: list[Any] = []
        for id_ in ids:
            reply = by_id.get(id_)
            if reply is None or not ("result" in reply or "error" in reply):
                raise UnavailableError(f"{self.name} left a call of a {method} batch unanswered")
            error = reply.get("error")
            if error is None:
                results.append(reply.get("result"))
            elif isinstance(error, dict):
                code, message = error.get("code"), error.get("message")
                results.append(RpcError(self.name, method, code if isinstance(code, int) else 0,
                                        message if isinstance(message, str) else str(message),
                                        http_status=response.status_code))
            else:
                raise UnavailableError(f"{self.name} sent a malformed error for {method}")
        return results

    def _send(self, method: str, body: object, timeout: float | None) -> httpx.Response:
        """POST ``body``; transport failures and refused credentials translated."""
        try:
            response = self._client.post(
                self._url,
                content=json.dumps(body, default=_exact),
                headers=self._headers(),
                timeout=timeout if timeout is not None else self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise UnavailableError(
                f"{self.name} did not answer {method} in time ({type(exc).__name__})",
                retry_after=5,
            ) from exc
        except httpx.TransportError as exc:
            raise UnavailableError(
                f"{self.name} cannot be reached ({type(exc).__name__})", retry_after=5
            ) from exc
        if response.status_code in (401, 403):
            raise ConfigError(f"{self.name} refused the RPC credentials "
                              f"(HTTP {response.status_code})")
        return response

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        pair = self._auth() if self._auth is not None else None
        if pair is not None:  # RFC 7617 basic auth, as Bitcoin Core expects
            token = base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        return headers

    def _result(self, method: str, response: httpx.Response) -> Any:
        if response.status_code in (401, 403):
            raise ConfigError(f"{self.name} refused the RPC credentials "
                              f"(HTTP {response.status_code})")
        try:
            reply = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or not ("result" in reply or "error" in reply):
            raise UnavailableError(
                f"{self.name} answered {method} with HTTP {response.status_code} and no "
                "JSON-RPC reply",
                retry_after=_retry_after(response),
                details={"httpStatus": response.status_code},
            )
        error = reply.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise UnavailableError(f"{self.name} sent a malformed error for {method}")
            code = error.get("code")
            message = error.get("message")
            raise RpcError(self.name, method, code if isinstance(code, int) else 0,
                           message if isinstance(message, str) else str(message),
                           http_status=response.status_code)
        return reply.get("result")


def _retry_after(response: httpx.Response) -> int:
    text = response.headers.get("Retry-After", "")
    return min(int(text), 3600) if text.isdigit() and int(text) > 0 else 5


def _exact(value: object) -> str:
    """Decimal parameters travel as exact strings (both node families accept them)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot send {type(value).__name__} over JSON-RPC")
