"""ERC-20 ``Transfer`` logs of the registry's tokens, fetched ahead in bounded ranges.

Scanning block by block with one ``eth_getLogs`` per block would cost a round trip per block;
:class:`LogWindow` asks once for up to ``log_range`` blocks (filtered by the token contracts
and the ``Transfer`` topic, never by recipient: a million watched addresses fit no filter) and
serves the following blocks from that answer. What keeps the cache honest:

- a block's logs are used only when every one of them carries the hash of the block being
  read; otherwise (a reorganisation since the range was fetched) they are fetched again for
  exactly that block by its hash (EIP-234), and if those too belong to another block,
  ``UnavailableError``: the chain is moving under us, the watcher retries;
- an empty answer for a block is cross-checked against the block's own ``logsBloom``: when
  the bloom may hold a token contract and the ``Transfer`` topic, the block's logs are
  fetched by hash (a stale range, or a provider that had not indexed the block yet, would
  otherwise hide a payment; a bloom false positive only costs one request);
- a provider refusing the range (result caps, block-range limits) halves it, down to one
  block; after ten answers in a row it doubles back towards ``log_range``.

Only logs shaped like ERC-20 transfers (three topics, a 32-byte value) are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dpgnode.adapters.chains.evm_endpoints import Untrusted
from dpgnode.adapters.chains.jsonrpc import RpcError
from dpgnode.domain.custody.evm import keccak256
from dpgnode.errors import UnavailableError

TRANSFER_TOPIC = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()
_GROW_AFTER = 10


@dataclass(frozen=True, slots=True)
class TokenLog:
    """One ERC-20 ``Transfer`` log, reduced to what matching a payment needs."""

    block_number: int
    block_hash: str
    txid: str
    log_index: int
    """Index in the block (as the node numbers logs)."""
    contract: str
    """Lower-case hex with ``0x``."""
    recipient: bytes
    units: int


def bloom_bits(item: bytes) -> tuple[int, int, int]:
    """The three bits of a 2048-bit ``logsBloom`` that ``item`` sets (yellow paper, 4.4.1)."""
    digest = keccak256(item)
    bit0, bit1, bit2 = (((digest[i] << 8) | digest[i + 1]) & 2047 for i in (0, 2, 4))
    return bit0, bit1, bit2


def in_bloom(bloom: int, bits: tuple[int, int, int]) -> bool:
    """Whether the item of ``bits`` may be in ``bloom`` (no: certainly not)."""
    return all((bloom >> bit) & 1 for bit in bits)


def parse_logs(result: Any, *, lowest: int, highest: int) -> list[TokenLog]:
    """The ERC-20 transfers among an ``eth_getLogs`` answer for blocks lowest..highest.

    Raises:
        Untrusted: not a list of logs, or a log outside the blocks asked for.
    """
    if not isinstance(result, list):
        raise Untrusted("eth_getLogs answered something other than a list")
    logs: list[TokenLog] = []
    for raw in result:
        parsed = _parse_log(raw)
        if parsed is None:
            continue
        if not lowest <= parsed.block_number <= highest:
            raise Untrusted(f"eth_getLogs for blocks {lowest}-{highest} returned a log of "
                            f"block {parsed.block_number}")
        logs.append(parsed)
    return logs


def _parse_log(raw: Any) -> TokenLog | None:
    try:
        if raw.get("removed"):
            return None
        topics = raw["topics"]
        data = raw["data"]
        if len(topics) != 3 or topics[0].lower() != TRANSFER_TOPIC or len(data) != 66:
            return None
        return TokenLog(
            block_number=int(raw["blockNumber"], 16), block_hash=_hash(raw["blockHash"]),
            txid=_hash(raw["transactionHash"]), log_index=int(raw["logIndex"], 16),
            contract=str(raw["address"]).lower(), recipient=bytes.fromhex(topics[2][-40:]),
            units=int(data, 16),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise Untrusted(f"eth_getLogs returned a malformed log ({type(exc).__name__})") from None


def _hash(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        raise ValueError("not a 32-byte hash")
    int(value, 16)
    return value.lower()


RangeFetch = Callable[[int, int], list[TokenLog]]
"""Logs of blocks ``lowest..highest`` (inclusive)."""
HashFetch = Callable[[str], list[TokenLog]]
"""Logs of the block with this hash."""


class LogWindow:
    """Token transfer logs served from ranges fetched ahead (see the module docstring)."""

    def __init__(
        self, *, contracts: Sequence[str], log_range: int, fetch_range: RangeFetch,
        fetch_block: HashFetch,
    ) -> None:
        self._contracts = tuple(c.lower() for c in contracts)
        self._contract_bits = [bloom_bits(bytes.fromhex(c[2:])) for c in self._contracts]
        self._topic_bits = bloom_bits(bytes.fromhex(TRANSFER_TOPIC[2:]))
        self._max_span = log_range
        self.span = log_range
        self._fetch_range = fetch_range
        self._fetch_block = fetch_block
        self._lowest = 0
        self._highest = -1
        self._blocks: dict[int, list[TokenLog]] = {}
        self._streak = 0
        self.requests = 0
        """``eth_getLogs`` requests made (for the benchmark)."""

    def logs(self, height: int, block_hash: str, bloom: int, upper: int) -> list[TokenLog]:
        """Transfer logs of the block ``height`` whose hash is ``block_hash``.

        ``bloom`` is the block's ``logsBloom``; ``upper`` the highest block worth fetching
        ahead (the endpoint's head).
        """
        if not self._contracts:
            return []
        if not self._lowest <= height <= self._highest:
            self._fill(height, max(height, upper))
        found = self._blocks.get(height, [])
        stale = any(log.block_hash != block_hash for log in found)
        if stale or (not found and self._may_hold(bloom)):
            found = self._by_hash(height, block_hash)
        return found

    def forget(self) -> None:
        """Drop the cached range (after the chain was reorganised under it)."""
        self._blocks.clear()
        self._lowest, self._highest = 0, -1

    def _may_hold(self, bloom: int) -> bool:
        return in_bloom(bloom, self._topic_bits) and any(
            in_bloom(bloom, bits) for bits in self._contract_bits)

    def _fill(self, lowest: int, upper: int) -> None:
        while True:
            highest = min(lowest + self.span - 1, upper)
            try:
                self.requests += 1
                fetched = self._fetch_range(lowest, highest)
            except RpcError:
                if self.span == 1:
                    raise
                self.span = max(1, self.span // 2)  # the provider refused the size
                self._streak = 0
                continue
            break
        self._streak += 1
        if self._streak >= _GROW_AFTER and self.span < self._max_span:
            self.span = min(self._max_span, self.span * 2)
            self._streak = 0
        self._blocks = {}
        for log in fetched:
            self._blocks.setdefault(log.block_number, []).append(log)
        self._lowest, self._highest = lowest, highest

    def _by_hash(self, height: int, block_hash: str) -> list[TokenLog]:
        self.requests += 1
        found = self._fetch_block(block_hash)
        for log in found:
            if log.block_hash != block_hash or log.block_number != height:
                raise UnavailableError(
                    f"the logs of block {height} ({block_hash[:18]}) came from another block "
                    "(the chain was reorganised between two requests)", retry_after=1)
        self._blocks[height] = found
        return found
