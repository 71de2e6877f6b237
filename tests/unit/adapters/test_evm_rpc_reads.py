"""``EvmRpc`` reads added for the watcher and sweeps: fee levels, balances, contract calls.

Scripted JSON-RPC server as in ``test_evm_rpc_client.py``; the same calls run against a real
anvil in ``tests/integration/chains/test_evm_client.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from dpgnode.adapters.chains.evm_rpc import EvmRpc, Fees
from dpgnode.adapters.chains.jsonrpc import RpcError
from dpgnode.errors import UnavailableError
from tests.support.jsonrpc_server import Reply, RpcServer, Seen, error, ok, rpc_server

GWEI = 10**9
HOLDER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
TOKEN = "0xdAC17F958D2ee523a2206206994597C13D831ec7"


@pytest.fixture
def server() -> Iterator[RpcServer]:
    with rpc_server() as running:
        yield running


def answering(replies: dict[str, Reply]) -> Callable[[Seen], Reply]:
    def reply(seen: Seen) -> Reply:
        base = {"eth_chainId": ok('"0x7a69"'), "eth_blockNumber": ok('"0x10"')}
        return replies.get(seen.method) or base.get(seen.method) or error(-32601, "no")

    return reply


def rpc(server: RpcServer) -> EvmRpc:
    return EvmRpc.connect(server.url, chain="ethereum", chain_id=31337, timeout=2)


def test_fee_levels_are_medians_of_each_percentile(server: RpcServer) -> None:
    rewards = [[1, 10, 100], [3, 30, 300], [2, 20, 200]]
    rows = ", ".join("[" + ", ".join(f'"{hex(r * GWEI)}"' for r in row) + "]" for row in rewards)
    server.reply = answering({"eth_feeHistory": ok(
        f'{{"oldestBlock": "0x9", "baseFeePerGas": ["0x1", "{hex(5 * GWEI)}"],'
        f' "reward": [{rows}]}}')})
    levels = rpc(server).fee_levels()
    assert levels.base_fee_per_gas == 5 * GWEI
    assert levels.oldest_block == 9
    assert levels.slow == Fees(12 * GWEI, 2 * GWEI)
    assert levels.normal == Fees(30 * GWEI, 20 * GWEI)
    assert levels.fast == Fees(210 * GWEI, 200 * GWEI)
    assert server.seen[-1].params == ["0x14", "latest", [10, 50, 90]]


def test_balances_read_exactly(server: RpcServer) -> None:
    word = "0x" + f"{10**30 + 1:064x}"
    server.reply = answering({"eth_getBalance": ok(f'"{hex(10**24 + 7)}"'),
                              "eth_call": ok(f'"{word}"')})
    client = rpc(server)
    assert client.balance(HOLDER) == 10**24 + 7
    assert client.token_balance(TOKEN, HOLDER) == 10**30 + 1
    call = server.seen[-1]
    assert call.params[0] == {"to": TOKEN, "data": "0x70a08231" + "00" * 12 + HOLDER[2:].lower()}
    assert call.params[1] == "latest"


def test_balance_of_refused_when_answer_is_not_one_word(server: RpcServer) -> None:
    server.reply = answering({"eth_call": ok('"0x"')})
    with pytest.raises(UnavailableError, match="not one word"):
        rpc(server).token_balance(TOKEN, HOLDER)


def test_contract_call_revert_is_the_nodes_refusal(server: RpcServer) -> None:
    server.reply = answering({"eth_call": error(3, "execution reverted: paused")})
    with pytest.raises(RpcError, match="paused"):
        rpc(server).call_contract(TOKEN, b"\x01\x02")
