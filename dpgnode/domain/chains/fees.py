"""What it costs to get a transaction mined now, as a chain's node estimates it.

Bitcoin fees are a rate in satoshis per 1000 virtual bytes for a confirmation target;
EVM fees are EIP-1559 gas prices in wei. Both are integers (never floats); the API shows
them as decimal strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FeeKind(StrEnum):
    """How a chain prices block space."""

    BITCOIN = "bitcoin"
    EIP1559 = "eip1559"


@dataclass(frozen=True, slots=True)
class FeeLevel:
    """One speed (``slow``, ``normal``, ``fast``)."""

    name: str
    target_blocks: int | None = None
    """Bitcoin: the confirmation target the rate was estimated for."""
    sat_per_kvb: int | None = None
    """Bitcoin: satoshis per 1000 virtual bytes (never below the node's mempool minimum)."""
    max_fee_per_gas: int | None = None
    """EVM: wei per gas, ``2 * base fee + priority fee``."""
    max_priority_fee_per_gas: int | None = None
    """EVM: wei per gas to the block producer."""


@dataclass(frozen=True, slots=True)
class FeeEstimate:
    """A chain's fee levels, slowest first."""

    chain: str
    kind: FeeKind
    levels: tuple[FeeLevel, ...]
    base_fee_per_gas: int | None = None
    """EVM: the next block's base fee, wei per gas."""
    based_on_block: int | None = None
    """EVM: the oldest block of the fee history the levels come from."""
