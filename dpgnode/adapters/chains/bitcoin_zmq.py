"""Waking the Bitcoin watcher early when the node announces a block or a transaction (ZMQ).

Bitcoin Core / Knots publish notifications over ZeroMQ (``-zmqpubhashblock``,
``-zmqpubrawtx``, ``-zmqpubhashtx``, ``-zmqpubsequence`` ...). They are only a hint: ZMQ
drops messages when a queue is full, says nothing about what happened while the subscriber
was disconnected, and a reorganisation shows as a plain new block. So nothing is read from
the messages; a message only ends the watcher's wait before its poll interval, and the poll
asks the node over RPC as always. Without ZMQ (or with an endpoint nobody publishes on)
polling alone finds everything, a poll interval later.
"""

from __future__ import annotations

import re

import zmq

from dpgnode.errors import ConfigError

_URL = re.compile(r"^(tcp|ipc)://\S+$")
_TOPICS = (b"hashblock", b"rawblock", b"hashtx", b"rawtx", b"sequence")
_DRAIN_LIMIT = 10_000
"""Queued messages discarded per wake-up at most, so a busy mempool cannot hold the loop."""


class ZmqWakeup:
    """A subscription to a node's ZMQ notifications; :meth:`wait` returns on the next one.

    Not thread-safe (ZMQ sockets are not): one watcher thread waits on it.
    """

    def __init__(self, url: str) -> None:
        if not _URL.match(url):
            raise ConfigError("chains.bitcoin.zmq_url must be tcp://host:port or ipc://path",
                              details={"field": "chains.bitcoin.zmq_url"})
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        for topic in _TOPICS:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic)
        try:
            self._socket.connect(url)  # asynchronous: a node not listening yet is fine
        except zmq.ZMQError as exc:
            self.close()
            raise ConfigError(f"chains.bitcoin.zmq_url: {exc.strerror}",
                              details={"field": "chains.bitcoin.zmq_url"}) from exc

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when notifications arrived (all consumed)."""
        if not self._socket.poll(max(0, int(timeout * 1000))):
            return False
        for _ in range(_DRAIN_LIMIT):
            try:
                self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
        return True

    def close(self) -> None:
        """Close the socket and its context (idempotent)."""
        self._socket.close(linger=0)
        self._context.term()
