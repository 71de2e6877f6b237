"""A JSON-RPC proxy in front of a real EVM node that can alter its answers.

Built on :mod:`tests.support.jsonrpc_server` (real sockets, real HTTP): every request is
forwarded to the upstream node and its answer returned, unless ``proxy.rewrite`` changes the
result first. Tests use it to make a provider lie (a head going backwards, a missing block, a
block that does not link), to move the ``safe``/``finalized`` tags, or to refuse requests
(``proxy.refuse`` returns a canned :class:`~tests.support.jsonrpc_server.Reply`). Both can be
swapped mid-test; ``proxy.server.seen`` records every request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.jsonrpc_server import Reply, RpcServer, Seen, ok, rpc_server

__all__ = ["EvmProxy", "evm_proxy"]


@dataclass
class EvmProxy:
    """The running proxy: its URL, what it saw, and how it alters answers."""

    server: RpcServer
    upstream: str
    rewrite: Callable[[Seen, Any], Any] | None = None
    """``(request, upstream result) -> result to send``."""
    refuse: Callable[[Seen], Reply | None] | None = None
    """A reply to send instead of forwarding (``None``: forward)."""
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @property
    def url(self) -> str:
        return self.server.url

    def calls(self, method: str) -> list[Seen]:
        return [seen for seen in self.server.seen if seen.method == method]

    def forward(self, seen: Seen) -> Reply:
        if self.refuse is not None:
            refused = self.refuse(seen)
            if refused is not None:
                return refused
        body = {"jsonrpc": "2.0", "id": 1, "method": seen.method, "params": seen.params}
        answer = self.client.post(self.upstream, json=body).json()
        if "error" in answer or self.rewrite is None:
            return Reply(200, json.dumps(answer).encode())
        return ok(json.dumps(self.rewrite(seen, answer.get("result"))))  # a str is JSON text


@contextmanager
def evm_proxy(upstream: str) -> Iterator[EvmProxy]:
    """A proxy of ``upstream`` on a free 127.0.0.1 port, stopped on exit."""
    with rpc_server() as server:
        proxy = EvmProxy(server, upstream)
        server.reply = proxy.forward
        try:
            yield proxy
        finally:
            proxy.client.close()
