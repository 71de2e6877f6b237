"""``dpg doctor``'s probes against real components: PostgreSQL's clock and checksums, an HTTP
time reference, a running anvil and an unreachable Bitcoin node."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dpgnode.domain.doctor import Finding, Status
from dpgnode.maintenance.doctor import run_doctor
from dpgnode.node import build_node
from dpgnode.settings import Settings, load_settings
from tests.support.anvil import AnvilNode, require_anvil, start_anvil
from tests.support.postgres import (
    create_database,
    drop_database,
    require_postgres,
    unique_database_name,
)

pytestmark = pytest.mark.integration


def _doctor(settings: Settings) -> dict[str, list[Finding]]:
    by_check: dict[str, list[Finding]] = {}
    for finding in run_doctor(lambda: settings):
        by_check.setdefault(finding.check, []).append(finding)
    return by_check


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    overrides.setdefault("backup", {"interval_minutes": 0})
    return load_settings(data_dir, overrides=overrides)


class _DateServer:
    """An HTTP server on 127.0.0.1 whose ``Date`` header is ``skew`` seconds off."""

    def __init__(self, skew: float) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.send_response(204)
                self.end_headers()

            def date_time_string(self, timestamp: float | None = None) -> str:
                return formatdate(time.time() + skew, usegmt=True)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def date_server(request: pytest.FixtureRequest) -> Iterator[_DateServer]:
    server = _DateServer(float(request.param))
    yield server
    server.close()


@pytest.mark.parametrize(("date_server", "status"), [(0, Status.OK), (600, Status.FAIL)],
                         indirect=["date_server"], ids=["in-step", "ten-minutes-ahead"])
def test_clock_is_judged_against_the_time_urls_date_header(
    tmp_path: Path, date_server: _DateServer, status: Status
) -> None:
    settings = _settings(tmp_path, doctor={"time_url": date_server.url})
    build_node(settings, upgrade=True).close()
    clock = _doctor(settings)["clock"]
    assert [f.status for f in clock] == [status], clock
    assert date_server.url in clock[0].summary


@pytest.mark.postgres
def test_postgres_clock_and_checksums_are_reported(tmp_path: Path) -> None:
    admin = require_postgres()
    name = unique_database_name("doctor")
    url = create_database(admin, name)
    try:
        settings = _settings(tmp_path, database={"url": url})
        build_node(settings, upgrade=True).close()
        report = _doctor(settings)
    finally:
        drop_database(admin, name)
    assert [f.status for f in report["clock"]] == [Status.OK], report["clock"]
    assert "PostgreSQL" in report["clock"][0].summary
    assert report["integrity"][0].summary.startswith("data checksums")
    assert [f.status for f in report["ledger"]] == [Status.OK]


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    require_anvil()
    with start_anvil() as node:
        yield node


def test_chains_report_a_running_node_and_an_unreachable_one(
    tmp_path: Path, anvil: AnvilNode
) -> None:
    settings = _settings(tmp_path, chains={
        "evm": {"ethereum": {"rpc_url": anvil.url, "chain_id": 31337}},
        "bitcoin": {"rpc_url": "http://127.0.0.1:9", "rpc_user": "u", "rpc_password": "p",
                    "timeout_seconds": 2},
    })
    build_node(settings, upgrade=True).close()
    chains = {f.summary.split(":")[0]: f for f in _doctor(settings)["chains"]}
    assert chains["chains.evm.ethereum"].status is Status.OK
    assert "31337" in chains["chains.evm.ethereum"].summary
    assert chains["chains.bitcoin"].status is Status.FAIL
    assert "rpc_url" in chains["chains.bitcoin"].fix
