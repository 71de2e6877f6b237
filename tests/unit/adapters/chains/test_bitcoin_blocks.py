"""The raw block and transaction parser against Bitcoin Knots and python-bitcoinlib.

``data/bitcoin_blocks.json`` holds real regtest blocks (made by
``tests/support/bitcoin_fixtures.py``) with what the node itself decoded from them: P2PKH,
P2SH-P2WPKH, P2WPKH and P2TR outputs and spends, legacy (witness-free) transactions, a segwit
transaction with a legacy input, coinbases with witness commitments, final, replaceable and
non-replaceable sequence numbers. Mainnet's genesis block comes from python-bitcoinlib.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bitcoin.core import CBlock, CoreMainParams, b2lx  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.adapters.chains.bitcoin_blocks import block_hash, parse_block, parse_tx
from dpgnode.adapters.chains.bitcoin_watchset import WatchedScripts
from dpgnode.domain.custody.addresses import address_from_script
from dpgnode.domain.custody.networks import Network
from dpgnode.errors import UnavailableError

DATA = json.loads((Path(__file__).parent / "data" / "bitcoin_blocks.json").read_text())
BLOCKS: dict[str, dict[str, Any]] = DATA["blocks"]
REPLACEABLE_BELOW = 0xFFFFFFFE


def raw_of(name: str) -> bytes:
    return bytes.fromhex(BLOCKS[name]["hex"])


def node_spent(block: dict[str, Any]) -> dict[str, str]:
    return {i["prevout"]: tx["txid"] for tx in block["txs"] for i in tx["inputs"]
            if "prevout" in i}


def every_tx() -> list[tuple[str, int]]:
    return [(name, index) for name, block in BLOCKS.items() for index in range(len(block["txs"]))]


def tx_bytes(name: str, index: int) -> bytes:
    """One transaction's own serialisation (with witness), as python-bitcoinlib cuts it."""
    return CBlock.deserialize(raw_of(name)).vtx[index].serialize()  # type: ignore[no-any-return]


class TestBlocksAsTheNodeDecodedThem:
    @pytest.mark.parametrize("name", sorted(BLOCKS))
    def test_header_fields_txids_and_spends_match_the_node_when_parsed(self, name: str) -> None:
        expected = BLOCKS[name]

        block = parse_block(raw_of(name), {}, "BTC", height=expected["height"])

        assert block.hash == expected["hash"] == block_hash(raw_of(name))
        assert (block.height, block.prev_hash, block.time) == (
            expected["height"], expected["prev_hash"], expected["time"])
        assert block.txids == {tx["txid"] for tx in expected["txs"]}
        assert dict(block.spent) == node_spent(expected)
        assert block.transactions == ()

    @pytest.mark.parametrize("name", ["funding", "spending"])
    def test_height_comes_from_the_coinbase_when_not_given(self, name: str) -> None:
        assert parse_block(raw_of(name), {}, "BTC").height == BLOCKS[name]["height"]

    def test_fixtures_cover_every_script_type_and_both_serialisations(self) -> None:
        txs = [tx for block in BLOCKS.values() for tx in block["txs"]]
        prefixes = {script[:4] for tx in txs for _, script in tx["outputs"]}
        assert {"76a9", "a914", "0014", "5120", "6a24"} <= prefixes
        assert {tx["witness"] for tx in txs} == {True, False}
        sequences = {i["sequence"] for tx in txs for i in tx["inputs"]}
        assert {0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD} <= sequences


