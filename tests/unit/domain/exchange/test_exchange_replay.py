"""The JSON-line replay codec: decoding, rejections naming line and field, normalised output."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from dpgnode.domain.exchange import Increment, MatchingMode
from dpgnode.domain.exchange.replay import replay
from tests.unit.domain.exchange.commands import Command, command_lists

TICK = Increment.parse("0.01")
LOT = Increment.parse("0.5")


def run(*lines: str, mode: MatchingMode = MatchingMode.FIFO) -> list[dict[str, object]]:
    return [json.loads(line) for line in replay(lines, tick=TICK, lot=LOT, mode=mode)]


def rejected(
    line: int, reason: str, field: str | None, oid: str | None = None
) -> dict[str, object]:
    event: dict[str, object] = {"event": "rejected", "id": oid, "reason": reason, "line": line}
    if field is not None:
        event["field"] = field
    return event


LIMIT = '{"op":"limit","id":"o1","account":"a1","side":"buy","price":"100.50","qty":"3"}'


class TestDecoding:
    def test_book_line_ends_every_replay_when_input_is_empty(self) -> None:
        assert run() == [{"event": "book", "bids": [], "asks": []}]

    def test_blank_lines_are_skipped_but_counted_when_numbering(self) -> None:
        out = run("", "   ", "{}")
        assert out[0] == rejected(3, "malformed", "op")

    def test_every_field_is_read_when_a_limit_is_complete(self) -> None:
        out = run(LIMIT.replace('"qty":"3"', '"qty":"3","tif":"IOC","post_only":false'))
        assert out == [
            {"event": "accepted", "id": "o1"},
            {"event": "cancelled", "id": "o1", "remaining": "3", "reason": "ioc"},
            {"event": "book", "bids": [], "asks": []},
        ]

    def test_decimals_print_normalised_when_events_are_written(self) -> None:
        out = run(LIMIT, '{"op":"market","id":"o2","side":"sell","qty":"1.5"}')
        assert out[2] == {"event": "trade", "maker": "o1", "taker": "o2", "price": "100.5",
                          "qty": "1.5"}
        assert out[-1] == {"event": "book", "bids": [["100.5", "1.5"]], "asks": []}

    @pytest.mark.parametrize(
        ("line", "field"),
        [
            ("not json", "json"),
            ("[1, 2]", "json"),
            ('"limit"', "json"),
            ('{"op":"modify","id":"o1"}', "op"),
            ('{"op":7,"id":"o1"}', "op"),
            ('{"op":"cancel"}', "id"),
            ('{"op":"cancel","id":""}', "id"),
            ('{"op":"cancel","id":12}', "id"),
            ('{"op":"cancel","id":"o1","qty":"1"}', "qty"),
            ('{"op":"limit","id":"o1","side":"buy","price":"1","qty":"1","colour":"red"}',
             "colour"),
            ('{"op":"limit","id":"o1","side":"buy","qty":"1"}', "price"),
            ('{"op":"limit","id":"o1","side":"up","price":"1","qty":"1"}', "side"),
            ('{"op":"limit","id":"o1","side":"buy","price":100.5,"qty":"1"}', "price"),
            ('{"op":"limit","id":"o1","side":"buy","price":"1","qty":3}', "qty"),
            ('{"op":"limit","id":"o1","side":"buy","price":"-1","qty":"1"}', "price"),
            ('{"op":"limit","id":"o1","side":"buy","price":"1e2","qty":"1"}', "price"),
            ('{"op":"limit","id":"o1","side":"buy","price":"1","qty":"1","tif":"GTD"}', "tif"),
            ('{"op":"limit","id":"o1","side":"buy","price":"1","qty":"1","post_only":1}',
             "post_only"),
            ('{"op":"limit","id":"o1","account":5,"side":"buy","price":"1","qty":"1"}',
             "account"),
            ('{"op":"stop","id":"o1","side":"buy","trigger":"1","qty":"1","kind":"trail"}',
             "kind"),
            ('{"op":"stop","id":"o1","side":"buy","qty":"1"}', "trigger"),
        ],
    )
    def test_line_is_rejected_as_malformed_naming_the_field_when_it_is_wrong(
        self, line: str, field: str
    ) -> None:
        out = run(LIMIT, line)
        oid = "o1" if '"id":"o1"' in line else None
        assert out[1] == rejected(2, "malformed", field, oid)
        assert out[-1]["bids"] == [["100.5", "3"]]  # the replay went on, the book is intact

    def test_invalid_utf8_is_malformed_when_bytes_are_fed(self) -> None:
        lines = [b'{"op":"cancel","id":"\xff"}']
        out = [json.loads(x) for x in replay(lines, tick=TICK, lot=LOT, mode=MatchingMode.FIFO)]
        assert out[0] == rejected(1, "malformed", "json")


class TestGridAndEngineRejections:
    def test_price_off_the_tick_is_rejected_when_too_precise(self) -> None:
        out = run(LIMIT.replace("100.50", "100.505"))
        assert out[0] == rejected(1, "off_tick", "price", "o1")

    def test_quantity_off_the_lot_is_rejected_when_not_a_multiple(self) -> None:
        out = run(LIMIT.replace('"qty":"3"', '"qty":"1.2"'))
        assert out[0] == rejected(1, "off_lot", "qty", "o1")

    def test_trigger_off_the_tick_is_rejected_when_too_precise(self) -> None:
        out = run('{"op":"stop","id":"s","side":"sell","trigger":"99.001","qty":"1"}')
        assert out[0] == rejected(1, "off_tick", "trigger", "s")

    def test_id_of_a_finished_order_is_a_duplicate_when_reused(self) -> None:
        out = run(LIMIT, '{"op":"cancel","id":"o1"}', LIMIT)
        assert out[2] == rejected(3, "duplicate_id", "id", "o1")

    def test_id_of_a_rejected_order_is_free_when_reused(self) -> None:
        out = run(LIMIT.replace('"qty":"3"', '"qty":"0"'), LIMIT)
        assert out[0] == rejected(1, "invalid_quantity", "qty", "o1")
        assert out[1] == {"event": "accepted", "id": "o1"}

    def test_engine_reasons_carry_the_line_when_engine_refuses(self) -> None:
        out = run(
            '{"op":"cancel","id":"nope"}',
            LIMIT,
            '{"op":"limit","id":"o2","side":"sell","price":"100","qty":"1","post_only":true}',
            '{"op":"reduce","id":"o1","qty":"4"}',
            '{"op":"reduce","id":"o1","qty":"1"}',
        )
        assert out[:5] == [
            rejected(1, "unknown_order", "id", "nope"),
            {"event": "accepted", "id": "o1"},
            rejected(3, "would_cross", "post_only", "o2"),
            rejected(4, "invalid_quantity", "qty", "o1"),
            {"event": "reduced", "id": "o1", "remaining": "1"},
        ]


class TestStopsInReplay:
    def test_stop_market_and_stop_limit_fire_when_last_price_reaches_trigger(self) -> None:
        out = run(
            '{"op":"limit","id":"b1","account":"x","side":"buy","price":"99","qty":"2"}',
            '{"op":"limit","id":"b2","account":"x","side":"buy","price":"98","qty":"2"}',
            '{"op":"stop","id":"sm","account":"y","side":"sell","trigger":"99","qty":"1"}',
            '{"op":"stop","id":"sl","account":"y","side":"sell","trigger":"99","qty":"1",'
            '"price":"98.5"}',
            '{"op":"stop","id":"tp","account":"w","side":"buy","trigger":"99","qty":"0.5",'
            '"kind":"take_profit"}',
            '{"op":"market","id":"m","account":"z","side":"sell","qty":"0.5"}',
        )
        assert out == [
            {"event": "accepted", "id": "b1"},
            {"event": "accepted", "id": "b2"},
            {"event": "accepted", "id": "sm"},
            {"event": "accepted", "id": "sl"},
            {"event": "accepted", "id": "tp"},
            {"event": "accepted", "id": "m"},
            {"event": "trade", "maker": "b1", "taker": "m", "price": "99", "qty": "0.5"},
            {"event": "triggered", "id": "sm"},
            {"event": "trade", "maker": "b1", "taker": "sm", "price": "99", "qty": "1"},
            {"event": "triggered", "id": "sl"},
            {"event": "trade", "maker": "b1", "taker": "sl", "price": "99", "qty": "0.5"},
            {"event": "triggered", "id": "tp"},
            {"event": "trade", "maker": "sl", "taker": "tp", "price": "98.5", "qty": "0.5"},
            {"event": "book", "bids": [["98", "2"]], "asks": []},
        ]


def _as_lines(commands: list[Command]) -> list[str]:
    """Hypothesis commands as replay lines (valid ones, plus whatever the codec refuses)."""
    lines = []
    for cmd in commands:
        if cmd[0] == "limit":
            _, oid, account, side, price, qty, tif, post_only = cmd
            lines.append(json.dumps({"op": "limit", "id": oid, "account": account,
                                     "side": ["buy", "sell", "up"][side],
                                     "price": f"{price}.00", "qty": str(qty / 2),
                                     "tif": tif, "post_only": post_only}))
        elif cmd[0] == "cancel":
            lines.append(json.dumps({"op": "cancel", "id": cmd[1]}))
        else:
            lines.append(json.dumps({"op": cmd[0], "id": cmd[1] if len(cmd) > 1 else ""}))
    return lines


@settings(max_examples=100, deadline=None)
@given(commands=command_lists)
def test_replay_output_is_identical_when_run_twice(commands: list[Command]) -> None:
    lines = _as_lines(commands)
    first = list(replay(lines, tick=TICK, lot=LOT, mode=MatchingMode.PRO_RATA))
    second = list(replay(lines, tick=TICK, lot=LOT, mode=MatchingMode.PRO_RATA))
    assert first == second
    assert json.loads(first[-1])["event"] == "book"
    assert all(json.loads(line)["event"] != "book" for line in first[:-1])
