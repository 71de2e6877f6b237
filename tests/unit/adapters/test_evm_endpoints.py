"""``EvmEndpoints`` against scripted JSON-RPC servers: failover, backoff, trust, health.

Real sockets and HTTP (``tests/support/jsonrpc_server.py``); time is a fake clock and the
backoff's sleeps are recorded instead of slept, so nothing here waits or reads wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dpgnode.adapters.chains.evm_client import EvmChainClient
from dpgnode.adapters.chains.evm_endpoints import EndpointState, EndpointView, EvmEndpoints
from dpgnode.adapters.chains.jsonrpc import JsonRpcEndpoint, RpcError
from dpgnode.errors import ConfigError, UnavailableError
from dpgnode.ports.chain_probe import ReportsEndpoints
from dpgnode.ports.chains import ChainClient
from tests.support.anvil_driver import anvil_spec
from tests.support.bitcoind import free_port
from tests.support.jsonrpc_server import Reply, RpcServer, Seen, error, ok, rpc_server

API_KEY = "pr0v1d3r-k3y"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Node:
    """A scripted EVM node: chain id 31337, a head, and optional canned replies per method."""

    def __init__(self, server: RpcServer, head: int = 100) -> None:
        self.server = server
        self.head = head
        self.chain_id = 31337
        self.replies: dict[str, list[Reply]] = {}
        server.reply = self.reply

    def reply(self, seen: Seen) -> Reply:
        queued = self.replies.get(seen.method)
        if queued:
            return queued.pop(0)
        if seen.method == "eth_chainId":
            return ok(f'"{hex(self.chain_id)}"')
        if seen.method == "eth_getBlockByNumber":
            return ok({"number": hex(self.head), "hash": "0x" + f"{self.head:064x}"})
        if seen.method == "eth_blockNumber":
            return ok(f'"{hex(self.head)}"')
        return error(-32601, "Method not found")

    def count(self, method: str) -> int:
        return self.server.methods().count(method)


@pytest.fixture
def servers() -> Iterator[tuple[RpcServer, RpcServer]]:
    with rpc_server() as first, rpc_server() as second:
        yield first, second


def pool(*urls: str, clock: Clock | None = None, retries: int = 2,
         sleeps: list[float] | None = None) -> EvmEndpoints:
    endpoints = [JsonRpcEndpoint(url, label="EVM node (ethereum)", timeout=2) for url in urls]
    recorded = sleeps if sleeps is not None else []
    return EvmEndpoints(endpoints, chain="ethereum", chain_id=31337, reorg_limit=10,
                        stall_after=120, cooldown=30, rate_limit_retries=retries,
                        sleep=recorded.append, clock=clock or Clock())


def head(view: EndpointView, raw: Any) -> int:
    height = int(raw["number"], 16)
    view.observe_head(height, raw["hash"])
    return height


def url(server: RpcServer) -> str:
    return f"{server.url}/v3/{API_KEY}"


class TestFailover:
    def test_next_endpoint_answers_when_first_is_unreachable(self, servers: Any) -> None:
        Node(servers[0], head=7)
        endpoints = pool(f"http://127.0.0.1:{free_port()}/v3/{API_KEY}", url(servers[0]))
        assert endpoints.request("eth_getBlockByNumber", ("latest", False), head) == 7
        dead, live = endpoints.health()
        assert dead.state is EndpointState.DOWN
        assert dead.retry_in_seconds == 30
        assert (live.state, live.head, live.answered) == (EndpointState.OK, 7, 1)
        assert API_KEY not in repr(endpoints.health())

    def test_endpoint_left_aside_until_its_cooldown_ends(self, servers: Any) -> None:
        first, second = Node(servers[0]), Node(servers[1])
        clock = Clock()
        first.replies["eth_chainId"] = [Reply(502, b"bad gateway")]
        endpoints = pool(url(servers[0]), url(servers[1]), clock=clock)
        endpoints.call("eth_blockNumber")
        clock.now += 29
        endpoints.call("eth_blockNumber")
        assert first.count("eth_blockNumber") == 0  # not asked while set aside
        clock.now += 2
        endpoints.call("eth_blockNumber")
        assert first.count("eth_blockNumber") == 1  # tried again, and answered
        assert endpoints.health()[0].state is EndpointState.OK
        assert second.count("eth_blockNumber") == 2

    def test_cooldown_doubles_with_each_failure_in_a_row(self, servers: Any) -> None:
        Node(servers[0])
        clock = Clock()
        endpoints = pool(f"http://127.0.0.1:{free_port()}", url(servers[0]), clock=clock)
        waits = []
        for _ in range(3):
            endpoints.call("eth_blockNumber")
            waits.append(endpoints.health()[0].retry_in_seconds)
            clock.now += waits[-1]
        assert waits == [30, 60, 120]

    def test_lone_down_endpoint_still_tried_as_last_resort(self, servers: Any) -> None:
        node = Node(servers[0])
        node.replies["eth_chainId"] = [Reply(503, b"")]
        endpoints = pool(url(servers[0]))
        with pytest.raises(UnavailableError, match="no usable RPC endpoint") as caught:
            endpoints.call("eth_blockNumber")
        assert caught.value.retry_after == 30
        assert API_KEY not in caught.value.message
        assert endpoints.call("eth_blockNumber") == "0x64"  # during its cooldown, as last resort


class TestRateLimits:
    def test_retried_with_backoff_when_rate_limited_then_answered(self, servers: Any) -> None:
        node = Node(servers[0])
        node.replies["eth_blockNumber"] = [Reply(429, b"", {"Retry-After": "1"})] * 2
        sleeps: list[float] = []
        endpoints = pool(url(servers[0]), sleeps=sleeps)
        assert endpoints.call("eth_blockNumber") == "0x64"
        assert len(sleeps) == 2
        assert sleeps[0] > 0
        assert all(s <= 4.25 for s in sleeps)
        assert endpoints.health()[0].state is EndpointState.OK

    def test_next_endpoint_asked_when_retries_are_exhausted(self, servers: Any) -> None:
        first, _ = Node(servers[0]), Node(servers[1])
        limited = error(-32005, "daily request count exceeded, request rate limited")
        first.replies["eth_blockNumber"] = [limited] * 5
        sleeps: list[float] = []
        endpoints = pool(url(servers[0]), url(servers[1]), retries=1, sleeps=sleeps)
        assert endpoints.call("eth_blockNumber") == "0x64"
        assert first.count("eth_blockNumber") == 2
        assert len(sleeps) == 1
        assert endpoints.health()[0].state is EndpointState.RATE_LIMITED

    def test_node_refusal_raised_and_endpoint_kept_when_not_a_rate_limit(
        self, servers: Any
    ) -> None:
        first, second = Node(servers[0]), Node(servers[1])
        first.replies["eth_call"] = [error(3, "execution reverted")]
        endpoints = pool(url(servers[0]), url(servers[1]))
        with pytest.raises(RpcError, match="execution reverted"):
            endpoints.call("eth_call", {})
        assert endpoints.health()[0].state is EndpointState.OK
        assert second.count("eth_call") == 0


class TestTrust:
    def test_wrong_chain_id_set_aside_and_other_endpoint_used(self, servers: Any) -> None:
        first, _ = Node(servers[0]), Node(servers[1])
        first.chain_id = 1
        endpoints = pool(url(servers[0]), url(servers[1]))
        assert endpoints.call("eth_blockNumber") == "0x64"
        health = endpoints.health()[0]
        assert health.state is EndpointState.MISCONFIGURED
        assert "serves chain id 1, not 31337" in health.problem

    def test_config_error_when_every_endpoint_serves_another_chain(self, servers: Any) -> None:
        Node(servers[0]).chain_id = 56
        with pytest.raises(ConfigError, match="serves chain id 56, not 31337"):
            pool(url(servers[0])).call("eth_blockNumber")

    def test_untrusted_endpoint_not_a_last_resort_until_its_cooldown_ends(
        self, servers: Any
    ) -> None:
        node = Node(servers[0], head=100)
        clock = Clock()
        endpoints = pool(url(servers[0]), clock=clock)
        assert endpoints.request("eth_getBlockByNumber", ("latest", False), head) == 100
        node.head = 80  # back by more than reorg_limit (10)
        with pytest.raises(UnavailableError, match="went back from 100 to 80"):
            endpoints.request("eth_getBlockByNumber", ("latest", False), head)
        asked = node.count("eth_getBlockByNumber")
        with pytest.raises(UnavailableError):
            endpoints.request("eth_getBlockByNumber", ("latest", False), head)
        assert node.count("eth_getBlockByNumber") == asked  # not asked at all
        clock.now += 31
        # On probation it is judged on what it says from now on.
        assert endpoints.request("eth_getBlockByNumber", ("latest", False), head) == 80

    def test_head_back_within_reorg_limit_is_trusted(self, servers: Any) -> None:
        node = Node(servers[0], head=100)
        endpoints = pool(url(servers[0]))
        endpoints.request("eth_getBlockByNumber", ("latest", False), head)
        node.head = 95
        assert endpoints.request("eth_getBlockByNumber", ("latest", False), head) == 95

    def test_stalled_head_answers_only_when_nothing_else_does(self, servers: Any) -> None:
        first, second = Node(servers[0], head=50), Node(servers[1], head=51)
        clock = Clock()
        endpoints = pool(url(servers[0]), url(servers[1]), clock=clock)
        assert endpoints.request("eth_getBlockByNumber", ("latest", False), head) == 50
        clock.now += 121
        assert endpoints.request("eth_getBlockByNumber", ("latest", False), head) == 51
        assert endpoints.health()[0].state is EndpointState.STALLED
        alone = pool(url(servers[0]), clock=clock)
        alone.request("eth_getBlockByNumber", ("latest", False), head)
        clock.now += 121
        assert alone.request("eth_getBlockByNumber", ("latest", False), head) == 50
        assert alone.health()[0].state is EndpointState.STALLED
        assert first.head == 50
        assert second.head == 51


def test_client_offers_the_chain_port_and_endpoint_reports() -> None:
    spec = anvil_spec([f"http://127.0.0.1:{free_port()}/v3/{API_KEY}", "http://127.0.0.1:9"])
    client: ChainClient = EvmChainClient.connect(spec)  # mypy checks the port's shape
    assert isinstance(client, ReportsEndpoints)
    reports = client.endpoint_health()
    assert [(r.state, r.head, r.problem) for r in reports] == [("unchecked", None, "")] * 2
    assert all(API_KEY not in r.name for r in reports)
    assert client.mempool().txids == frozenset()
