"""What sweeping deposits needs from the chains: balances, outputs, gas, nonces, broadcasting.

Contract for every :class:`SweepChain`:

- reads (``bitcoin_funds``, ``balance``, ``fees``, ``estimate_gas``) never write or sign and
  raise ``UnavailableError`` when the chain's node cannot be reached, ``ConfigError`` when no
  node (or token contract) is configured for the asset;
- ``bitcoin_funds`` returns confirmed outputs of the account's issued addresses that no
  mempool transaction or signed payout spends yet (as payouts are funded);
- ``reserve_nonce`` hands out each nonce of a sender once in this process: the lease is
  committed once its transaction was accepted, released otherwise (then reused);
- ``broadcast`` follows :class:`~dpgnode.ports.chains.TransactionBroadcaster`'s contract;
- ``wait_mined`` returns, within about ``timeout`` seconds, the txids among ``txids`` that a
  block holds (a reverted EVM transaction is mined too: its fee was paid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dpgnode.domain.custody.networks import Network
from dpgnode.ports.chains import BroadcastResult
from dpgnode.ports.custody import BitcoinFunding


@dataclass(frozen=True, slots=True)
class EvmFees:
    """An EVM chain's id and the EIP-1559 fees to sign with now, in wei per gas."""

    chain_id: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


class NonceLease(Protocol):
    """One reserved nonce of a sender."""

    @property
    def nonce(self) -> int:
        """The nonce to sign with."""
        ...

    def commit(self) -> None:
        """Its transaction was accepted: the nonce stays taken."""
        ...

    def release(self) -> None:
        """It was not used: the next reservation may take it."""
        ...


class SweepChain(Protocol):
    """The chain nodes a sweep reads and broadcasts to (see the module contract)."""

    def bitcoin_funds(self, account_id: str, network: Network) -> BitcoinFunding:
        """Spendable outputs of a key account's issued addresses, and the fee rate to pay."""
        ...

    def balance(self, asset: str, address: str) -> int:
        """``address``'s balance of an EVM coin or token, in base units."""
        ...

    def token_contract(self, asset: str) -> str:
        """The ERC-20 contract of a token asset."""
        ...

    def fees(self, chain: str) -> EvmFees:
        """Current fees of EVM chain ``chain`` (capped by its configured ceiling)."""
        ...

    def estimate_gas(
        self, chain: str, *, sender: str, to: str, value: int = 0, data: bytes = b""
    ) -> int:
        """Gas limit to sign with for this call.

        The estimate plus the configured margin; a plain transfer to an account without code
        gets exactly what it costs.
        """
        ...

    def reserve_nonce(self, chain: str, sender: str) -> NonceLease:
        """The sender's next free nonce on ``chain``."""
        ...

    def broadcast(self, asset: str, raw_tx: str, txid: str) -> BroadcastResult:
        """Check, then relay a signed transaction of ``asset``."""
        ...

    def wait_mined(self, chain: str, txids: Sequence[str], timeout: float) -> set[str]:
        """Those of ``txids`` in a block, waiting up to ``timeout`` seconds for the rest."""
        ...
