"""A Bitcoin payment from outside reaches the ledger of a node run as an operator runs it.

The real ``dpg`` executable in a fresh data directory: ``dpg init --dev``, the development
chains (Bitcoin Knots regtest and anvil, started as ``dpg dev chains up`` starts them, on
free ports written into ``dpg.toml`` instead of the fixed 18443 / 8545), ``dpg wallet
add-xpub`` of a watch-only regtest account, ``dpg node start`` (granian) as a subprocess
whose chain watcher follows Knots. A shop issues an address through the API; Knots' own
wallet (the outside world) pays it and a block is mined; the payment shows pending, then
credited in ``dpg ledger balances``, and ``dpg chain status`` reports both chains at the
node's height. Every process is stopped by its PID.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from dpgnode.node import DevChains
from tests.e2e import test_cli_install as cli
from tests.support.anvil import require_anvil
from tests.support.bitcoind import free_port, require_bitcoind
from tests.support.regtest_keys import regtest_vpub

env = cli.env
_json, _run = cli._json, cli._run

WAIT = 90.0
"""Bounds every wait for the node to catch up; nothing asserts on time."""
BURN = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
"""Blocks are mined to this address outside every wallet."""
OUTSIDE = "outside"
PAID = Decimal("0.25")
DEFAULT_URLS = ("http://127.0.0.1:18443", "http://127.0.0.1:8545")


class Knots:
    """The dev chain's Bitcoin node over JSON-RPC, authenticated by its cookie file."""

    def __init__(self, dev: DevChains) -> None:
        user, _, password = dev.cookie_file.read_text().strip().partition(":")
        self._client = httpx.Client(base_url=dev.bitcoin_url, auth=(user, password), timeout=60)

    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        body = {"jsonrpc": "1.0", "id": method, "method": method, "params": list(params)}
        path = f"/wallet/{wallet}" if wallet else "/"
        reply = self._client.post(path, content=json.dumps(body, default=str)).json(
            parse_float=Decimal)
        assert reply.get("error") is None, (method, reply["error"])
        return reply["result"]

    def close(self) -> None:
        self._client.close()


def _ok(env: dict[str, str], *args: str) -> None:
    done = _run(env, *args)
    assert done.returncode == 0, done.stderr


def _until(what: str, found: Callable[[], Any]) -> Any:
    """Poll ``found`` until it returns something truthy (bounded by ``WAIT``)."""
    deadline = time.monotonic() + WAIT
    while True:
        value = found()
        if value:
            return value
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.5)


@pytest.fixture
def dev_chains(env: dict[str, str]) -> Iterator[DevChains]:
    """``dpg init --dev``, pointed at dev chains on free ports, and the chains running."""
    require_bitcoind()
    require_anvil()
    _ok(env, "init", "--dev")
    data_dir = Path(env["DPG_DATA_DIR"])
    dev = DevChains(data_dir, bitcoin_port=free_port(), anvil_port=free_port())
    config = data_dir / "dpg.toml"
    text = config.read_text()
    for default, url in zip(DEFAULT_URLS, (dev.bitcoin_url, dev.anvil_url), strict=True):
        assert text.count(f'"{default}"') == 1, f"dpg init --dev no longer writes {default}"
        text = text.replace(f'"{default}"', f'"{url}"')
    config.write_text(text)
    try:
        dev.start_bitcoin()
        dev.start_anvil()
        yield dev
    finally:
        dev.stop()  # by the PIDs their pid files recorded


@pytest.fixture
def node_url(env: dict[str, str], dev_chains: DevChains, tmp_path: Path) -> Iterator[str]:
    """``dpg node start`` on a free port, stopped by its PID."""
    port = free_port()
    log_path = tmp_path / "node.log"
    with log_path.open("w") as log:  # a file: a full pipe would stall the server
        server = subprocess.Popen(
            [cli.DPG, "node", "start", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            def answers() -> bool:
                assert server.poll() is None, log_path.read_text()
                try:
                    return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            _until("dpg node start answer", answers)
            yield base
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _store_btc(env: dict[str, str]) -> Decimal:
    rows = _json(env, "ledger", "balances", "--owner-type", "store", "--owner-id", "st_1",
                 "--asset", "BTC")
    return sum((Decimal(r["balance"]) for r in rows), Decimal(0))


def _payment(env: dict[str, str], address: str, status: str) -> dict[str, Any] | None:
    rows = _json(env, "chain", "payments", "bitcoin", "--address", address)
    return next((r for r in rows if r["status"] == status), None)


@pytest.mark.long_push  # about a minute: a dozen `dpg` processes, two chains, a server
def test_outside_payment_is_seen_then_credited_and_chain_status_shows_no_lag(
    env: dict[str, str], dev_chains: DevChains, node_url: str, request: pytest.FixtureRequest
) -> None:
    knots = Knots(dev_chains)
    request.addfinalizer(knots.close)
    knots.rpc("createwallet", OUTSIDE)
    knots.rpc("generatetoaddress", 1, knots.rpc("getnewaddress", wallet=OUTSIDE))
    knots.rpc("generatetoaddress", 100, BURN)  # matures the outside wallet's coinbase
    wallet = _json(env, "wallet", "add-xpub", regtest_vpub(), "--network", "regtest",
                   "--label", "shop")
    account_id = wallet["accounts"][0]["id"]
    key = _json(env, "apikey", "create", "--permission", "dpg.blockchain.addresses")["apiKey"]

    issued = httpx.post(
        f"{node_url}/api/v1/blockchain/wallet/generate", timeout=30,
        headers={"Authorization": f"token {key}"},
        json={"accountId": account_id, "owner": "store:st_1", "reference": "order-1"},
    )
    assert issued.status_code == 201, issued.text
    address = issued.json()["address"]
    assert address.startswith("bcrt1q")
    txid = knots.rpc("sendtoaddress", address, str(PAID), wallet=OUTSIDE)

    pending = _until("the payment pending", lambda: _payment(env, address, "pending"))
    assert (pending["txid"], Decimal(pending["amount"])) == (txid, PAID)
    assert _store_btc(env) == 0
    knots.rpc("generatetoaddress", 1, BURN)
    _until("the credit in the ledger", lambda: _store_btc(env) == PAID)

    credited = _payment(env, address, "credited")
    assert credited is not None
    assert credited["reference"] == "order-1"
    height = knots.rpc("getblockcount")
    status = {row["chain"]: row for row in _json(env, "chain", "status")}
    assert set(status) == {"bitcoin", "ethereum"}
    bitcoin = status["bitcoin"]
    assert bitcoin["nodeHeight"] == height
    assert bitcoin["ourHeight"] == height
    assert bitcoin["lag"] == 0
    assert bitcoin["state"] == "synced"
    assert bitcoin["incidents"] == []
    assert status["ethereum"]["nodeHeight"] is not None
    assert _json(env, "ledger", "verify")["ok"] is True
