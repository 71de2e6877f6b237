"""Local development chains: a Bitcoin Knots regtest node and anvil, run from the data directory.

``scripts/components`` installs both under the checkout's ``.cache/components`` (shared/STACK.md
explains the private root Knots runs from). ``dpg dev chains up`` starts them as background
processes whose data lives in ``DATA_DIR/dev``, so a restarted node finds its chain history
again: Knots keeps its regtest datadir, anvil dumps its state to ``anvil/state.json`` on exit and
loads it on start. Both listen on 127.0.0.1 only. Knots authenticates with its cookie file
(no password is written anywhere); anvil has no authentication and holds only dev money.

Processes are stopped by the PIDs recorded at start, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dpgnode.errors import ConfigError, UnavailableError

BITCOIN_RPC_PORT = 18443
ANVIL_PORT = 8545
ANVIL_CHAIN_ID = 31337
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 15.0


def components_dir() -> Path:
    """Where ``scripts/components`` installs the dev chains (``DPG_COMPONENTS_DIR`` overrides)."""
    override = os.environ.get("DPG_COMPONENTS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / ".cache" / "components"


@dataclass(frozen=True, slots=True)
class DevBinaries:
    """The installed dev-chain programs (``None`` where a component is missing)."""

    knots_root: Path | None
    anvil: Path | None

    @classmethod
    def find(cls, root: Path | None = None) -> DevBinaries:
        """Look for the components under ``root`` (default: :func:`components_dir`)."""
        base = root or components_dir()
        knots = base / "bitcoin-knots" / "root"
        anvil = base / "npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
        has_knots = (knots / "usr/bin/bitcoind").exists()
        return cls(knots if has_knots else None, anvil if anvil.exists() else None)


@dataclass(frozen=True, slots=True)
class DevChainStatus:
    """One dev chain: whether it runs, where, and how to reach it."""

    name: str
    running: bool
    pid: int | None
    url: str
    data_dir: Path
    cookie_file: Path | None = None


class DevChains:
    """Starts, stops and reports the dev chains of one data directory."""

    def __init__(self, data_dir: Path, binaries: DevBinaries | None = None, *,
                 bitcoin_port: int = BITCOIN_RPC_PORT, anvil_port: int = ANVIL_PORT) -> None:
        self.root = data_dir / "dev"
        self.binaries = binaries or DevBinaries.find()
        self.bitcoin_port = bitcoin_port
        self.anvil_port = anvil_port

    # -- where things are ---------------------------------------------------------------------

    @property
    def bitcoin_dir(self) -> Path:
        """Knots' datadir (its regtest chain is in ``regtest/`` below it)."""
        return self.root / "bitcoin"

    @property
    def cookie_file(self) -> Path:
        """Knots' RPC cookie: ``user:password`` it rewrites at every start."""
        return self.bitcoin_dir / "regtest" / ".cookie"

    @property
    def bitcoin_url(self) -> str:
        """Knots' JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.bitcoin_port}"

    @property
    def anvil_dir(self) -> Path:
        """Where anvil's state and PID file live."""
        return self.root / "anvil"

    @property
    def anvil_url(self) -> str:
        """Anvil's JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.anvil_port}"

    def settings(self) -> dict[str, dict[str, Any]]:
        """The ``dpg.toml`` sections that point a node at these chains (``dpg init --dev``).

        Custody on regtest, Knots for Bitcoin, anvil serving the ``ethereum`` assets.
        """
        return {
            "custody": {"network": "regtest"},
            "chains": {
                "bitcoin": {"rpc_url": self.bitcoin_url, "cookie_file": str(self.cookie_file),
                            "network": "regtest"},
                "evm": {"ethereum": {"rpc_url": self.anvil_url, "chain_id": ANVIL_CHAIN_ID}},
            },
        }

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> list[DevChainStatus]:
        """Both dev chains, running or not."""
        btc_pid = _live_pid(self.bitcoin_dir / "regtest" / "bitcoind.pid")
        anvil_pid = _live_pid(self.anvil_dir / "anvil.pid")
        return [
            DevChainStatus("bitcoin", btc_pid is not None, btc_pid, self.bitcoin_url,
                           self.bitcoin_dir, self.cookie_file),
            DevChainStatus("anvil", anvil_pid is not None, anvil_pid, self.anvil_url,
                           self.anvil_dir),
        ]

    # -- start and stop ---------------------------------------------------------------------------

    def start_bitcoin(self) -> DevChainStatus:
        """Start Knots in regtest unless it runs already (idempotent).

        Raises:
            ConfigError: Knots is not installed, or the port is taken by something else.
            UnavailableError: it started but did not answer in time.
        """
        if self.binaries.knots_root is None:
            raise ConfigError("Bitcoin Knots is not installed: run scripts/components")
        running = self.status()[0]
        if running.running:
            return running
        _require_free_port(self.bitcoin_port, "chains.bitcoin (dev)")
        self.bitcoin_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lib = self.binaries.knots_root / "usr" / "lib" / "x86_64-linux-gnu"
        argv = [
            str(lib / "ld-linux-x86-64.so.2"), "--library-path", str(lib),
            str(self.binaries.knots_root / "usr" / "bin" / "bitcoind"),
            "-regtest", f"-datadir={self.bitcoin_dir}", "-server=1", "-daemon=1",
            "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", f"-rpcport={self.bitcoin_port}",
            "-listen=0", "-dnsseed=0", "-fixedseeds=0", "-txindex=1", "-fallbackfee=0.0002",
            "-printtoconsole=0", "-mempoolfullrbf=1",
        ]
        with (self.bitcoin_dir / "bitcoind.stderr").open("ab") as stderr:
            result = subprocess.run(  # noqa: S603 (fixed argv, no shell; -daemon forks)
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                timeout=_START_TIMEOUT_S, check=False,
            )
        if result.returncode != 0:
            raise UnavailableError(
                f"bitcoind exited with status {result.returncode}: see "
                f"{self.bitcoin_dir / 'bitcoind.stderr'}")
        _wait_for(lambda: self.cookie_file.exists() and _answers(
            self.bitcoin_url, "getblockcount", self._cookie_auth()), "bitcoind")
        return self.status()[0]

    def start_anvil(self) -> DevChainStatus:
        """Start anvil (a block every 2 s, state kept across restarts) unless it runs already.

        Raises:
            ConfigError: anvil is not installed, or the port is taken by something else.
            UnavailableError: it started but did not answer in time.
        """
        if self.binaries.anvil is None:
            raise ConfigError("anvil is not installed: run scripts/components")
        running = self.status()[1]
        if running.running:
            return running
        _require_free_port(self.anvil_port, "chains.evm (dev)")
        self.anvil_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = self.anvil_dir / "state.json"
        argv = [str(self.binaries.anvil), "--host", "127.0.0.1", "--port", str(self.anvil_port),
                "--chain-id", str(ANVIL_CHAIN_ID), "--block-time", "2", "--silent",
                "--state", str(state), "--state-interval", "10"]
        # posix_spawn, not Popen: anvil outlives this command (its own session, no parent
        # handle to leak); ``stop`` reaps it if the same process stops it.
        pid = os.posix_spawn(
            argv[0], argv, dict(os.environ), setsid=True,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, str(self.anvil_dir / "anvil.stderr"),
                 os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
            ],
        )
        (self.anvil_dir / "anvil.pid").write_text(f"{pid}\n")
        _wait_for(lambda: _answers(self.anvil_url, "eth_chainId", None), "anvil")
        return self.status()[1]

    def stop(self) -> list[str]:
        """Stop whichever dev chains run; the names of those stopped."""
        stopped = []
        for chain, pid_file in (("bitcoin", self.bitcoin_dir / "regtest" / "bitcoind.pid"),
                                ("anvil", self.anvil_dir / "anvil.pid")):
            pid = _live_pid(pid_file)
            if pid is not None:
                _terminate(pid)
                stopped.append(chain)
            with contextlib.suppress(FileNotFoundError):
                if chain == "anvil":
                    pid_file.unlink()
        return stopped

    def _cookie_auth(self) -> tuple[str, str]:
        user, _, password = self.cookie_file.read_text().strip().partition(":")
        return user, password


def _live_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _require_free_port(port: int, setting: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigError(
                f"port {port} on 127.0.0.1 is taken by another program; stop it or point "
                f"{setting} at a node of your own") from None


def _answers(url: str, method: str, auth: tuple[str, str] | None) -> bool:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": []}
    try:
        response = httpx.post(url, json=body, auth=auth, timeout=2)
        return response.status_code == 200 and response.json().get("error") is None
    except (httpx.HTTPError, ValueError):
        return False


def _wait_for(ready: Callable[[], bool], name: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise UnavailableError(f"{name} did not answer within {_START_TIMEOUT_S:.0f} s")
