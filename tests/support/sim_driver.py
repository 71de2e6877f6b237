"""``ChainDriver`` over the in-process simulated chain (no component needed).

The chain-port contract tests open drivers through :func:`open_driver`, the convention every
driver module follows (``tests/contracts/chain_port/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dpgnode.adapters.chains.simulated import Output, SimulatedChain
from dpgnode.adapters.chains.simulated_client import SimulatedChainClient

__all__ = ["SimDriver", "open_driver"]


class SimDriver:
    """Acts on a :class:`SimulatedChain`; ``client`` reads it without faults."""

    has_mempool = True

    def __init__(self, chain: SimulatedChain) -> None:
        self.chain = chain
        self._client = SimulatedChainClient(chain)

    @property
    def client(self) -> SimulatedChainClient:
        return self._client

    @property
    def asset(self) -> str:
        return self.chain.asset

    def new_address(self) -> str:
        return self.chain.new_address()

    def pay(self, address: str, units: int) -> str:
        return self.chain.pay(address, units).txid

    def mine(self, blocks: int = 1) -> list[str]:
        return self.chain.mine(blocks)

    def reorg(self, depth: int, *, drop: Sequence[str] = ()) -> None:
        self.chain.reorg(depth, drop=drop)

    def replace(self, txid: str, address: str) -> str:
        original = self.chain.tx(txid)
        units = sum(out.units for out in original.outputs)
        return self.chain.replace(txid, [Output(address, units)]).txid


@contextmanager
def open_driver(workdir: Path) -> Iterator[SimDriver]:
    """A simulated chain with a few blocks behind its tip (``workdir`` is unused)."""
    chain = SimulatedChain(seed=4)
    chain.mine(3)
    yield SimDriver(chain)
