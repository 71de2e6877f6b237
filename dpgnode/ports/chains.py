"""The chains as the node's services see them: watching them, and broadcasting to them.

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from dpgnode.domain.chains.blocks import BlockRef, ChainBlock, MempoolView


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


class ChainClient(Protocol):
    """One chain as the watcher reads it (Bitcoin node, EVM endpoints, or the simulator).

    Contract, checked by ``tests/contracts/chain_port`` against the simulator and the real
    nodes alike:

    - ``watch`` adds addresses to the set whose transfers ``block`` and ``mempool`` report;
      it is cumulative and idempotent, and must take a million addresses;
    - ``tip`` is the best block; ``block_hash(h)`` the best chain's hash at height ``h``, or
      ``None`` above the tip; ``block(h)`` the best chain's block at ``h`` (``None`` above the
      tip). Between two calls the chain may reorganise: the watcher links blocks by
      ``prev_hash`` and never assumes two answers agree;
    - ``block`` reports every transfer to a watched address, each transaction's conflict keys
      in ``spent`` and every txid in ``txids`` (see :class:`ChainBlock`);
    - ``mempool`` reports unconfirmed transactions the same way (an empty view where the
      chain has no public mempool);
    - ``finalized_height`` is the height the chain itself declares final (EVM ``finalized``
      or ``safe`` tag per the chain's policy), ``None`` where only depth counts (Bitcoin);
    - ``UnavailableError`` for a node that cannot be reached, times out, answers malformed
      data, or contradicts itself (head going backwards past a finalized block, a block whose
      hash does not match what was asked for) when no other endpoint can be trusted instead:
      the watcher backs off and retries, and the next poll resumes where it stopped;
      ``IntegrityError`` only where the client cannot tell a lying node from corrupted
      records of the node's own (a recorded transaction that no longer parses).
    """

    @property
    def chain(self) -> str:
        """The chain's name as settings and assets name it (``bitcoin``, ``ethereum``)."""
        ...

    def watch(self, addresses: Iterable[str]) -> None:
        """Report transfers to these addresses from now on."""
        ...

    def tip(self) -> BlockRef:
        """The best block."""
        ...

    def block_hash(self, height: int) -> str | None:
        """The best chain's block hash at ``height``; ``None`` above the tip."""
        ...

    def block(self, height: int) -> ChainBlock | None:
        """The best chain's block at ``height``; ``None`` above the tip."""
        ...

    def mempool(self) -> MempoolView:
        """Unconfirmed transactions (see the contract)."""
        ...

    def finalized_height(self) -> int | None:
        """The chain's own finality mark, ``None`` where only depth counts."""
        ...


class ChainBalances(Protocol):
    """What a chain says the node's addresses hold: the chain side of reconciliation.

    Contract:

    - ``balances`` answers for ``asset`` (the chain's native asset or one of its tokens) and
      every address asked; an address holding nothing may be left out of the mapping (it
      reads as 0). Amounts are base units;
    - ``at_height`` measures the chain as of that block of the best chain: Bitcoin counts
      outputs mined at or below it that are still unspent at the tip (the UTXO set has no
      past), EVM chains read the state at that block; ``None`` reads the tip;
    - ``UnavailableError`` when the node cannot answer (unreachable, a scan already running,
      state at that height pruned); ``ValidationError`` for an asset the chain does not
      carry. It never returns a partial answer.
    """

    def balances(
        self, asset: str, addresses: Sequence[str], *, at_height: int | None = None
    ) -> Mapping[str, int]:
        """Units of ``asset`` each address holds (see the contract)."""
        ...
