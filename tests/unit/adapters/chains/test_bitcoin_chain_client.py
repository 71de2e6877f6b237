"""``BitcoinChainClient`` against a scripted JSON-RPC server speaking Bitcoin Core's formats.

What a real node cannot be made to do on purpose (send another block than the one asked for,
a transaction under the wrong id, malformed hex, refuse a batch) and what must be counted
(the RPC calls an unchanged mempool costs) is checked here; the same client runs against
Bitcoin Knots in ``tests/integration/chains/test_bitcoin_client.py``. Transactions and blocks
served are the real regtest ones of ``data/bitcoin_blocks.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bitcoin.core import CBlock  # type: ignore[import-untyped]
from pydantic import SecretStr

from dpgnode.adapters.chains.bitcoin_client import BitcoinChainClient
from dpgnode.adapters.chains.bitcoin_rpc import BitcoinRpc
from dpgnode.domain.custody.addresses import address_from_script
from dpgnode.domain.custody.networks import Network
from dpgnode.errors import ConfigError, IntegrityError, UnavailableError, ValidationError
from tests.support.bitcoind import free_port
from tests.support.jsonrpc_server import Reply, RpcServer, Seen, batch, error, ok, rpc_server

DATA = json.loads((Path(__file__).parent / "data" / "bitcoin_blocks.json").read_text())
SPENDING = DATA["blocks"]["spending"]
RAW_BLOCK = bytes.fromhex(SPENDING["hex"])
TXS = {tx["txid"]: tx for tx in SPENDING["txs"][1:]}  # the block's non-coinbase transactions
RAW_TXS = {t: v.serialize().hex() for t, v in zip(
    [tx["txid"] for tx in SPENDING["txs"]], CBlock.deserialize(RAW_BLOCK).vtx, strict=True)}
CHAIN_INFO = '{"chain": "regtest", "blocks": 103}'


@pytest.fixture
def server() -> Iterator[RpcServer]:
    with rpc_server() as running:
        yield running


def client_of(server: RpcServer, **options: Any) -> BitcoinChainClient:
    rpc = BitcoinRpc.connect(server.url, network=Network.REGTEST, user="dpg",
                             password=SecretStr("pw"), timeout=2.0)
    return BitcoinChainClient(rpc, asset="BTC", **options)


def node(
    mempool: list[str] | Callable[[], list[str]] = (),  # type: ignore[assignment]
    raw: dict[str, Any] | None = None, **replies: Reply,
) -> Callable[[Seen], Reply]:
    """A node whose mempool lists ``mempool`` and serves ``raw[txid]`` (a tuple: an error)."""
    raw = RAW_TXS if raw is None else raw

    def reply(seen: Seen) -> Reply:
        if seen.method in replies:
            return replies[seen.method]
        if seen.method == "getblockchaininfo":
            return ok(CHAIN_INFO)
        if seen.method == "getrawmempool":
            return ok(mempool() if callable(mempool) else list(mempool))
        if seen.method == "getrawtransaction" and seen.batch_ids is not None:
            return batch(seen, [raw.get(p[0], (-5, "No such mempool transaction"))
                                for p in seen.params])
        return error(-32601, "Method not found", status=404)

    return reply


def transfers(view: Any) -> dict[str, tuple[str, int]]:
    return {t.key: (t.address, t.units) for tx in view.transactions for t in tx.transfers}


def fetched(server: RpcServer) -> list[str]:
    return [p[0] for s in server.seen if s.method == "getrawtransaction" for p in s.params]


class TestMempool:
    def test_unchanged_mempool_costs_one_getrawmempool_and_returns_the_same_view(
        self, server: RpcServer
    ) -> None:
        server.reply = node(list(TXS))
        client = client_of(server)

        first = client.mempool()
        calls = len(server.seen)
        second = client.mempool()

        assert second is first
        assert server.methods()[calls:] == ["getrawmempool"]
        assert sorted(fetched(server)) == sorted(TXS), "every transaction fetched once"
        assert first.txids == frozenset(TXS)
        assert dict(first.spent) == {i["prevout"]: t for t, tx in TXS.items()
                                     for i in tx["inputs"]}

    def test_only_new_transactions_are_fetched_and_gone_ones_forgotten(
        self, server: RpcServer
    ) -> None:
        txids = list(TXS)
        listed = txids[:3]
        server.reply = node(lambda: listed)
        client = client_of(server)
        client.mempool()
        server.seen.clear()

        listed = txids[1:]
        view = client.mempool()

        assert sorted(fetched(server)) == sorted(txids[3:])
        assert view.txids == frozenset(txids[1:])
        assert txids[0] not in view.spent.values()
        assert set(view.spent.values()) == set(txids[1:])

    def test_addresses_watched_later_are_matched_against_pending_transactions(
        self, server: RpcServer
    ) -> None:
        server.reply = node(list(TXS))
        client = client_of(server)
        assert client.mempool().transactions == ()
        txid, tx = next(iter(TXS.items()))
        script = bytes.fromhex(tx["outputs"][0][1])
        address = address_from_script(script, Network.REGTEST)
        assert address is not None
        server.seen.clear()

        client.watch([address])
        view = client.mempool()

        assert transfers(view) == {f"{txid}:0": (address, tx["outputs"][0][0])}
        assert fetched(server) == [], "matched again without fetching again"
        [paying] = view.transactions
        assert paying.spends == tuple(i["prevout"] for i in tx["inputs"])

    def test_a_transaction_gone_before_it_was_fetched_is_left_out(
        self, server: RpcServer
    ) -> None:
        txids = list(TXS)
        server.reply = node(txids, raw={t: RAW_TXS[t] for t in txids[1:]})

        view = client_of(server).mempool()

        assert view.txids == frozenset(txids[1:])

    def test_a_transaction_under_another_id_is_integrity_error(self, server: RpcServer) -> None:
        first, second = list(TXS)[:2]
        server.reply = node([first], raw={first: RAW_TXS[second]})

        with pytest.raises(IntegrityError, match=second):
            client_of(server).mempool()

    def test_malformed_hex_or_bytes_are_unavailable_error(self, server: RpcServer) -> None:
        [first] = list(TXS)[:1]
        client = client_of(server)
        server.reply = node([first], raw={first: "zz"})
        with pytest.raises(UnavailableError, match="malformed hex"):
            client.mempool()
        server.reply = node([first], raw={first: RAW_TXS[first][:-10]})
        with pytest.raises(UnavailableError, match="malformed transaction"):
            client.mempool()
        server.reply = node(getrawmempool=ok(["ab"]))
        with pytest.raises(UnavailableError, match="getrawmempool"):
            client.mempool()

    def test_a_refused_or_incomplete_batch_is_unavailable_error(self, server: RpcServer) -> None:
        txids = list(TXS)
        client = client_of(server)
        server.reply = node(txids, getrawtransaction=error(-32600, "batch too big"))
        with pytest.raises(UnavailableError, match="batch too big"):
            client.mempool()

        def half(seen: Seen) -> Reply:
            if seen.method == "getrawtransaction":
                first_id = (seen.batch_ids or [None])[0]
                return Reply(200, json.dumps([{"result": RAW_TXS[txids[0]], "error": None,
                                               "id": first_id}]).encode())
            return node(txids)(seen)

        server.reply = half
        with pytest.raises(UnavailableError, match="unanswered"):
            client.mempool()


class TestBlocks:
    def test_block_is_read_by_hash_and_checked_against_it(self, server: RpcServer) -> None:
        server.reply = node(getblockhash=ok(json.dumps(SPENDING["hash"])),
                            getblock=ok(json.dumps(SPENDING["hex"])))

        block = client_of(server).block(103)

        assert block is not None
        assert (block.height, block.hash, block.prev_hash) == (
            103, SPENDING["hash"], SPENDING["prev_hash"])
        assert [s.params for s in server.seen if s.method == "getblock"] == [
            [SPENDING["hash"], 0]]

    def test_a_block_that_is_not_the_one_asked_for_is_integrity_error(
        self, server: RpcServer
    ) -> None:
        other = DATA["blocks"]["funding"]
        server.reply = node(getblockhash=ok(json.dumps(other["hash"])),
                            getblock=ok(json.dumps(SPENDING["hex"])))

        with pytest.raises(IntegrityError, match=other["hash"]):
            client_of(server).block(102)

    def test_nothing_above_the_tip(self, server: RpcServer) -> None:
        server.reply = node(getblockhash=error(-8, "Block height out of range", status=500))
        client = client_of(server)

        assert client.block_hash(104) is None
        assert client.block(104) is None

    def test_a_refused_read_is_unavailable_error(self, server: RpcServer) -> None:
        server.reply = node(getblockhash=ok(json.dumps(SPENDING["hash"])),
                            getblock=error(-1, "Block not available (pruned data)", status=500))

        with pytest.raises(UnavailableError, match="pruned"):
            client_of(server).block(103)

    def test_tip_is_the_best_hash_with_its_header_height(self, server: RpcServer) -> None:
        header = {"hash": SPENDING["hash"], "height": 103}
        server.reply = node(getbestblockhash=ok(json.dumps(SPENDING["hash"])),
                            getblockheader=ok(header))

        tip = client_of(server).tip()

        assert (tip.height, tip.hash) == (103, SPENDING["hash"])

    def test_a_header_of_another_block_is_unavailable_error(self, server: RpcServer) -> None:
        header = {"hash": "00" * 32, "height": 103}
        server.reply = node(getbestblockhash=ok(json.dumps(SPENDING["hash"])),
                            getblockheader=ok(header))

        with pytest.raises(UnavailableError, match="header"):
            client_of(server).tip()

    def test_a_negative_height_is_validation_error(self, server: RpcServer) -> None:
        with pytest.raises(ValidationError):
            client_of(server).block_hash(-1)
        assert server.seen == []

    def test_a_node_on_another_chain_is_config_error(self, server: RpcServer) -> None:
        server.reply = node(getblockchaininfo=ok('{"chain": "main", "blocks": 900000}'))

        with pytest.raises(ConfigError, match="chain"):
            client_of(server).tip()


class TestEdges:
    def test_an_unreachable_node_is_unavailable_error(self) -> None:
        rpc = BitcoinRpc.connect(f"http://127.0.0.1:{free_port()}", network=Network.REGTEST,
                                 timeout=1.0)
        with pytest.raises(UnavailableError, match="cannot be reached"):
            BitcoinChainClient(rpc, asset="BTC").mempool()

    def test_a_recorded_transaction_that_does_not_parse_is_integrity_error(
        self, server: RpcServer
    ) -> None:
        client = client_of(server)
        for raw in ("zz", "0200000000"):
            with pytest.raises(IntegrityError, match="does not parse"):
                client.rebroadcast(raw)
        assert server.seen == [], "nothing was sent"

    def test_without_zmq_the_wait_ends_at_once_and_bitcoin_never_finalizes(
        self, server: RpcServer
    ) -> None:
        client = client_of(server)
        assert client.wait_for_news(30) is False
        assert client.finalized_height() is None
        assert client.chain == "bitcoin"

    def test_a_malformed_zmq_url_is_config_error(self, server: RpcServer) -> None:
        with pytest.raises(ConfigError, match="zmq_url"):
            client_of(server, zmq_url="http://127.0.0.1:28332")
