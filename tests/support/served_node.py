"""A real node served over HTTP on 127.0.0.1 by granian, inside the test process.

``served_node(node)`` runs ``create_app(node)`` in granian's embedded server on a thread of
its own (its own event loop) on a free port, so a client under test speaks real HTTP and
WebSocket to the real app, while the test keeps the ``node`` object to seed data and
check effects. The node is built with a ``FixedClock`` and :class:`SequentialIds`, so
what a dashboard shows is the same on every run (snapshot tests need that).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server

from dpgnode.api.app import create_app
from dpgnode.node import Node

WAIT = 30.0  # bounds the wait for the server to listen; nothing asserts on time


class SequentialIds:
    """``IdGenerator`` giving ``prefix_<32 hex digits>`` in creation order, from ``start``.

    Deterministic, unlike UUIDv7: ids shown on screen are the same on every run. Two
    generators over one database must start far apart so they never collide.
    """

    def __init__(self, start: int = 1) -> None:
        self.next = start
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            value, self.next = self.next, self.next + 1
        return f"{prefix}_{value:032x}"


@dataclass(frozen=True)
class Served:
    node: Node
    url: str
    """``http://127.0.0.1:PORT`` (the client adds ``/api/v1``)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def served_node(node: Node) -> Iterator[Served]:
    """Serve ``node``'s API until the block ends; the caller still owns (and closes) it."""
    port = _free_port()
    server = Server(
        create_app(node), address="127.0.0.1", port=port, interface=Interfaces.ASGI,
        log_enabled=False, log_level=LogLevels.warning,
    )
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=run, name=f"granian-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_listening(url)
        yield Served(node, url)
    finally:
        loop.call_soon_threadsafe(server.stop)
        thread.join(WAIT)


def _wait_listening(url: str) -> None:
    with httpx.Client(timeout=2) as client:
        for _ in range(int(WAIT / 0.02)):
            try:
                client.get(f"{url}/api/v1/health")
                return
            except httpx.TransportError:
                threading.Event().wait(0.02)
    raise RuntimeError(f"the embedded server at {url} never answered")
