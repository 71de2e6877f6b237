"""A real Bitcoin Knots node in regtest for integration tests.

``scripts/components`` unpacks Bitcoin Knots with its own C runtime into
``.cache/components/bitcoin-knots/root`` (shared/STACK.md explains why). This module starts
``bitcoind`` from there through that root's dynamic loader, which runs the program in its own
process, so the PID recorded is bitcoind's own. The node listens for RPC on 127.0.0.1 only, on a
free port, with no P2P listening; it is stopped by that PID (SIGTERM, then SIGKILL after a
grace period) when the fixture ends.

Use :func:`start_bitcoind` (a context manager) or the ``bitcoind`` fixture that
``tests/integration/chains/conftest.py`` builds on it. A missing node skips the test with the
command that installs it; under ``CI`` it fails instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

__all__ = ["BitcoindNode", "RpcError", "btc_to_sats", "require_bitcoind", "start_bitcoind"]

REPO = Path(__file__).resolve().parents[2]
KNOTS_ROOT = REPO / ".cache" / "components" / "bitcoin-knots" / "root"
_LIB = KNOTS_ROOT / "usr" / "lib" / "x86_64-linux-gnu"
_LOADER = _LIB / "ld-linux-x86-64.so.2"
_BITCOIND = KNOTS_ROOT / "usr" / "bin" / "bitcoind"
_SKIP_REASON = "Bitcoin Knots (regtest) not installed: run scripts/components"
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 15.0
_STDERR = "bitcoind.stderr"


class RpcError(Exception):
    """A JSON-RPC error returned by bitcoind (``code`` as bitcoind numbers them)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def btc_to_sats(value: Decimal | str | int) -> int:
    """Exact satoshis of an RPC amount (bitcoind sends 8-decimal numbers; parsed as Decimal)."""
    sats = Decimal(value) * 100_000_000
    if sats != sats.to_integral_value():
        raise ValueError(f"{value} is not a whole number of satoshis")
    return int(sats)


def require_bitcoind() -> Path:
    """The bitcoind binary, or skip (outside CI) / fail (CI) naming the install command."""
    if _LOADER.exists() and _BITCOIND.exists():
        return _BITCOIND
    if os.environ.get("CI"):
        pytest.fail(f"{_SKIP_REASON} (CI is set, so this test may not skip)")
    pytest.skip(_SKIP_REASON)


@dataclass
class BitcoindNode:
    """A running regtest node: its PID, RPC port and credentials, and an RPC client."""

    process: subprocess.Popen[bytes]
    datadir: Path
    port: int
    user: str
    password: str
    client: httpx.Client

    @property
    def pid(self) -> int:
        """bitcoind's own PID (the loader runs it in-process)."""
        return self.process.pid

    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        """Call ``method``; amounts come back as ``Decimal`` (never float)."""
        path = f"/wallet/{wallet}" if wallet is not None else "/"
        body = {"jsonrpc": "1.0", "id": method, "method": method, "params": list(params)}
        response = self.client.post(
            f"http://127.0.0.1:{self.port}{path}",
            content=_dumps(body),
            auth=(self.user, self.password),
        )
        reply = response.json(parse_float=Decimal)
        if reply.get("error"):
            raise RpcError(reply["error"]["code"], reply["error"]["message"])
        response.raise_for_status()
        return reply["result"]

    def mine(self, blocks: int, address: str) -> list[str]:
        """Mine ``blocks`` blocks paying ``address``; returns their hashes."""
        hashes: list[str] = self.rpc("generatetoaddress", blocks, address)
        return hashes

    def stop(self) -> None:
        """Stop by PID: SIGTERM (bitcoind shuts down cleanly), SIGKILL if it hangs."""
        self.client.close()
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


def _dumps(body: dict[str, Any]) -> str:
    """JSON with ``Decimal`` amounts as exact strings (bitcoind accepts amounts as strings)."""

    def exact(value: object) -> str:
        if isinstance(value, Decimal):
            return format(value, "f")
        raise TypeError(type(value).__name__)

    return json.dumps(body, default=exact)


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (callers retry if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _launch(
    datadir: Path, port: int, user: str, password: str, extra_args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    argv = [
        str(_LOADER),
        "--library-path",
        str(_LIB),
        str(_BITCOIND),
        "-regtest",
        f"-datadir={datadir}",
        "-server=1",
        "-rpcbind=127.0.0.1",
        "-rpcallowip=127.0.0.1",
        f"-rpcport={port}",
        f"-rpcuser={user}",
        f"-rpcpassword={password}",
        "-listen=0",
        "-dnsseed=0",
        "-fixedseeds=0",
        "-txindex=1",
        "-fallbackfee=0.0002",
        "-printtoconsole=0",
        # The wallet's SQLite without fsync: the data is thrown away, and with fsync every
        # block that pays the funding wallet costs ~0.1 s on a busy disk (101 blocks: 11 s).
        "-unsafesqlitesync=1",
        *extra_args,
    ]
    # stderr goes to a file, not a pipe: a pipe nobody drains while the node runs would block
    # bitcoind once it filled up.
    with (datadir / _STDERR).open("ab") as stderr:
        return subprocess.Popen(  # fixed argv, no shell
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )


def _wait_ready(node: BitcoindNode) -> bool:
    """Poll RPC until the node answers; False if the process died first (e.g. port taken)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            return False
        try:
            node.rpc("getblockchaininfo")
            return True
        except (httpx.TransportError, RpcError):  # not listening yet / -28 warming up
            time.sleep(0.05)
    node.stop()
    raise RuntimeError(f"bitcoind did not answer RPC within {_START_TIMEOUT_S}s")


@contextlib.contextmanager
def start_bitcoind(datadir: Path, extra_args: Sequence[str] = ()) -> Iterator[BitcoindNode]:
    """Run a regtest node with its data in ``datadir``; stopped by PID on exit.

    ``extra_args`` are added to bitcoind's command line (e.g. ``-zmqpubhashblock=...``).
    """
    require_bitcoind()
    datadir.mkdir(parents=True, exist_ok=True)
    user, password = "dpg", secrets.token_hex(16)
    errors = b""
    for _attempt in range(3):  # another process may take the free port before bitcoind does
        port = free_port()
        process = _launch(datadir, port, user, password, extra_args)
        node = BitcoindNode(process, datadir, port, user, password, httpx.Client(timeout=30))
        if _wait_ready(node):
            break
        node.stop()
        errors = (datadir / _STDERR).read_bytes()
    else:
        raise RuntimeError(f"bitcoind failed to start: {errors.decode(errors='replace')}")
    try:
        yield node
    finally:
        node.stop()
