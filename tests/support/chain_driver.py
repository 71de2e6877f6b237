"""What a chain-port contract test needs from a chain besides its client: a way to act on it.

The simulator, Bitcoin Knots regtest and anvil each provide a :class:`ChainDriver`, so the
same contract tests (``tests/contracts/chain_port``) run against all of them and the
simulator stays honest about what real nodes do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dpgnode.ports.chains import ChainClient


class ChainDriver(Protocol):
    """Drives one test chain; every method returns once the node reflects the change."""

    @property
    def client(self) -> ChainClient:
        """The port implementation under test, connected to this chain."""
        ...

    @property
    def asset(self) -> str:
        """The asset ``pay`` sends (``BTC``, ``ETH``, or a test token's asset code)."""
        ...

    @property
    def has_mempool(self) -> bool:
        """Whether unconfirmed transactions are visible (``mempool`` non-empty after ``pay``)."""
        ...

    def new_address(self) -> str:
        """A fresh address nobody has paid yet, in the form the node issues addresses."""
        ...

    def pay(self, address: str, units: int) -> str:
        """Send ``units`` of ``asset`` to ``address`` from a funded outside wallet; the txid.

        Left unconfirmed where the chain has a mempool; otherwise it is mined right away.
        """
        ...

    def mine(self, blocks: int = 1) -> list[str]:
        """Mine ``blocks`` blocks on the best chain; their hashes."""
        ...

    def reorg(self, depth: int, *, drop: Sequence[str] = ()) -> None:
        """Replace the last ``depth`` blocks by a longer branch (``depth + 1`` blocks).

        Transactions in ``drop`` are left out of the new branch; where the chain has a
        mempool they return to it, otherwise they are gone. The others are mined again in
        the new branch where the chain allows it (regtest does; anvil's revert drops them).
        """
        ...

    def replace(self, txid: str, address: str) -> str:
        """A conflicting transaction that spends what ``txid`` spent and pays ``address``.

        Broadcast unconfirmed (a full-RBF replacement); the new txid. Chains without a
        mempool raise ``NotImplementedError`` (the contract test skips there).
        """
        ...
