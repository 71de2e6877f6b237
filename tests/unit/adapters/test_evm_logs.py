"""``LogWindow``: ranges fetched ahead, stale or missing logs fetched again by block hash.

The fetchers are plain functions over a list of logs (no I/O): the window's bookkeeping is
what is under test; the real node paths run in ``tests/integration/chains/test_evm_client.py``.
"""

from __future__ import annotations

import pytest

from dpgnode.adapters.chains.evm_endpoints import Untrusted
from dpgnode.adapters.chains.evm_logs import (
    TRANSFER_TOPIC,
    LogWindow,
    TokenLog,
    bloom_bits,
    parse_logs,
)
from dpgnode.adapters.chains.jsonrpc import RpcError
from dpgnode.errors import UnavailableError

TOKEN = "0x" + "aa" * 20


def block_hash(height: int, branch: str = "a") -> str:
    return "0x" + (branch * 2) + f"{height:062x}"


def log(height: int, branch: str = "a", index: int = 0) -> TokenLog:
    return TokenLog(height, block_hash(height, branch), "0x" + f"{height:064x}", index, TOKEN,
                    b"\x01" * 20, 5)


def bloom_with(*items: bytes) -> int:
    bloom = 0
    for item in items:
        for bit in bloom_bits(item):
            bloom |= 1 << bit
    return bloom


MAYBE = bloom_with(bytes.fromhex(TOKEN[2:]), bytes.fromhex(TRANSFER_TOPIC[2:]))


class Chain:
    def __init__(self, logs: list[TokenLog], *, refuse_above: int | None = None) -> None:
        self.logs = logs
        self.refuse_above = refuse_above
        self.ranges: list[tuple[int, int]] = []
        self.hashes: list[str] = []

    def fetch_range(self, lowest: int, highest: int) -> list[TokenLog]:
        self.ranges.append((lowest, highest))
        if self.refuse_above is not None and highest - lowest + 1 > self.refuse_above:
            raise RpcError("node", "eth_getLogs", -32005, "query returned more than 10000")
        return [x for x in self.logs if lowest <= x.block_number <= highest]

    def fetch_block(self, wanted: str) -> list[TokenLog]:
        self.hashes.append(wanted)
        return [x for x in self.logs if x.block_hash == wanted]

    def window(self, log_range: int = 10) -> LogWindow:
        return LogWindow(contracts=[TOKEN], log_range=log_range, fetch_range=self.fetch_range,
                         fetch_block=self.fetch_block)


class TestWindow:
    def test_one_request_serves_the_range_when_scanning(self) -> None:
        chain = Chain([log(3), log(7, index=2)])
        window = chain.window(log_range=10)
        found = [window.logs(h, block_hash(h), MAYBE if h in (3, 7) else 0, 25)
                 for h in range(1, 21)]
        assert chain.ranges == [(1, 10), (11, 20)]
        assert [len(x) for x in found].count(1) == 2
        assert chain.hashes == []

    def test_range_stops_at_the_head(self) -> None:
        chain = Chain([])
        chain.window(log_range=100).logs(5, block_hash(5), 0, 8)
        assert chain.ranges == [(5, 8)]

    def test_stale_logs_fetched_again_by_hash_when_block_changed(self) -> None:
        chain = Chain([log(4, "a")])
        window = chain.window()
        window.logs(1, block_hash(1), 0, 10)
        chain.logs = [log(4, "b")]  # reorganised after the range was fetched
        found = window.logs(4, block_hash(4, "b"), MAYBE, 10)
        assert found == [log(4, "b")]
        assert chain.hashes == [block_hash(4, "b")]

    def test_empty_answer_checked_against_the_bloom(self) -> None:
        chain = Chain([])
        window = chain.window()
        assert window.logs(1, block_hash(1), 0, 10) == []
        assert chain.hashes == []  # bloom says certainly not: trusted
        chain.logs = [log(2)]  # e.g. a provider that had not indexed block 2 yet
        assert window.logs(2, block_hash(2), MAYBE, 10) == [log(2)]
        assert chain.hashes == [block_hash(2)]

    def test_unavailable_when_refetched_logs_belong_to_another_block(self) -> None:
        chain = Chain([log(4, "a")])
        window = LogWindow(contracts=[TOKEN], log_range=10, fetch_range=chain.fetch_range,
                           fetch_block=lambda wanted: [log(4, "a")])  # a node mixing blocks
        with pytest.raises(UnavailableError, match="reorganised between two requests"):
            window.logs(4, block_hash(4, "b"), MAYBE, 10)

    def test_range_halved_when_refused_and_grown_back_after_a_streak(self) -> None:
        chain = Chain([], refuse_above=3)
        window = chain.window(log_range=8)
        window.logs(1, block_hash(1), 0, 1000)
        assert window.span == 2
        assert chain.ranges[:3] == [(1, 8), (1, 4), (1, 2)]
        chain.refuse_above = None
        height = 3
        for _ in range(10):
            window.logs(height, block_hash(height), 0, 1000)
            height += window.span
        assert window.span == 4

    def test_refusal_raised_when_one_block_is_refused(self) -> None:
        chain = Chain([], refuse_above=0)
        with pytest.raises(RpcError):
            chain.window(log_range=4).logs(1, block_hash(1), 0, 1000)

    def test_no_request_without_token_contracts(self) -> None:
        chain = Chain([log(1)])
        window = LogWindow(contracts=[], log_range=5, fetch_range=chain.fetch_range,
                           fetch_block=chain.fetch_block)
        assert window.logs(1, block_hash(1), MAYBE, 5) == []
        assert chain.ranges == []


class TestParse:
    def raw(self, **changes: object) -> dict[str, object]:
        raw: dict[str, object] = {
            "address": TOKEN, "blockNumber": "0x5", "blockHash": block_hash(5),
            "transactionHash": "0x" + "cd" * 32, "logIndex": "0x2", "removed": False,
            "topics": [TRANSFER_TOPIC, "0x" + "00" * 32, "0x" + "00" * 12 + "11" * 20],
            "data": "0x" + f"{10**20:064x}",
        }
        raw.update(changes)
        return raw

    def test_transfer_decoded(self) -> None:
        [parsed] = parse_logs([self.raw()], lowest=5, highest=5)
        assert (parsed.recipient, parsed.units, parsed.log_index) == (b"\x11" * 20, 10**20, 2)

    def test_non_erc20_shapes_and_removed_logs_skipped(self) -> None:
        erc721 = self.raw(topics=[TRANSFER_TOPIC, "0x" + "00" * 32, "0x" + "00" * 32,
                                  "0x" + "00" * 31 + "01"], data="0x")
        assert parse_logs([erc721, self.raw(removed=True)], lowest=0, highest=9) == []

    def test_untrusted_when_malformed_or_outside_the_range(self) -> None:
        with pytest.raises(Untrusted, match="block 5"):
            parse_logs([self.raw()], lowest=6, highest=9)
        with pytest.raises(Untrusted, match="malformed"):
            parse_logs([self.raw(blockHash="0x12")], lowest=0, highest=9)
        with pytest.raises(Untrusted, match="list"):
            parse_logs({"logs": []}, lowest=0, highest=9)
