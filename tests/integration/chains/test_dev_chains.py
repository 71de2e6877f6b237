"""``dpg dev chains``: the development chains start from the data directory, keep their
history across restarts, and stop by their recorded PIDs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dpgnode.adapters.chains.devnodes import DevChains
from dpgnode.errors import ConfigError
from tests.support.anvil import require_anvil
from tests.support.bitcoind import free_port, require_bitcoind


def _rpc(url: str, method: str, *params: object, auth: tuple[str, str] | None = None) -> object:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    reply = httpx.post(url, json=body, auth=auth, timeout=10).json()
    assert reply.get("error") is None, reply
    return reply["result"]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevChains]:
    require_bitcoind()
    require_anvil()
    chains = DevChains(tmp_path, bitcoin_port=free_port(), anvil_port=free_port())
    yield chains
    chains.stop()


def test_chains_start_answer_and_keep_their_history_across_restarts(dev: DevChains) -> None:
    bitcoin = dev.start_bitcoin()
    anvil = dev.start_anvil()
    assert bitcoin.running
    assert anvil.running
    assert dev.start_bitcoin().pid == bitcoin.pid  # idempotent: the running node is kept
    user, _, password = dev.cookie_file.read_text().partition(":")
    auth = (user, password.strip())
    address = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    _rpc(dev.bitcoin_url, "generatetoaddress", 3, address, auth=auth)
    assert _rpc(dev.anvil_url, "eth_chainId") == hex(31337)
    assert sorted(dev.stop()) == ["anvil", "bitcoin"]
    assert not any(chain.running for chain in dev.status())
    dev.start_bitcoin()
    user, _, password = dev.cookie_file.read_text().partition(":")
    assert _rpc(dev.bitcoin_url, "getblockcount", auth=(user, password.strip())) == 3


def test_settings_point_a_node_at_the_chains(dev: DevChains) -> None:
    settings = dev.settings()
    assert settings["custody"] == {"network": "regtest"}
    assert settings["chains"]["bitcoin"]["cookie_file"] == str(dev.cookie_file)
    assert settings["chains"]["evm"]["ethereum"]["chain_id"] == 31337


def test_a_taken_port_is_refused_with_the_setting_to_change(tmp_path: Path) -> None:
    require_anvil()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        dev = DevChains(tmp_path, anvil_port=sock.getsockname()[1])
        with pytest.raises(ConfigError, match="taken by another program"):
            dev.start_anvil()
