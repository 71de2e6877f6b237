"""A small JSON-RPC client of an EVM node (geth, Erigon, anvil, hosted providers).

Plain JSON-RPC 2.0 over httpx (:mod:`~dpgnode.adapters.chains.jsonrpc`) rather than web3's
provider stack: payouts need six calls, every quantity is a hex string parsed exactly into an
``int``, and all failures go through one translator.

Rules kept here:

- the node's ``eth_chainId`` must equal the configured chain id, checked once per client
  before anything else (``ConfigError`` otherwise): a transaction signed for the wrong chain
  id would be refused at best, replayed elsewhere at worst;
- the nonce is the sender's ``pending`` transaction count, so transactions already in the
  node's mempool are counted;
- fees are EIP-1559: the next block's base fee (last entry of ``eth_feeHistory``) and a
  priority fee from ``eth_maxPriorityFeePerGas`` (the median reward of recent blocks when
  the node lacks that method); ``max_fee = 2 * base + tip``, which stays includable through
  six full blocks of base-fee rises. A configured ceiling caps it, as long as the cap still
  covers ``base + tip``; otherwise signing waits (``UnavailableError``) rather than overpay;
- :meth:`EvmRpc.fee_levels` reads the same history with three reward percentiles (10, 50, 90)
  for a slow / normal / fast estimate (``GET gas/estimate``);
- balances and contract calls read ``latest`` unless a block is given; ``balanceOf`` answers
  must be one 32-byte word (a contract that is not a token answers otherwise: an error).

The transport is one endpoint (:class:`JsonRpcEndpoint`) or several with failover
(:class:`~dpgnode.adapters.chains.evm_endpoints.EvmEndpoints`): both are an :class:`RpcCaller`.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from dpgnode.adapters.chains.jsonrpc import JsonRpcEndpoint, RpcError
from dpgnode.domain.custody.evm import parse_evm_address
from dpgnode.errors import ConfigError, UnavailableError

_RPC_METHOD_NOT_FOUND = -32601
_FEE_HISTORY_BLOCKS = 5
_LEVEL_HISTORY_BLOCKS = 20
_LEVEL_PERCENTILES = (10, 50, 90)
_BALANCE_OF = bytes.fromhex("70a08231")
"""Selector of ``balanceOf(address)``."""


class RpcCaller(Protocol):
    """Something that makes JSON-RPC calls to a chain's node(s)."""

    @property
    def name(self) -> str:
        """For messages (scheme, host and port only)."""
        ...

    def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """The call's ``result`` (errors as :mod:`~dpgnode.adapters.chains.jsonrpc` maps them)."""
        ...

    def close(self) -> None:
        """Close connections."""
        ...


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fee parameters in wei per gas."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True, slots=True)
class FeeLevels:
    """A fee estimate at three speeds, in wei per gas, with the next block's base fee."""

    base_fee_per_gas: int
    slow: Fees
    normal: Fees
    fast: Fees
    oldest_block: int
    """First block of the history the estimate reads."""


def quantity(value: object, what: str) -> int:
    """An ``0x``-hex quantity as an int (``UnavailableError`` when the node sent junk)."""
    if isinstance(value, str) and value.startswith(("0x", "0X")) and 2 < len(value) <= 66:
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise UnavailableError(f"the EVM node sent a malformed {what}: {str(value)[:70]!r}")


