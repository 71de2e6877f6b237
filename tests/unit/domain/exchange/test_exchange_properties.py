"""Properties of the matching engine, checked with Hypothesis over random command sequences.

- the book is never crossed at rest, and its levels are sorted best first with positive size;
- quantity is conserved per order: placed = traded + cancelled + reduced away + resting
  (so, summed: placed = 2 x traded + cancelled + reduced + resting, a trade filling two);
- FIFO: an incoming order trades against the opposite orders in price-time priority, i.e.
  its trades are a prefix of that queue;
- pro-rata: shares sum to the incoming quantity, each is its floored proportional share or
  one lot more, and the extra lots go to the oldest orders;
- determinism: the same commands give the same events; snapshot / restore midway (through
  JSON) then continuing gives exactly the events and the state of never stopping.
"""

from __future__ import annotations

import json
from collections import defaultdict
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dpgnode.domain.exchange import BUY, SELL, MatchingEngine, MatchingMode, OrderId
from dpgnode.domain.exchange.prorata import pro_rata_shares
from tests.unit.domain.exchange.commands import Command, apply, command_lists

MODES = [MatchingMode.FIFO, MatchingMode.PRO_RATA]
SETTINGS = settings(max_examples=200, deadline=None, print_blob=True)


@pytest.mark.parametrize("mode", MODES, ids=str)
@SETTINGS
@given(commands=command_lists)
def test_book_is_never_crossed_when_commands_are_random(
    mode: MatchingMode, commands: list[Command]
) -> None:
    engine = MatchingEngine(mode)
    for cmd in commands:
        apply(engine, cmd)
        bids, asks = engine.depth()
        if bids and asks:
            assert bids[0][0] < asks[0][0]
        assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
        assert [p for p, _ in asks] == sorted({p for p, _ in asks})
        assert all(q > 0 for _, q in bids + asks)


# New orders get fresh ids; cancel / reduce name an earlier order by its position.
fresh_orders = st.one_of(
    st.tuples(st.just("limit"), st.sampled_from(["a", "b", "c", None]),
              st.sampled_from([BUY, SELL]), st.integers(97, 103), st.integers(1, 9),
              st.sampled_from(["GTC", "GTC", "IOC", "FOK"]), st.booleans()),
    st.tuples(st.just("market"), st.sampled_from(["a", "b", "c", None]),
              st.sampled_from([BUY, SELL]), st.integers(1, 9),
              st.none() | st.integers(97, 103)),
    st.tuples(st.just("stop"), st.sampled_from(["a", "b", "c", None]),
              st.sampled_from([BUY, SELL]), st.integers(97, 103), st.integers(1, 9),
              st.none() | st.integers(97, 103), st.sampled_from(["stop_loss", "take_profit"])),
)
follow_ups = st.one_of(
    st.tuples(st.just("cancel"), st.integers(0, 200)),
    st.tuples(st.just("reduce"), st.integers(0, 200), st.integers(1, 8)),
)
conservation_commands = st.lists(st.one_of(fresh_orders, fresh_orders, follow_ups), max_size=80)


def _resolve(raw: list[tuple[Any, ...]]) -> list[Command]:
    commands: list[Command] = []
    issued: list[str] = []
    for item in raw:
        if item[0] in ("cancel", "reduce"):
            if not issued:
                continue
            target = issued[item[1] % len(issued)]
            commands.append((item[0], target, *item[2:]))
        else:
            oid = f"n{len(issued)}"
            issued.append(oid)
            commands.append((item[0], oid, *item[1:]))
    return commands


@pytest.mark.parametrize("mode", MODES, ids=str)
@SETTINGS
@given(raw=conservation_commands)
def test_quantity_is_conserved_per_order_when_commands_are_random(
    mode: MatchingMode, raw: list[tuple[Any, ...]]
) -> None:
    engine = MatchingEngine(mode)
    placed: dict[OrderId, int] = {}
    traded: dict[OrderId, int] = defaultdict(int)
    cancelled: dict[OrderId, int] = defaultdict(int)
    reduced: dict[OrderId, int] = defaultdict(int)
    trade_total = 0
    for cmd in _resolve(raw):
        before = engine.order(cmd[1]) if cmd[0] == "reduce" else None
        apply(engine, cmd)
        for event in engine.events:
            if event[0] == "accepted":
                placed[event[1]] = cmd[5] if cmd[0] in ("limit", "stop") else cmd[4]
            elif event[0] == "trade":
                traded[event[1]] += event[4]
                traded[event[2]] += event[4]
                trade_total += event[4]
            elif event[0] == "cancelled":
                cancelled[event[1]] += event[2]
            elif event[0] == "reduced":
                assert before is not None
                reduced[event[1]] += before.remaining - event[2]
        engine.events.clear()
        for oid, qty in placed.items():
            view = engine.order(oid)
            resting = view.remaining if view is not None else 0
            assert qty == traded[oid] + cancelled[oid] + reduced[oid] + resting, oid
    resting_total = sum(q for _, q in engine.depth()[0] + engine.depth()[1])
    resting_total += sum(s.qty for s in engine.stops())
    assert sum(placed.values()) == (
        2 * trade_total + sum(cancelled.values()) + sum(reduced.values()) + resting_total
    )


