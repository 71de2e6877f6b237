"""A scripted JSON-RPC server on 127.0.0.1 for the chain clients' error paths.

Real sockets and real HTTP (``http.server``), so timeouts, refused connections and status
codes reach the clients exactly as a node's would. A test sets ``server.reply`` to a function
of the request (``method``, ``params``, headers) returning a :class:`Reply`; the server also
records every request it saw. Replies that must outlast a client's timeout wait on an event
the fixture sets at teardown, so no handler thread outlives the test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Reply", "RpcServer", "Seen", "batch", "error", "ok", "rpc_server"]


@dataclass(frozen=True)
class Reply:
    """What the server sends: status, body bytes, headers; ``stall`` holds the answer back."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall: bool = False


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    path: str
    method: str
    params: list[Any]
    headers: dict[str, str]
    batch_ids: list[Any] | None = None
    """For a JSON-RPC batch: the calls' ids (``method`` is the first call's, ``params`` one
    parameter list per call); ``None`` for a single call."""


def ok(result: Any, *, status: int = 200) -> Reply:
    """A JSON-RPC success (``result`` as a JSON text fragment when given as ``str``)."""
    fragment = result if isinstance(result, str) else json.dumps(result)
    return Reply(status, f'{{"jsonrpc":"2.0","id":1,"result":{fragment}}}'.encode())


def batch(seen: Seen, answers: list[Any]) -> Reply:
    """A batch reply: per call a result, or an ``(code, message)`` tuple for an error."""
    replies = [
        {"result": None, "error": {"code": a[0], "message": a[1]}, "id": id_}
        if isinstance(a, tuple) else {"result": a, "error": None, "id": id_}
        for id_, a in zip(seen.batch_ids or [], answers, strict=True)
    ]
    return Reply(200, json.dumps(replies).encode())


def error(code: int, message: str, *, status: int = 200) -> Reply:
    """A JSON-RPC error object (Bitcoin Core sends them with HTTP 500 to 1.0 requests)."""
    body = {"result": None, "error": {"code": code, "message": message}, "id": 1}
    return Reply(status, json.dumps(body).encode())


@dataclass
class RpcServer:
    """The running server: its URL, the reply script and what it received."""

    port: int
    reply: Callable[[Seen], Reply] = field(default=lambda seen: ok(None))
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def methods(self) -> list[str]:
        return [s.method for s in self.seen]


def _handler(server: RpcServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            headers = {k.lower(): v for k, v in self.headers.items()}
            if isinstance(request, list):
                seen = Seen(self.path, request[0].get("method", "") if request else "",
                            [call.get("params", []) for call in request], headers,
                            batch_ids=[call.get("id") for call in request])
            else:
                seen = Seen(self.path, request.get("method", ""), request.get("params", []),
                            headers)
            server.seen.append(seen)
            reply = server.reply(seen)
            if reply.stall:
                server.release.wait(30)
                return
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:  # the client gave up first: nothing to report
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def rpc_server() -> Iterator[RpcServer]:
    """A scripted server on a free 127.0.0.1 port, stopped (and its stalls released) on exit."""
    state = RpcServer(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), name="rpc-server",
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