class TestTransactionsAgainstBitcoinlibAndTheNode:
    @pytest.mark.parametrize(("name", "index"), every_tx())
    def test_txid_spends_outputs_and_replaceability_agree(self, name: str, index: int) -> None:
        raw = tx_bytes(name, index)
        reference = CBlock.deserialize(raw_of(name)).vtx[index]
        decoded = BLOCKS[name]["txs"][index]

        tx = parse_tx(raw)

        assert tx.txid == b2lx(reference.GetTxid()) == decoded["txid"]
        assert list(tx.outputs) == [(o.nValue, bytes(o.scriptPubKey)) for o in reference.vout]
        assert [[v, s.hex()] for v, s in tx.outputs] == decoded["outputs"]
        if reference.is_coinbase():  # parse_tx is for mempool transactions: no coinbase
            assert tx.spends == ("0" * 64 + ":4294967295",)
        else:
            assert list(tx.spends) == [f"{b2lx(i.prevout.hash)}:{i.prevout.n}"
                                       for i in reference.vin]
        assert tx.replaceable == any(i.nSequence < REPLACEABLE_BELOW for i in reference.vin)

    def test_mainnet_genesis_block_hashes_as_everyone_knows_it(self) -> None:
        raw = CoreMainParams.GENESIS_BLOCK.serialize()

        block = parse_block(raw, {}, "BTC", height=0)

        assert block.hash == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        assert block.txids == {
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"}
        assert (block.prev_hash, block.time, dict(block.spent)) == ("00" * 32, 1231006505, {})


class TestMatching:
    @pytest.mark.parametrize("name", ["funding", "spending"])
    def test_every_output_to_a_watched_script_is_a_transfer_when_all_are_watched(
        self, name: str
    ) -> None:
        expected = BLOCKS[name]
        watch = {bytes.fromhex(script): f"addr-{script}" for tx in expected["txs"]
                 for _, script in tx["outputs"]}

        block = parse_block(raw_of(name), watch, "BTC")

        transfers = {t.key: (t.txid, t.address, t.asset, t.units)
                     for tx in block.transactions for t in tx.transfers}
        assert transfers == {
            f"{tx['txid']}:{vout}": (tx["txid"], f"addr-{script}", "BTC", value)
            for tx in expected["txs"] for vout, (value, script) in enumerate(tx["outputs"])
            if value > 0  # the coinbase's witness commitment moves nothing
        }
        for tx in block.transactions:
            assert list(tx.spends) == [key for key, txid in node_spent(expected).items()
                                       if txid == tx.txid]

    def test_addresses_come_back_as_issued_when_matched_through_the_watch_set(self) -> None:
        outputs = [(tx["txid"], vout, bytes.fromhex(script)) for tx in BLOCKS["spending"]["txs"]
                   for vout, (_, script) in enumerate(tx["outputs"])]
        addresses = {script: address_from_script(script, Network.REGTEST)
                     for _, _, script in outputs}
        watch = WatchedScripts(Network.REGTEST)
        watch.add(a for a in addresses.values() if a is not None)

        block = parse_block(raw_of("spending"), watch, "BTC")

        found = {t.key: t.address for tx in block.transactions for t in tx.transfers}
        assert found == {f"{txid}:{vout}": addresses[script] for txid, vout, script in outputs
                         if addresses[script] is not None}
        assert len(found) == 6  # coinbase P2WPKH, the four single spends, the joint spend

    def test_a_transaction_paying_no_watched_script_is_left_out(self) -> None:
        block = parse_block(raw_of("spending"), {b"\x00\x14" + bytes(20): "x"}, "BTC")
        assert block.transactions == ()
        assert len(block.txids) == len(BLOCKS["spending"]["txs"])


class TestMalformedBytes:
    @pytest.mark.parametrize("name", ["genesis", "spending"])
    def test_every_truncation_is_unavailable_error_when_parsed(self, name: str) -> None:
        raw = raw_of(name)
        for end in range(len(raw)):
            with pytest.raises(UnavailableError, match="malformed"):
                parse_block(raw[:end], {}, "BTC", height=1)

    def test_trailing_bytes_are_refused(self) -> None:
        with pytest.raises(UnavailableError, match="beyond its last transaction"):
            parse_block(raw_of("funding") + b"\x00", {}, "BTC")
        with pytest.raises(UnavailableError, match="beyond its end"):
            parse_tx(tx_bytes("spending", 1) + b"\x00")

    @pytest.mark.parametrize("index", range(len(BLOCKS["spending"]["txs"])))
    def test_every_truncated_transaction_is_unavailable_error(self, index: int) -> None:
        raw = tx_bytes("spending", index)
        for end in range(len(raw)):
            with pytest.raises(UnavailableError, match="malformed"):
                parse_tx(raw[:end])

    def test_unknown_segwit_flag_and_absurd_counts_are_refused(self) -> None:
        segwit = bytearray(tx_bytes("spending", 1))
        segwit[5] = 2
        with pytest.raises(UnavailableError, match="segwit flag"):
            parse_tx(bytes(segwit))
        huge_inputs = bytes.fromhex("02000000") + b"\xff" + b"\xff" * 8 + bytes(60)
        with pytest.raises(UnavailableError, match="inputs"):
            parse_tx(huge_inputs)
        raw = raw_of("funding")
        with pytest.raises(UnavailableError, match="transactions"):
            parse_block(raw[:80] + b"\xfe\xff\xff\xff\x7f" + raw[81:], {}, "BTC")

    def test_coinbase_without_a_height_is_refused_when_height_is_read_from_it(self) -> None:
        raw = bytearray(raw_of("funding"))
        script_at = 80 + 1 + 4 + 2 + 1 + 36  # header, tx count, version, marker, 1 input
        raw[script_at + 1] = 0x4C  # OP_PUSHDATA1: not how BIP34 encodes a height
        with pytest.raises(UnavailableError, match="BIP34"):
            parse_block(bytes(raw), {}, "BTC")

    def test_block_shorter_than_a_header_is_refused(self) -> None:
        with pytest.raises(UnavailableError, match="header"):
            block_hash(bytes(79))

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_corrupted_bytes_parse_or_raise_unavailable_error_only(
        self, data: st.DataObject
    ) -> None:
        raw = bytearray(raw_of("spending"))
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(80, len(raw) - 1))] = data.draw(st.integers(0, 255))
        try:
            block = parse_block(bytes(raw), {}, "BTC", height=1)
        except UnavailableError:
            return
        assert len(block.txids) >= 1
