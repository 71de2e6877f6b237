"""``EvmRpc`` against a scripted JSON-RPC 2.0 server speaking the Ethereum execution API.

Quantities are ``0x`` hex strings, errors are JSON-RPC error objects with HTTP 200 (as geth
and anvil send them); hosted providers answer 429 with ``Retry-After`` when rate limited.
The happy paths also run against a real anvil in ``tests/integration/chains``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dpgnode.adapters.chains.evm_rpc import EvmRpc, Fees
from dpgnode.adapters.chains.jsonrpc import RpcError
from dpgnode.errors import ConfigError, UnavailableError
from tests.support.jsonrpc_server import Reply, RpcServer, Seen, error, ok, rpc_server

GWEI = 10**9
SENDER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
API_KEY = "k3y-0f-th3-pr0v1d3r"


@pytest.fixture
def server() -> Iterator[RpcServer]:
    with rpc_server() as running:
        yield running


def chain(server: RpcServer, *, chain_id: int = 31337, timeout: float = 2.0) -> EvmRpc:
    return EvmRpc.connect(f"{server.url}/v3/{API_KEY}", chain="ethereum", chain_id=chain_id,
                          timeout=timeout)


def script(replies: dict[str, Reply]) -> Any:
    def reply(seen: Seen) -> Reply:
        defaults = {"eth_chainId": ok('"0x7a69"'), "eth_blockNumber": ok('"0x10"')}
        return replies.get(seen.method) or defaults.get(seen.method) or error(
            -32601, "Method not found")

    return reply


def history(base_fees: list[int], rewards: list[int]) -> Reply:
    bases = ", ".join(f'"{hex(b)}"' for b in base_fees)
    paid = ", ".join(f'["{hex(r)}"]' for r in rewards)
    return ok(f'{{"oldestBlock": "0x1", "baseFeePerGas": [{bases}], "reward": [{paid}]}}')


class TestChainId:
    def test_config_error_when_node_serves_another_chain(self, server: RpcServer) -> None:
        server.reply = script({"eth_chainId": ok('"0x1"')})
        rpc = chain(server)
        with pytest.raises(ConfigError, match="serves chain id 1, not 31337"):
            rpc.nonce(SENDER)
        assert server.methods() == ["eth_chainId"]  # the nonce was never asked

    def test_checked_once_when_calls_follow(self, server: RpcServer) -> None:
        server.reply = script({"eth_getTransactionCount": ok('"0x2a"')})
        rpc = chain(server)
        assert [rpc.nonce(SENDER), rpc.nonce(SENDER)] == [42, 42]
        assert server.methods() == ["eth_chainId", "eth_blockNumber",
                                    "eth_getTransactionCount", "eth_getTransactionCount"]
        assert server.seen[-1].params == [SENDER, "pending"]


class TestFees:
    def test_max_fee_is_twice_next_base_plus_tip(self, server: RpcServer) -> None:
        server.reply = script({
            "eth_feeHistory": history([10 * GWEI, 12 * GWEI, 11 * GWEI], [1, 2]),
            "eth_maxPriorityFeePerGas": ok(f'"{hex(2 * GWEI)}"'),
        })
        assert chain(server).fees() == Fees(24 * GWEI, 2 * GWEI)

    def test_tip_is_median_reward_when_node_lacks_max_priority_fee(
        self, server: RpcServer
    ) -> None:
        server.reply = script({"eth_feeHistory": history(
            [GWEI, GWEI], [3 * GWEI, GWEI, 2 * GWEI])})
        assert chain(server).fees() == Fees(4 * GWEI, 2 * GWEI)

    def test_ceiling_caps_max_fee_when_it_still_covers_base_and_tip(
        self, server: RpcServer
    ) -> None:
        server.reply = script({
            "eth_feeHistory": history([10 * GWEI], []),
            "eth_maxPriorityFeePerGas": ok(f'"{hex(GWEI)}"'),
        })
        assert chain(server).fees(ceiling=15 * GWEI) == Fees(15 * GWEI, GWEI)

    def test_waits_when_ceiling_is_below_base_and_tip(self, server: RpcServer) -> None:
        server.reply = script({
            "eth_feeHistory": history([10 * GWEI], []),
            "eth_maxPriorityFeePerGas": ok(f'"{hex(GWEI)}"'),
        })
        with pytest.raises(UnavailableError, match="exceeds the ceiling"):
            chain(server).fees(ceiling=10 * GWEI)

    def test_config_error_when_chain_has_no_base_fee(self, server: RpcServer) -> None:
        server.reply = script({"eth_feeHistory": ok('{"oldestBlock": "0x0", '
                                                    '"baseFeePerGas": []}')})
        with pytest.raises(ConfigError, match="EIP-1559"):
            chain(server).fees()


class TestErrors:
    def test_rpc_error_carries_the_node_reason(self, server: RpcServer) -> None:
        server.reply = script({"eth_sendRawTransaction": error(
            -32003, "Insufficient funds for gas * price + value")})
        with pytest.raises(RpcError) as caught:
            chain(server).send_raw("0x02")
        assert caught.value.rpc_message == "Insufficient funds for gas * price + value"

    def test_unavailable_with_retry_after_when_provider_rate_limits(
        self, server: RpcServer
    ) -> None:
        server.reply = lambda seen: Reply(429, b'{"message": "slow down"}',
                                          {"Retry-After": "30"})
        with pytest.raises(UnavailableError) as caught:
            chain(server).check_chain()
        assert caught.value.retry_after == 30

    def test_unavailable_when_quantity_is_malformed(self, server: RpcServer) -> None:
        server.reply = script({"eth_getTransactionCount": ok("42")})
        with pytest.raises(UnavailableError, match="malformed nonce"):
            chain(server).nonce(SENDER)

    def test_unavailable_when_node_stalls(self, server: RpcServer) -> None:
        server.reply = lambda seen: Reply(stall=True)
        with pytest.raises(UnavailableError, match="in time"):
            chain(server, timeout=0.2).check_chain()

    def test_messages_and_logs_never_show_the_url_path_when_it_holds_an_api_key(
        self, server: RpcServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        server.reply = lambda seen: Reply(502, b"bad gateway")
        caplog.set_level(logging.DEBUG, logger="httpx")
        with pytest.raises(UnavailableError) as caught:
            chain(server).check_chain()
        assert API_KEY not in str(caught.value)
        assert f"127.0.0.1:{server.port}" in str(caught.value)
        assert any("HTTP Request" in r.getMessage() for r in caplog.records)
        assert all(API_KEY not in r.getMessage() for r in caplog.records)

    def test_config_error_when_url_is_not_http(self) -> None:
        with pytest.raises(ConfigError, match="http"):
            EvmRpc.connect("ws://127.0.0.1:8546", chain="ethereum", chain_id=1)


class TestCalls:
    def test_estimate_sends_hex_value_and_data(self, server: RpcServer) -> None:
        server.reply = script({"eth_estimateGas": ok('"0xcb20"')})
        gas = chain(server).estimate_gas(sender=SENDER, to=SENDER, value=10**18,
                                         data=b"\xa9\x05\x9c\xbb")
        assert gas == 52_000
        assert server.seen[-1].params == [{"from": SENDER, "to": SENDER,
                                           "value": hex(10**18), "data": "0xa9059cbb"}]

    def test_unknown_transaction_is_none(self, server: RpcServer) -> None:
        server.reply = script({"eth_getTransactionByHash": ok("null")})
        assert chain(server).transaction("0x" + "ab" * 32) is None


def test_transport_errors_never_escape_as_httpx_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    rpc = EvmRpc.connect("http://node.invalid", chain="ethereum", chain_id=1,
                         transport=httpx.MockTransport(refuse))
    with pytest.raises(UnavailableError, match="RemoteProtocolError"):
        rpc.check_chain()
