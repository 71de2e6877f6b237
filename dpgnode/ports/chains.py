"""Handing a signed payout transaction to its chain.

Contract for every implementation of :class:`TransactionBroadcaster`:

- ``broadcast`` is idempotent by txid: a transaction the node already has (in its mempool
  or in a block) is reported ``accepted`` with ``known=True``, never refused, so a retry
  after a lost answer records the payout once;
- where the chain can check a transaction without relaying it (Bitcoin's
  ``testmempoolaccept``), that check runs first and a refusal relays nothing;
- a refusal (``accepted=False``) carries the node's own reason, at most 300 characters;
- ``UnavailableError`` means the node could not be reached or did not answer: the outcome
  is unknown and retrying with the same transaction is safe; ``ConfigError`` means no node
  is configured for the asset; ``IntegrityError`` means the node computed another txid
  for the transaction than the one recorded (the record and the raw bytes disagree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    """What the chain's node did with a transaction."""

    accepted: bool
    txid: str
    reason: str = ""
    """The node's reason for a refusal (empty when accepted)."""
    known: bool = False
    """The node had the transaction already (a repeated broadcast)."""


class TransactionBroadcaster(Protocol):
    """Sends signed transactions to the chain of their asset."""

    def broadcast(self, asset: str, raw_tx: str, txid: str) -> BroadcastResult:
        """Check, then relay ``raw_tx`` of ``asset`` whose id is ``txid`` (see the contract)."""
        ...
