"""A :class:`~tests.support.chain_driver.ChainDriver` over a real anvil, for ETH or a test ERC-20.

The client under test is the node's own :class:`~dpgnode.adapters.chains.evm_client.EvmChainClient`,
built through the same registry merge as production (``[chains.evm.ethereum]`` with anvil's
chain id 31337, so the registry's mainnet endpoints and contracts are not inherited; the
test token is configured as ``USDT-ETH``, 6 decimals like the real one).

Payments come from anvil's first dev account (unlocked: ``eth_sendTransaction``); anvil mines
each at once, so there is no mempool (``has_mempool`` is False and ``replace`` is not
offered). Reorganisations use ``evm_snapshot``/``evm_revert``: the driver snapshots after
every block it makes, reverts to the snapshot ``depth`` blocks down, and mines ``depth + 1``
new blocks whose first one has another timestamp than the block it replaces (so its hash
differs even when both are empty). Reverting drops the transactions of the replaced blocks.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from dpgnode.adapters.assets import load_registry as load_assets
from dpgnode.adapters.chains.evm_client import EvmChainClient
from dpgnode.adapters.chains.evm_registry import EvmChainSpec, evm_chain_specs
from dpgnode.domain.custody.evm import checksum_encode
from dpgnode.domain.custody.evm_tx import erc20_transfer_data
from dpgnode.settings import ChainsSettings
from tests.contracts.compile import load_artifact
from tests.support.anvil import CHAIN_ID, AnvilNode, require_anvil, start_anvil

__all__ = ["TOKEN_ASSET", "AnvilDriver", "anvil_spec", "deploy_token", "open_driver",
           "open_token_driver"]

TOKEN_ASSET = "USDT-ETH"
TOKEN_DECIMALS = 6
_MINTED = 10**30
_MINE_TIMEOUT_S = 30.0


def anvil_spec(url: str | Sequence[str], *, token: str | None = None,
               **chain: Any) -> EvmChainSpec:
    """The spec of anvil as chain ``ethereum`` (extra ``[chains.evm.ethereum]`` fields)."""
    urls = [url] if isinstance(url, str) else list(url)
    settings: dict[str, Any] = {"rpc_url": urls[0], "rpc_urls": urls[1:], "chain_id": CHAIN_ID,
                                "confirmations": 1, **chain}
    if token is not None:
        settings["tokens"] = {TOKEN_ASSET: token}
    parsed = ChainsSettings.model_validate({"evm": {"ethereum": settings}})
    return evm_chain_specs(parsed, load_assets())["ethereum"]


class _Rpc:
    def __init__(self, url: str) -> None:
        self._client = httpx.Client(timeout=30)
        self._url = url

    def __call__(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        answer = self._client.post(self._url, json=body).json()
        if "error" in answer:
            raise RuntimeError(f"anvil refused {method}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        self._client.close()


def deploy_token(node: AnvilNode) -> str:
    """Deploy the test ERC-20 (6 decimals) from dev account 0, minting it plenty; its address."""
    artifact = load_artifact()
    w3 = node.w3
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    sent = factory.constructor("Test Tether", "TUSDT", TOKEN_DECIMALS).transact(
        {"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(sent, timeout=30)
    address = str(receipt["contractAddress"])
    token = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    minted = token.functions.mint(w3.eth.accounts[0], _MINTED).transact(
        {"from": w3.eth.accounts[0]})
    assert w3.eth.wait_for_transaction_receipt(minted, timeout=30)["status"] == 1
    return address


class AnvilDriver:
    """Drives anvil for the chain-port contract tests (see the module docstring)."""

    def __init__(self, node: AnvilNode, *, token: str | None = None,
                 client: EvmChainClient | None = None) -> None:
        self.node = node
        self.token = token
        self.rpc = _Rpc(node.url)
        self.payer = self.rpc("eth_accounts")[0]
        self._client = client or EvmChainClient.connect(anvil_spec(node.url, token=token))
        self._snapshots: dict[int, str] = {}
        self._snapshot()

    @property
    def client(self) -> EvmChainClient:
        return self._client

    @property
    def asset(self) -> str:
        return TOKEN_ASSET if self.token is not None else "ETH"

    @property
    def has_mempool(self) -> bool:
        return False

    def close(self) -> None:
        self._client.close()
        self.rpc.close()

    def height(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def new_address(self) -> str:
        return checksum_encode(secrets.token_bytes(20))

    def pay(self, address: str, units: int) -> str:
        txid = self._send(address, units)
        self._wait(txid)
        self._snapshot()
        return txid

    def pay_many(self, payments: Sequence[tuple[str, int]]) -> list[str]:
        """Several payments mined together in one new block; their txids in block order."""
        self.rpc("evm_setAutomine", False)
        try:
            txids = [self._send(address, units) for address, units in payments]
            self.rpc("evm_mine")
        finally:
            self.rpc("evm_setAutomine", True)
        for txid in txids:
            self._wait(txid)
        self._snapshot()
        return txids

    def mine(self, blocks: int = 1) -> list[str]:
        hashes = []
        for _ in range(blocks):
            self.rpc("evm_mine")
            hashes.append(self.rpc("eth_getBlockByNumber", "latest", False)["hash"])
            self._snapshot()
        return hashes

    def rewind(self, depth: int) -> None:
        """Drop the last ``depth`` blocks (the chain is shorter until something is mined)."""
        base = self.height() - depth
        snapshot = self._snapshots.get(base)
        if snapshot is None:
            raise RuntimeError(f"no snapshot at height {base}: the driver did not make it")
        replaced = self.rpc("eth_getBlockByNumber", hex(base + 1), False)
        assert self.rpc("evm_revert", snapshot) is True
        self._snapshots = {h: s for h, s in self._snapshots.items() if h < base}
        self._snapshot()
        # Another timestamp than the block it replaces, so even an empty block differs.
        self.rpc("evm_setNextBlockTimestamp", int(replaced["timestamp"], 16) + 1)

    def reorg(self, depth: int, *, drop: Sequence[str] = ()) -> None:
        del drop  # anvil's revert drops every transaction of the replaced blocks
        self.rewind(depth)
        self.mine(depth + 1)

    def replace(self, txid: str, address: str) -> str:
        raise NotImplementedError("anvil mines at once: no transaction stays replaceable")

    def _send(self, address: str, units: int) -> str:
        if self.token is None:
            tx = {"from": self.payer, "to": address, "value": hex(units)}
        else:
            data = erc20_transfer_data(bytes.fromhex(address[2:]), units)
            tx = {"from": self.payer, "to": self.token, "data": "0x" + data.hex()}
        return str(self.rpc("eth_sendTransaction", tx))

    def _wait(self, txid: str) -> None:
        # anvil may answer eth_sendTransaction a moment before the block is in its chain.
        deadline = time.monotonic() + _MINE_TIMEOUT_S
        receipt = self.rpc("eth_getTransactionReceipt", txid)
        while receipt is None and time.monotonic() < deadline:
            time.sleep(0.01)
            receipt = self.rpc("eth_getTransactionReceipt", txid)
        if receipt is None or receipt["status"] != "0x1":
            raise RuntimeError(f"payment {txid} failed: {receipt}")

    def _snapshot(self) -> None:
        self._snapshots[self.height()] = self.rpc("evm_snapshot")


@contextmanager
def open_driver(workdir: Path) -> Iterator[AnvilDriver]:
    """The chain-port contract's anvil driver paying ETH (``tests/contracts/chain_port``)."""
    del workdir  # anvil keeps its chain in memory
    require_anvil()
    with start_anvil() as node:
        driver = AnvilDriver(node)
        try:
            yield driver
        finally:
            driver.close()


@contextmanager
def open_token_driver(workdir: Path) -> Iterator[AnvilDriver]:
    """The same, paying the test ERC-20 as ``USDT-ETH``."""
    del workdir
    require_anvil()
    with start_anvil() as node:
        driver = AnvilDriver(node, token=deploy_token(node))
        try:
            yield driver
        finally:
            driver.close()
