"""A chain as the watchers see it: blocks of transactions that pay watched addresses.

Bitcoin and EVM chains are reduced to one shape so that one watcher serves both:

- a :class:`Transfer` is value arriving at an address: a Bitcoin output, an EVM native value
  transfer, or an ERC-20/BEP-20 ``Transfer`` log; its ``key`` is unique on its chain and
  stable across reorganisations (``txid:vout``, ``txid:native``, ``txid:log:<index>``), so a
  payment is the same payment whichever block carries it;
- a transaction's ``spends`` are its *conflict keys*: two transactions that share one cannot
  both be in the best chain (Bitcoin: the outpoints it spends, ``prev_txid:vout``; EVM: the
  sender and nonce, ``0xsender:nonce``). That is how replacements and double spends are found
  without knowing the chain's rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dpgnode.errors import ValidationError


@dataclass(frozen=True, slots=True, order=True)
class BlockRef:
    """A block by height and hash: what a watcher remembers of the blocks it processed."""

    height: int
    hash: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Value arriving at a watched address in one transaction."""

    key: str
    """Unique on the chain, the same in every block that carries the transaction."""
    txid: str
    address: str
    """The address as the node issued it (Bitcoin encoding, EIP-55 for EVM)."""
    asset: str
    units: int

    def __post_init__(self) -> None:
        if type(self.units) is not int or self.units <= 0:
            raise ValidationError("a transfer moves a positive amount", field="units")


@dataclass(frozen=True, slots=True)
class ChainTx:
    """A transaction that pays at least one watched address, or one the node tracks."""

    txid: str
    transfers: tuple[Transfer, ...] = ()
    spends: tuple[str, ...] = ()
    """Conflict keys (see the module docstring)."""
    replaceable: bool = False
    """It signals BIP125 replaceability (informational: full-RBF replaces any transaction)."""


@dataclass(frozen=True, slots=True)
class ChainBlock:
    """One block, reduced to what the watcher needs.

    ``transactions`` holds only transactions paying watched addresses; ``spent`` maps the
    conflict keys of *every* transaction in the block to the txid that used them, so a
    transaction that conflicts with a tracked payment is found even when it pays no one we
    watch; ``txids`` is every transaction in the block (our own payouts and sweeps are
    confirmed by id).
    """

    height: int
    hash: str
    prev_hash: str
    time: int
    """Block timestamp, seconds since the epoch."""
    transactions: tuple[ChainTx, ...] = ()
    spent: Mapping[str, str] = field(default_factory=dict)
    txids: frozenset[str] = frozenset()

    @property
    def ref(self) -> BlockRef:
        """The block's height and hash."""
        return BlockRef(self.height, self.hash)


@dataclass(frozen=True, slots=True)
class MempoolView:
    """Unconfirmed transactions: those paying watched addresses, and every conflict key used.

    ``spent`` covers the whole mempool, so a replacement that pays elsewhere is seen as a
    conflict of the transaction it replaced; ``txids`` is every unconfirmed transaction the
    node has (a tracked one missing from it was evicted or replaced).
    """

    transactions: tuple[ChainTx, ...] = ()
    spent: Mapping[str, str] = field(default_factory=dict)
    txids: frozenset[str] = frozenset()
    complete: bool = False
    """``txids`` is the node's whole mempool, so a transaction missing from it is gone (Bitcoin);
    ``False`` where the chain shows no mempool (EVM) and absence means nothing."""
