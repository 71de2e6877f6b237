"""Fee estimates of the chains the node is configured for (``GET blockchain/gas/estimate``)."""

from __future__ import annotations

from typing import Protocol

from dpgnode.domain.chains.fees import FeeEstimate


class FeeEstimates(Protocol):
    """Asks a chain's node what block space costs now.

    Contract: ``estimate`` contacts the chain's node and returns at least one level, slowest
    first; ``NotFoundError`` (``details.field = "chain"``) when no node is configured for
    ``chain``; ``UnavailableError`` when the node cannot be reached or gives no estimate
    (a fresh regtest node has none until it has seen enough transactions: the levels then
    fall back to the configured floor, never to a made-up rate).
    """

    def estimate(self, chain: str) -> FeeEstimate:
        """Fee levels of ``chain`` (see the contract)."""
        ...
