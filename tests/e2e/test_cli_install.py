"""The installed ``dpg`` executable, run as an operator would, in a fresh data directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def _dpg_executable() -> str:
    beside_python = Path(sys.executable).parent / "dpg"
    found = str(beside_python) if beside_python.is_file() else shutil.which("dpg")
    assert found, "the dpg executable is not installed: pip install -e '.[dev]'"
    return found


DPG = _dpg_executable()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DPG_")}
    return {**clean, "DPG_DATA_DIR": str(tmp_path / "data")}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DPG, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _json(env: dict[str, str], *args: str) -> Any:
    done = _run(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_operator_sets_up_store_and_key_and_ledger_verifies_when_starting_fresh(
    env: dict[str, str], tmp_path: Path
) -> None:
    init = _run(env, "init")
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "data" / "dpg.sqlite3").is_file()

    store = _json(env, "store", "create", "--name", "My shop")
    key = _json(
        env, "apikey", "create", "--store", store["id"],
        "--permission", "btcpay.store.canviewstoresettings", "--label", "e2e",
    )
    report = _json(env, "ledger", "verify")

    assert key["permissions"] == [f"btcpay.store.canviewstoresettings:{store['id']}"]
    assert len(key["apiKey"]) == 40
    assert report["ok"] is True
    assert _run(env, "init").returncode == 0


def test_failures_exit_with_documented_codes_when_run_as_a_process(
    env: dict[str, str],
) -> None:
    not_initialised = _run(env, "ledger", "verify")
    usage = _run(env, "ledger", "frobnicate")

    assert not_initialised.returncode == 3
    assert not_initialised.stderr.startswith("error: no database at")
    assert "Traceback" not in not_initialised.stderr
    assert usage.returncode == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    assert _run(env, "init").returncode == 0
    port = _free_port()
    log = (tmp_path / "server.log").open("w")  # a file: a full pipe would stall the server
    server = subprocess.Popen(
        [DPG, "node", "start", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # only bounds the wait; nothing asserts on time
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                httpx.get(f"{base}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "dpg node start never answered"
                time.sleep(0.2)
        yield base, env
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_node_start_serves_api_to_new_key_when_initialised(
    served: tuple[str, dict[str, str]],
) -> None:
    base, env = served
    key = _json(env, "apikey", "create", "--permission", "btcpay.server.canviewserversettings")

    health = httpx.get(f"{base}/api/v1/health", timeout=10)
    info = httpx.get(
        f"{base}/api/v1/server/info",
        headers={"Authorization": f"token {key['apiKey']}"},
        timeout=10,
    )
    anonymous = httpx.get(f"{base}/api/v1/server/info", timeout=10)

    assert health.status_code == 200
    assert info.status_code == 200
    assert anonymous.status_code == 401


def test_served_node_exposes_metrics_and_logs_without_secrets_when_scraped(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served
    key = _json(env, "apikey", "create", "--permission", "dpg.metrics.view")["apiKey"]
    httpx.get(f"{base}/api/v1/health", headers={"X-Request-Id": "e2e-probe-1"}, timeout=10)
    scrape = httpx.get(f"{base}/metrics", headers={"Authorization": f"token {key}"}, timeout=10)
    refused = httpx.get(f"{base}/metrics", timeout=10)

    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'dpg_http_requests_total{method="GET",route="/api/v1/health",status="200"}' in (
        scrape.text
    )
    assert "dpg_ledger_entries_total" in scrape.text
    assert refused.status_code == 401
    # The server's own log (JSON lines on stderr): the probe's request id, never the key.
    logged = (tmp_path / "server.log").read_text()
    access = [json.loads(line) for line in logged.splitlines() if '"http_request"' in line]
    assert any(line.get("request_id") == "e2e-probe-1" for line in access)
    assert key not in logged
