"""A real anvil (Foundry's EVM dev node) for integration tests.

``scripts/components`` installs anvil from npm into ``.cache/components/npm``. The package ships
the real binary, so the PID recorded here is anvil's own. It listens on 127.0.0.1 only, on a free
port, and is stopped by that PID (SIGTERM, then SIGKILL after a grace period) when the fixture
ends. Chain id 31337; ten dev accounts funded with 10,000 ETH each, from the public mnemonic
"test test ... junk" (test chains only).

A missing anvil skips the test with the command that installs it; under ``CI`` it fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from web3 import Web3

from tests.support.bitcoind import free_port

__all__ = ["DEV_KEYS", "AnvilNode", "require_anvil", "start_anvil"]

REPO = Path(__file__).resolve().parents[2]
ANVIL = REPO / ".cache/components/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
CHAIN_ID = 31337
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
)
"""Private keys of anvil's first two dev accounts (published; worthless outside test chains)."""
_SKIP_REASON = "anvil not installed: run scripts/components"
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0


def require_anvil() -> Path:
    """The anvil binary, or skip (outside CI) / fail (CI) naming the install command."""
    if ANVIL.exists():
        return ANVIL
    if os.environ.get("CI"):
        pytest.fail(f"{_SKIP_REASON} (CI is set, so this test may not skip)")
    pytest.skip(_SKIP_REASON)


@dataclass
class AnvilNode:
    """A running anvil: its PID, URL and a web3 client."""

    process: subprocess.Popen[bytes]
    port: int
    w3: Web3

    @property
    def pid(self) -> int:
        """anvil's own PID."""
        return self.process.pid

    @property
    def url(self) -> str:
        """JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop by PID: SIGTERM, SIGKILL if it does not exit."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=_STOP_TIMEOUT_S)


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + _START_TIMEOUT_S
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if client.post(url, json=body).json().get("result") == hex(CHAIN_ID):
                    return True
            except (httpx.TransportError, ValueError):  # not listening / not answering JSON yet
                pass
            time.sleep(0.05)  # also after an unexpected answer: poll, never spin
    raise RuntimeError(f"anvil did not answer within {_START_TIMEOUT_S}s")


@contextlib.contextmanager
def start_anvil() -> Iterator[AnvilNode]:
    """Run anvil on a free 127.0.0.1 port; stopped by PID on exit."""
    binary = require_anvil()
    for _attempt in range(3):  # another process may take the free port before anvil does
        port = free_port()
        argv = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"]
        process = subprocess.Popen(  # fixed argv, no shell
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        node = AnvilNode(process, port, Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}")))
        try:
            if _wait_ready(process, node.url):
                break
        except RuntimeError:
            node.stop()
            raise
        node.stop()
    else:
        raise RuntimeError("anvil failed to start three times (ports taken?)")
    try:
        yield node
    finally:
        node.stop()
