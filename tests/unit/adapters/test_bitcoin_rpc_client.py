"""``BitcoinRpc`` against a scripted JSON-RPC server speaking Bitcoin Core's formats.

Error paths (timeouts, refused connections, RPC errors, bad credentials, wrong chain) need a
server that misbehaves on purpose; the happy paths also run against a real regtest node in
``tests/integration/chains/test_chain_funding.py``. Replies follow Bitcoin Core's documented
shapes: JSON-RPC 1.0 errors come with HTTP 500 and an ``error`` object, amounts are JSON
numbers with 8 decimals.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc, btc_to_sats
from dpgnode.adapters.chains.jsonrpc import RpcError
from dpgnode.domain.custody.btc_spend import FeeRate
from dpgnode.domain.custody.networks import Network
from dpgnode.errors import ConfigError, UnavailableError, ValidationError
from tests.support.bitcoind import free_port
from tests.support.jsonrpc_server import Reply, RpcServer, Seen, error, ok, rpc_server

CHAIN_INFO = '{"chain": "regtest", "blocks": 150}'
SCRIPT = "0014751e76e8199196d454941c45d1b3a323f1433bd6"


@pytest.fixture
def server() -> Iterator[RpcServer]:
    with rpc_server() as running:
        yield running


def node(server: RpcServer, **options: Any) -> BitcoinRpc:
    options.setdefault("user", "dpg")
    options.setdefault("password", SecretStr("pw"))
    options.setdefault("timeout", 2.0)
    return BitcoinRpc.connect(server.url, network=Network.REGTEST, **options)


def script(replies: dict[str, Reply]) -> Any:
    def reply(seen: Seen) -> Reply:
        if seen.method == "getblockchaininfo" and "getblockchaininfo" not in replies:
            return ok(CHAIN_INFO)
        return replies.get(seen.method, error(-32601, "Method not found", status=404))

    return reply


class TestScan:
    def test_outputs_are_exact_satoshis_when_node_sends_8_decimal_amounts(
        self, server: RpcServer
    ) -> None:
        server.reply = script({"scantxoutset": ok(
            '{"success": true, "height": 150, "unspents": ['
            f'{{"txid": "{"ab" * 32}", "vout": 1, "scriptPubKey": "{SCRIPT}", '
            '"amount": 0.29999999, "coinbase": false, "height": 150, "confirmations": 1},'
            f'{{"txid": "{"cd" * 32}", "vout": 0, "scriptPubKey": "{SCRIPT}", '
            '"amount": 50.00004500, "coinbase": true, "height": 100}]}'
        )})
        rpc = node(server)
        outputs = rpc.scan(["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"])
        assert [o.value_sats for o in outputs] == [29_999_999, 5_000_004_500]
        assert outputs[0].mature
        assert outputs[1].confirmations == 51  # derived from heights for older nodes
        assert not outputs[1].mature
        scan = server.seen[-1]
        assert scan.params == ["start", ["addr(bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080)"]]
        assert server.methods() == ["getblockchaininfo", "scantxoutset"]
        rpc.close()

    def test_busy_when_another_scan_runs(self, server: RpcServer) -> None:
        server.reply = script({"scantxoutset": error(
            -8, 'Scan already in progress, use action "abort" or "status"', status=500)})
        with pytest.raises(UnavailableError, match="busy"):
            node(server).scan(["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"])

    def test_no_call_when_there_is_nothing_to_scan(self, server: RpcServer) -> None:
        assert node(server).scan([]) == []
        assert server.seen == []


class TestErrors:
    def test_rpc_error_carries_the_node_message_when_core_answers_http_500(
        self, server: RpcServer
    ) -> None:
        server.reply = script({"sendrawtransaction": error(
            -26, "min relay fee not met, 100 < 141", status=500)})
        with pytest.raises(RpcError) as caught:
            node(server).send_raw("00")
        assert isinstance(caught.value, ValidationError)
        assert caught.value.rpc_code == -26
        assert "min relay fee not met, 100 < 141" in caught.value.message
        assert caught.value.details["rpcCode"] == -26

    def test_unavailable_when_node_is_warming_up(self, server: RpcServer) -> None:
        server.reply = script({"getblockchaininfo": error(-28, "Loading block index...",
                                                          status=500)})
        with pytest.raises(UnavailableError, match="starting"):
            node(server).check_chain()

    def test_config_error_when_credentials_are_refused(self, server: RpcServer) -> None:
        server.reply = lambda seen: Reply(401, b"")
        with pytest.raises(ConfigError, match="credentials"):
            node(server).check_chain()

    def test_unavailable_when_proxy_answers_without_json_rpc(self, server: RpcServer) -> None:
        server.reply = lambda seen: Reply(503, b"<html>busy</html>", {"Retry-After": "17"})
        with pytest.raises(UnavailableError) as caught:
            node(server).check_chain()
        assert caught.value.retry_after == 17

    def test_unavailable_when_node_does_not_answer_in_time(self, server: RpcServer) -> None:
        server.reply = lambda seen: Reply(stall=True)
        with pytest.raises(UnavailableError, match="in time"):
            node(server, timeout=0.2).check_chain()

    def test_unavailable_when_nothing_listens(self) -> None:
        rpc = BitcoinRpc.connect(f"http://127.0.0.1:{free_port()}", network=Network.REGTEST,
                                 timeout=2.0)
        with pytest.raises(UnavailableError, match="cannot be reached"):
            rpc.check_chain()

    def test_config_error_when_node_is_on_another_chain(self, server: RpcServer) -> None:
        server.reply = script({"getblockchaininfo": ok('{"chain": "main", "blocks": 900000}')})
        rpc = node(server)
        with pytest.raises(ConfigError, match="not regtest"):
            rpc.scan(["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"])
        assert server.methods() == ["getblockchaininfo"]  # nothing else was asked

    def test_config_error_when_node_lacks_the_method(self, server: RpcServer) -> None:
        server.reply = script({})
        with pytest.raises(ConfigError, match="does not offer testmempoolaccept"):
            node(server).test_accept("00")

    def test_message_never_shows_the_password_when_unreachable(self) -> None:
        rpc = BitcoinRpc.connect(f"http://127.0.0.1:{free_port()}", network=Network.REGTEST,
                                 user="dpg", password=SecretStr("hunter2-secret"))
        with pytest.raises(UnavailableError) as caught:
            rpc.check_chain()
        assert "hunter2-secret" not in str(caught.value)


class TestAuth:
    def test_basic_auth_is_sent_when_user_is_set(self, server: RpcServer) -> None:
        server.reply = script({})
        node(server, user="alice", password=SecretStr("s3cret")).check_chain()
        expected = base64.b64encode(b"alice:s3cret").decode()
        assert server.seen[0].headers["authorization"] == f"Basic {expected}"

    def test_cookie_is_read_at_each_call_when_no_user_is_set(
        self, server: RpcServer, tmp_path: Path
    ) -> None:
        cookie = tmp_path / ".cookie"
        cookie.write_text("__cookie__:first")
        server.reply = script({})
        rpc = node(server, user="", password=None, cookie_file=cookie)
        rpc.check_chain()
        cookie.write_text("__cookie__:second")  # the node restarted
        rpc.check_chain()
        sent = [s.headers["authorization"] for s in server.seen]
        assert sent == [f"Basic {base64.b64encode(f'__cookie__:{p}'.encode()).decode()}"
                        for p in ("first", "second")]

    def test_config_error_when_cookie_file_is_missing(
        self, server: RpcServer, tmp_path: Path
    ) -> None:
        rpc = node(server, user="", password=None, cookie_file=tmp_path / "absent")
        with pytest.raises(ConfigError, match="cookie file"):
            rpc.check_chain()
        assert server.seen == []


class TestFeeRate:
    def floor_and_ceiling(self) -> dict[str, FeeRate]:
        return {"floor": FeeRate.from_sat_per_vb("1"), "ceiling": FeeRate.from_sat_per_vb("50")}

    def test_floor_when_node_has_no_estimate(self, server: RpcServer) -> None:
        server.reply = script({
            "estimatesmartfee": ok('{"errors": ["Insufficient data or no feerate found"], '
                                   '"blocks": 0}'),
            "getmempoolinfo": ok('{"mempoolminfee": 0.00001000}'),
        })
        rate = node(server).fee_rate(target_blocks=6, **self.floor_and_ceiling())
        assert rate == FeeRate(1000)
        assert server.seen[1].params == [6]

    def test_estimate_rounds_up_when_it_is_above_the_floor(self, server: RpcServer) -> None:
        server.reply = script({
            "estimatesmartfee": ok('{"feerate": 0.00012345, "blocks": 6}'),
            "getmempoolinfo": ok('{"mempoolminfee": 0.00001000}'),
        })
        assert node(server).fee_rate(target_blocks=6, **self.floor_and_ceiling()) == (
            FeeRate(12_345))

    def test_mempool_minimum_wins_when_it_is_highest(self, server: RpcServer) -> None:
        server.reply = script({
            "estimatesmartfee": ok('{"feerate": 0.00002000, "blocks": 6}'),
            "getmempoolinfo": ok('{"mempoolminfee": 0.00003001}'),
        })
        assert node(server).fee_rate(target_blocks=6, **self.floor_and_ceiling()) == (
            FeeRate(3001))

    def test_refuses_to_overpay_when_estimate_is_above_the_ceiling(
        self, server: RpcServer
    ) -> None:
        server.reply = script({
            "estimatesmartfee": ok('{"feerate": 0.00060000, "blocks": 6}'),
            "getmempoolinfo": ok('{"mempoolminfee": 0.00001000}'),
        })
        with pytest.raises(UnavailableError, match="above the ceiling"):
            node(server).fee_rate(target_blocks=6, **self.floor_and_ceiling())


class TestMempool:
    def test_reason_includes_details_when_node_refuses(self, server: RpcServer) -> None:
        server.reply = script({"testmempoolaccept": ok(
            f'[{{"txid": "{"ab" * 32}", "allowed": false, "reject-reason": "missing-inputs",'
            ' "reject-details": "missing-inputs, input 0"}]')})
        verdict = node(server).test_accept("00")
        assert (verdict.allowed, verdict.txid) == (False, "ab" * 32)
        assert verdict.reason == "missing-inputs: missing-inputs, input 0"

    def test_unavailable_when_reply_is_malformed(self, server: RpcServer) -> None:
        server.reply = script({"testmempoolaccept": ok("[]")})
        with pytest.raises(UnavailableError, match="malformed"):
            node(server).test_accept("00")

    def test_spent_in_mempool_when_gettxout_is_null(self, server: RpcServer) -> None:
        server.reply = script({"gettxout": ok("null")})
        assert not node(server).is_unspent("ab" * 32, 0)
        assert server.seen[-1].params == ["ab" * 32, 0, True]


@pytest.mark.parametrize(
    ("amount", "sats"), [("0.00000001", 1), ("21000000", 2_100_000_000_000_000)])
def test_amounts_convert_exactly_when_they_have_8_decimals(amount: str, sats: int) -> None:
    assert btc_to_sats(amount) == sats


@pytest.mark.parametrize("amount", ["0.000000001", "-1", "NaN", "x"])
def test_amounts_are_refused_when_not_whole_satoshis(amount: str) -> None:
    with pytest.raises(UnavailableError):
        btc_to_sats(amount)
