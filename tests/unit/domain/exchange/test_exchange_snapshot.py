"""Engine snapshots: exact plain-data content, and refusal of damaged snapshots."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dpgnode.domain.exchange import BUY, SELL, MatchingEngine, MatchingMode, StopKind
from dpgnode.errors import ValidationError


@pytest.fixture
def engine() -> MatchingEngine:
    engine = MatchingEngine(MatchingMode.PRO_RATA)
    engine.limit("b1", "x", BUY, 99, 4)
    engine.limit("b2", None, BUY, 99, 2)
    engine.limit("a1", "y", SELL, 101, 3)
    engine.limit("gone", "y", SELL, 102, 3)
    engine.cancel("gone")
    engine.limit("t", "z", BUY, 101, 1)  # trades a1 for 1: last price 101
    engine.stop("s1", "q", SELL, 95, 2, price=94)
    engine.stop("s2", 7, BUY, 100, 1, kind=StopKind.TAKE_PROFIT)  # fires at last <= 100
    engine.halt()
    return engine


def test_snapshot_holds_exactly_the_live_state_when_taken(engine: MatchingEngine) -> None:
    assert engine.snapshot() == {
        "format": 1,
        "mode": "pro-rata",
        "halted": True,
        "last_price": 101,
        "stop_seq": 2,
        "bids": [[99, [["b1", "x", 4], ["b2", None, 2]]]],
        "asks": [[101, [["a1", "y", 2]]]],
        "stops": [[1, "s1", "q", SELL, "stop_loss", 95, 2, 94],
                  [2, "s2", 7, BUY, "take_profit", 100, 1, None]],
    }


def test_restored_engine_has_the_same_state_when_restored(engine: MatchingEngine) -> None:
    restored = MatchingEngine.restore(engine.snapshot())
    assert restored.snapshot() == engine.snapshot()
    assert restored.halted
    assert restored.mode is MatchingMode.PRO_RATA
    assert restored.best_bid == 99
    assert restored.best_ask == 101
    assert restored.last_price == 101
    assert restored.stop_count == 2


def _damaged(engine: MatchingEngine, path: tuple[Any, ...], value: object) -> dict[str, Any]:
    data = copy.deepcopy(engine.snapshot())
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("format",), 2),
        (("mode",), "auction"),
        (("halted",), "yes"),
        (("last_price",), 0),
        (("stop_seq",), -1),
        (("bids",), {}),
        (("bids", 0, 0), "99"),
        (("bids", 0, 0), True),
        (("bids", 0, 0), 101),  # crossed with the ask at 101
        (("bids", 0, 1), []),  # empty level
        (("bids", 0, 1, 0), ["b1", "x"]),
        (("bids", 0, 1, 0, 2), 0),
        (("bids", 0, 1, 1, 0), "b1"),  # id twice
        (("bids", 0, 1, 1, 0), 1.5),
        (("bids", 0, 1, 1, 1), ["acct"]),
        (("asks", 0, 1, 0, 0), "s1"),  # id of a stop
        (("stops", 0, 0), 3),  # beyond stop_seq
        (("stops", 1, 0), 1),  # not increasing
        (("stops", 0, 3), 2),
        (("stops", 0, 4), "trailing"),
        (("stops", 0, 5), -3),
        (("stops", 0, 7), "94"),
        (("stops", 0), [1, "s1"]),
    ],
)
def test_restore_refuses_when_snapshot_is_damaged(
    engine: MatchingEngine, path: tuple[Any, ...], value: object
) -> None:
    with pytest.raises(ValidationError):
        MatchingEngine.restore(_damaged(engine, path, value))


def test_restore_refuses_unsorted_levels_when_out_of_order() -> None:
    engine = MatchingEngine()
    engine.limit("b1", None, BUY, 98, 1)
    engine.limit("b2", None, BUY, 99, 1)
    data = engine.snapshot()
    data["bids"].reverse()
    with pytest.raises(ValidationError, match="best-first"):
        MatchingEngine.restore(data)


def test_restore_refuses_when_data_is_not_a_mapping() -> None:
    with pytest.raises(ValidationError):
        MatchingEngine.restore([])  # type: ignore[arg-type]