class EvmRpc:
    """The calls of one EVM chain's node that payouts need (see the module docstring)."""

    def __init__(self, endpoint: RpcCaller, *, chain: str, chain_id: int) -> None:
        self._rpc = endpoint
        self.chain = chain
        self.chain_id = chain_id
        self._checked = False
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls, url: str, *, chain: str, chain_id: int, timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> EvmRpc:
        """A client of ``chain``'s node at ``url`` (which may carry a provider's API key)."""
        endpoint = JsonRpcEndpoint(url, label=f"EVM node ({chain})", timeout=timeout,
                                   transport=transport)
        return cls(endpoint, chain=chain, chain_id=chain_id)

    @property
    def name(self) -> str:
        """``EVM node (ethereum) at https://host``, for messages."""
        return self._rpc.name

    def close(self) -> None:
        """Close the connection pool."""
        self._rpc.close()

    def check_chain(self) -> int:
        """The latest block number, after checking that the node serves ``chain_id``."""
        served = quantity(self._rpc.call("eth_chainId"), "chain id")
        if served != self.chain_id:
            raise ConfigError(
                f"{self.name} serves chain id {served}, not {self.chain_id} "
                f"(chains.evm.{self.chain}.chain_id)"
            )
        with self._lock:
            self._checked = True
        return quantity(self._rpc.call("eth_blockNumber"), "block number")

    def _call(self, method: str, *params: Any) -> Any:
        with self._lock:
            checked = self._checked
        if not checked:
            self.check_chain()
        return self._rpc.call(method, *params)

    def nonce(self, address: str) -> int:
        """The sender's next nonce, counting its transactions in the node's mempool."""
        return quantity(self._call("eth_getTransactionCount", address, "pending"), "nonce")

    def fees(self, *, ceiling: int | None = None) -> Fees:
        """Current EIP-1559 fees (see the module docstring for the rule and the ceiling)."""
        history = self._call("eth_feeHistory", hex(_FEE_HISTORY_BLOCKS), "latest", [50])
        if not isinstance(history, dict) or not history.get("baseFeePerGas"):
            raise ConfigError(f"{self.name} reports no base fee: EIP-1559 chains only")
        base = quantity(history["baseFeePerGas"][-1], "base fee")
        tip = self._tip(history)
        max_fee = 2 * base + tip
        if ceiling is not None and max_fee > ceiling:
            if ceiling < base + tip:
                raise UnavailableError(
                    f"{self.chain}: the base fee is {base} wei/gas; with the priority fee it "
                    f"exceeds the ceiling of {ceiling} wei/gas "
                    f"(chains.evm.{self.chain}.max_fee_per_gas_gwei)",
                    retry_after=120,
                )
            max_fee = ceiling
        return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)

    def _tip(self, history: dict[str, Any]) -> int:
        try:
            return quantity(self._call("eth_maxPriorityFeePerGas"), "priority fee")
        except RpcError as exc:
            if exc.rpc_code != _RPC_METHOD_NOT_FOUND:
                raise
        rewards = [quantity(r[0], "reward") for r in history.get("reward") or [] if r]
        return int(statistics.median(rewards)) if rewards else 0

    def estimate_gas(self, *, sender: str, to: str, value: int = 0, data: bytes = b"") -> int:
        """Gas the call would use now (``RpcError`` when it would revert, with the reason)."""
        call = {"from": sender, "to": to, "value": hex(value), "data": "0x" + data.hex()}
        return quantity(self._call("eth_estimateGas", call), "gas estimate")

    def transaction(self, txid: str) -> dict[str, Any] | None:
        """The transaction the node knows by hash (in its mempool or a block), else None."""
        found = self._call("eth_getTransactionByHash", txid)
        return found if isinstance(found, dict) else None

    def send_raw(self, raw_hex: str) -> str:
        """Hand a signed transaction to the node; its hash as the node computed it."""
        return str(self._call("eth_sendRawTransaction", raw_hex))

    def receipt(self, txid: str) -> dict[str, Any] | None:
        """The transaction's receipt once it is in a block; ``None`` before.

        Own payouts' and sweeps' fees come from it (``gasUsed * effectiveGasPrice``).
        """
        found = self._call("eth_getTransactionReceipt", txid)
        return found if isinstance(found, dict) else None

    def fee_levels(self) -> FeeLevels:
        """Slow, normal and fast fees (``max_fee = 2 * base + tip`` each).

        The tips are the medians, over recent blocks, of each block's 10th, 50th and 90th
        reward percentile.
        """
        history = self._call("eth_feeHistory", hex(_LEVEL_HISTORY_BLOCKS), "latest",
                             list(_LEVEL_PERCENTILES))
        if not isinstance(history, dict) or not history.get("baseFeePerGas"):
            raise ConfigError(f"{self.name} reports no base fee: EIP-1559 chains only")
        base = quantity(history["baseFeePerGas"][-1], "base fee")
        rewards = [row for row in history.get("reward") or []
                   if isinstance(row, list) and len(row) == len(_LEVEL_PERCENTILES)]
        levels: list[Fees] = []
        for column in range(len(_LEVEL_PERCENTILES)):
            paid = [quantity(row[column], "reward") for row in rewards]
            tip = int(statistics.median(paid)) if paid else 0
            levels.append(Fees(max_fee_per_gas=2 * base + tip, max_priority_fee_per_gas=tip))
        oldest = quantity(history.get("oldestBlock"), "oldest block")
        return FeeLevels(base, levels[0], levels[1], levels[2], oldest)

    def balance(self, address: str, block: str = "latest") -> int:
        """Native balance of ``address`` in wei."""
        return quantity(self._call("eth_getBalance", address, block), "balance")

    def call_contract(self, to: str, data: bytes, block: str = "latest") -> bytes:
        """What ``eth_call`` of ``data`` on contract ``to`` returns (``RpcError`` on revert)."""
        result = self._call("eth_call", {"to": to, "data": "0x" + data.hex()}, block)
        if not isinstance(result, str) or not result.startswith("0x"):
            raise UnavailableError(f"{self.name} sent a malformed eth_call result")
        try:
            return bytes.fromhex(result[2:])
        except ValueError:
            raise UnavailableError(f"{self.name} sent a malformed eth_call result") from None

    def token_balance(self, contract: str, address: str, block: str = "latest") -> int:
        """ERC-20 ``balanceOf(address)`` in the token's base units."""
        owner = parse_evm_address(address, field="address").raw.rjust(32, b"\0")
        answer = self.call_contract(contract, _BALANCE_OF + owner, block)
        if len(answer) != 32:
            raise UnavailableError(
                f"{contract} answered balanceOf with {len(answer)} bytes, not one word: "
                "is it an ERC-20 contract on this chain?")
        return int.from_bytes(answer, "big")
