"""Chain nodes over JSON-RPC: funding payouts (``PayoutFunding``) and broadcasting them.

:class:`PayoutChains` bundles the two for one process; ``dpgnode.node.build_payout_chains``
builds it from the ``[chains]`` settings. Nothing here holds or asks for a secret key: hot
keys' public keys come from the signer through a narrow :class:`PublicKeys` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpgnode.adapters.chains.broadcast import ChainBroadcaster
from dpgnode.adapters.chains.connections import ChainConnections
from dpgnode.adapters.chains.funding import ChainPayoutFunding, PublicKeys

__all__ = ["ChainBroadcaster", "ChainConnections", "ChainPayoutFunding", "PayoutChains",
           "PublicKeys"]


@dataclass(frozen=True, slots=True)
class PayoutChains:
    """Funding and broadcasting over the configured chain nodes; close it when done."""

    connections: ChainConnections
    funding: ChainPayoutFunding
    broadcaster: ChainBroadcaster

    def configured(self, asset: str) -> bool:
        """Whether ``[chains]`` names a node (and token contract) for ``asset``."""
        return self.connections.configured(asset)

    def check(self, asset: str) -> str:
        """Contact the node that serves ``asset``; a line describing it (see ``check``)."""
        return self.connections.check(asset)

    def close(self) -> None:
        """Close every node connection."""
        self.connections.close()