def _queue(engine: MatchingEngine, side: int) -> list[tuple[object, object, int, int]]:
    """Opposite orders of an incoming ``side`` order in priority: (id, account, qty, price)."""
    bids, asks = engine.depth()
    levels = asks if side == BUY else bids
    return [(oid, account, qty, price) for price, _ in levels
            for oid, account, qty in engine.level_orders(1 - side, price)]


@SETTINGS
@given(raw=st.lists(st.one_of(fresh_orders.filter(lambda c: c[0] != "stop"), follow_ups),
                    max_size=80))
def test_trades_follow_price_time_priority_when_mode_is_fifo(
    raw: list[tuple[Any, ...]]
) -> None:
    engine = MatchingEngine(MatchingMode.FIFO)
    for cmd in _resolve(raw):
        queue = _queue(engine, cmd[3]) if cmd[0] in ("limit", "market") else []
        apply(engine, cmd)
        trades = [e for e in engine.events if e[0] == "trade"]
        engine.events.clear()
        for k, (_, maker, taker, price, qty) in enumerate(trades):
            oid, _, size, level_price = queue[k]
            assert (maker, taker, price) == (oid, cmd[1], level_price)
            assert qty == size if k < len(trades) - 1 else 0 < qty <= size


@settings(max_examples=500, deadline=None)
@given(sizes=st.lists(st.integers(1, 1_000), min_size=1, max_size=25), data=st.data())
def test_pro_rata_shares_are_lot_rounded_with_leftovers_oldest_first_when_split(
    sizes: list[int], data: st.DataObject
) -> None:
    total = sum(sizes)
    incoming = data.draw(st.integers(1, total + 50))
    shares = pro_rata_shares(incoming, sizes)
    if incoming >= total:
        assert shares == sizes
        return
    assert sum(shares) == incoming
    floors = [size * incoming // total for size in sizes]
    extra = [share - floor for share, floor in zip(shares, floors, strict=True)]
    assert set(extra) <= {0, 1}
    assert extra == sorted(extra, reverse=True)  # the extra lots went to the oldest orders
    assert all(0 <= share <= size for share, size in zip(shares, sizes, strict=True))


@SETTINGS
@given(
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=12),
    data=st.data(),
)
def test_engine_shares_a_level_pro_rata_when_an_order_takes_part_of_it(
    sizes: list[int], data: st.DataObject
) -> None:
    total = sum(sizes)
    incoming = data.draw(st.integers(1, total - 1)) if total > 1 else 1
    assume(incoming < total)
    engine = MatchingEngine(MatchingMode.PRO_RATA)
    for i, size in enumerate(sizes):
        engine.limit(f"m{i}", f"acct{i}", SELL, 100, size)
    engine.events.clear()
    engine.limit("taker", "t", BUY, 100, incoming)
    trades = {e[1]: e[4] for e in engine.events if e[0] == "trade"}
    exact = [Fraction(size * incoming, total) for size in sizes]
    expected = [int(x) for x in exact]
    for i in range(incoming - sum(expected)):
        expected[i] += 1
    assert [trades.get(f"m{i}", 0) for i in range(len(sizes))] == expected
    assert engine.depth()[1] == [(100, total - incoming)]


@pytest.mark.parametrize("mode", MODES, ids=str)
@SETTINGS
@given(commands=command_lists)
def test_replaying_the_same_commands_gives_the_same_events_when_run_twice(
    mode: MatchingMode, commands: list[Command]
) -> None:
    runs = []
    for _ in range(2):
        engine = MatchingEngine(mode)
        for cmd in commands:
            apply(engine, cmd)
        runs.append((engine.events, engine.snapshot()))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("mode", MODES, ids=str)
@SETTINGS
@given(commands=command_lists, data=st.data())
def test_restoring_a_snapshot_then_continuing_equals_never_stopping_when_split_midway(
    mode: MatchingMode, commands: list[Command], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(commands)))
    uninterrupted = MatchingEngine(mode)
    for cmd in commands[:split]:
        apply(uninterrupted, cmd)
    snapshot = json.loads(json.dumps(uninterrupted.snapshot()))
    uninterrupted.events.clear()
    restored = MatchingEngine.restore(snapshot)
    assert restored.snapshot() == snapshot
    for cmd in commands[split:]:
        apply(uninterrupted, cmd)
        apply(restored, cmd)
    assert restored.events == uninterrupted.events
    assert restored.snapshot() == uninterrupted.snapshot()
