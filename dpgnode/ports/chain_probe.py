"""What a chain client may tell about itself beyond the ``ChainClient`` port (optional).

``dpg chain status`` asks for these when a client offers them (checked with ``isinstance``
against these runtime-checkable protocols) and shows "unknown" otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


class EndpointReport(Protocol):
    """One RPC endpoint of a chain as its client last saw it."""

    @property
    def name(self) -> str:
        """Scheme, host and port only: never a path, query or credential."""
        ...

    @property
    def state(self) -> str:
        """``ok``, ``down``, ``rate_limited``, ``stalled``, ``untrusted`` or ``unchecked``."""
        ...

    @property
    def head(self) -> int | None:
        """The last head height it reported."""
        ...

    @property
    def problem(self) -> str:
        """Why it is left aside (empty when usable)."""
        ...


@runtime_checkable
class ReportsEndpoints(Protocol):
    """A client served by several endpoints (EVM failover) that reports each one."""

    def endpoint_health(self) -> Sequence[EndpointReport]:
        """Every endpoint, in the order the client tries them."""
        ...


@runtime_checkable
class CountsMempool(Protocol):
    """A client that can count the node's unconfirmed transactions cheaply."""

    def mempool_size(self) -> int:
        """Transactions in the node's mempool (``UnavailableError`` when unreachable)."""
        ...
