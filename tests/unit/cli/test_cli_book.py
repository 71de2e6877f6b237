"""``dpg book replay`` through Typer's CliRunner: a fixture file and its hand-checked output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.cli.conftest import Invoke

FIXTURE = Path(__file__).parent / "data" / "book_replay.jsonl"
FLAGS = ["--pair", "BTC-USD", "--tick", "0.01", "--lot", "0.1"]

# Worked by hand from the fixture, line by line (tick 0.01, lot 0.1, FIFO):
EXPECTED = [
    # 1-3: two bids at 100.5 (o1 3, o2 1), a post-only ask at 101 that does not cross
    '{"event":"accepted","id":"o1"}',
    '{"event":"accepted","id":"o2"}',
    '{"event":"accepted","id":"o3"}',
    # 4: market sell 3.5 takes o1 whole, then 0.5 of o2 (time priority), at 100.5
    '{"event":"accepted","id":"o4"}',
    '{"event":"trade","maker":"o1","taker":"o4","price":"100.5","qty":"3"}',
    '{"event":"trade","maker":"o2","taker":"o4","price":"100.5","qty":"0.5"}',
    # 5: sell stop-limit, trigger 100: last trade is 100.5, so it waits
    '{"event":"accepted","id":"o5"}',
    # 6: bid 100 x2
    '{"event":"accepted","id":"o6"}',
    # 7: account a2 would meet its own o2 first: self-trade prevention, no trade
    '{"event":"accepted","id":"o7"}',
    '{"event":"cancelled","id":"o7","remaining":"1","reason":"self_trade"}',
    # 8: IOC sell 1 fills o2's 0.5 at 100.5 and 0.5 of o6 at 100; last 100 fires o5,
    #    which sells 1 at 99.5 or better: o6's 1 at 100
    '{"event":"accepted","id":"o8"}',
    '{"event":"trade","maker":"o2","taker":"o8","price":"100.5","qty":"0.5"}',
    '{"event":"trade","maker":"o6","taker":"o8","price":"100","qty":"0.5"}',
    '{"event":"triggered","id":"o5"}',
    '{"event":"trade","maker":"o6","taker":"o5","price":"100","qty":"1"}',
    # 9-13: off tick, off lot, not JSON, cancel of a filled order, re-used id
    '{"event":"rejected","id":"o9","reason":"off_tick","line":9,"field":"price"}',
    '{"event":"rejected","id":"o10","reason":"off_lot","line":10,"field":"qty"}',
    '{"event":"rejected","id":null,"reason":"malformed","line":11,"field":"json"}',
    '{"event":"rejected","id":"o1","reason":"unknown_order","line":12,"field":"id"}',
    '{"event":"rejected","id":"o1","reason":"duplicate_id","line":13,"field":"id"}',
    # 14: FOK 1 at 101 fills from o3; 15: FOK 5 cannot (1 left), nothing trades
    '{"event":"accepted","id":"o11"}',
    '{"event":"trade","maker":"o3","taker":"o11","price":"101","qty":"1"}',
    '{"event":"accepted","id":"o12"}',
    '{"event":"cancelled","id":"o12","remaining":"5","reason":"fok"}',
    # 16: o6 has 0.5 left, reduced to 0.2; 17: bid 99 x1.5; 18: cancel o3's last 1
    '{"event":"reduced","id":"o6","remaining":"0.2"}',
    '{"event":"accepted","id":"o13"}',
    '{"event":"cancelled","id":"o3","remaining":"1","reason":"cancelled"}',
    # 19: ask 102.5 x4
    '{"event":"accepted","id":"o14"}',
    '{"event":"book","bids":[["100","0.2"],["99","1.5"]],"asks":[["102.5","4"]]}',
]


def test_replay_prints_the_hand_checked_events_when_given_the_fixture(dpg: Invoke) -> None:
    result = dpg("book", "replay", *FLAGS, str(FIXTURE))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == EXPECTED


def test_replay_reads_standard_input_when_file_is_dash(dpg: Invoke) -> None:
    result = dpg("book", "replay", *FLAGS, "-", input=FIXTURE.read_text())
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == EXPECTED


def test_replay_shares_pro_rata_when_mode_says_so(dpg: Invoke, tmp_path: Path) -> None:
    commands = tmp_path / "pro_rata.jsonl"
    commands.write_text(
        '{"op":"limit","id":"a","account":"x","side":"sell","price":"10","qty":"0.1"}\n'
        '{"op":"limit","id":"b","account":"y","side":"sell","price":"10","qty":"0.3"}\n'
        '{"op":"market","id":"m","account":"z","side":"buy","qty":"0.2"}\n'
    )
    result = dpg("book", "replay", "--pair", "ETH-EUR", "--tick", "0.5", "--lot", "0.1",
                 "--mode", "pro-rata", str(commands))
    assert result.exit_code == 0, result.output
    # 2 lots of 4: floors 0.5 -> 0 and 1.5 -> 1; the leftover lot goes to the older, "a"
    assert result.stdout.splitlines()[3:] == [
        '{"event":"trade","maker":"a","taker":"m","price":"10","qty":"0.1"}',
        '{"event":"trade","maker":"b","taker":"m","price":"10","qty":"0.1"}',
        '{"event":"book","bids":[],"asks":[["10","0.2"]]}',
    ]


@pytest.mark.parametrize(
    "flags",
    [
        ["--pair", "BTC-USD", "--tick", "abc", "--lot", "0.1"],
        ["--pair", "BTC-USD", "--tick", "0.01", "--lot", "0"],
        ["--pair", "btc/usd", "--tick", "0.01", "--lot", "0.1"],
        ["--pair", "BTC-USD", "--tick", "0.01", "--lot", "0.1", "--mode", "auction"],
        ["--pair", "BTC-USD", "--lot", "0.1"],
    ],
)
def test_replay_exits_2_when_flags_are_unusable(dpg: Invoke, flags: list[str]) -> None:
    result = dpg("book", "replay", *flags, str(FIXTURE))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""


def test_replay_exits_1_when_file_cannot_be_read(dpg: Invoke, tmp_path: Path) -> None:
    result = dpg("book", "replay", *FLAGS, str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 1
    assert "cannot read" in result.stderr
    assert result.stdout == ""
