"""Process hygiene of the chain-node fixtures: real PIDs, loopback only, stopped by PID."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.anvil import AnvilNode, start_anvil
from tests.support.bitcoind import BitcoindNode, start_bitcoind

pytestmark = pytest.mark.integration


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_bitcoind_pid_is_the_node_itself_when_started(bitcoind: BitcoindNode) -> None:
    args = cmdline(bitcoind.pid)
    assert any(arg.endswith("/usr/bin/bitcoind") for arg in args)
    assert "-rpcbind=127.0.0.1" in args
    assert "-listen=0" in args
    assert bitcoind.rpc("getnetworkinfo")["connections"] == 0


def test_anvil_pid_is_the_node_itself_when_started(anvil: AnvilNode) -> None:
    args = cmdline(anvil.pid)
    assert args[0].endswith("/bin/anvil")
    assert args[args.index("--host") + 1] == "127.0.0.1"


def test_nodes_are_gone_when_their_fixtures_end(tmp_path: Path) -> None:
    with start_anvil() as anvil, start_bitcoind(tmp_path / "btc") as bitcoind:
        pids = [anvil.pid, bitcoind.pid]
        assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
