"""Differential tests: the engine against the list-based reference model, event by event.

Both books get the same random command sequences (Hypothesis, and long seeded walks that
reach deep books and level compaction), in both matching modes, with every order type:
GTC / IOC / FOK / post-only limits, markets with and without protection, stop-loss and
take-profit (market and limit), cancel, reduce, halt / resume, self-trade prevention, and
invalid input. After every command both must have emitted the same events; at the end both
must show the same book and the same live orders.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from dpgnode.domain.exchange import MatchingEngine, MatchingMode
from tests.unit.domain.exchange.commands import Command, apply, command_lists, random_walk
from tests.unit.domain.exchange.reference_book import ReferenceBook

MODES = [MatchingMode.FIFO, MatchingMode.PRO_RATA]


def _run_both(mode: MatchingMode, commands: list[Command]) -> None:
    engine = MatchingEngine(mode)
    model = ReferenceBook(mode.value)
    for step, cmd in enumerate(commands):
        apply(engine, cmd)
        apply(model, cmd)
        assert engine.events == model.events, f"step {step}: {cmd}"
        engine.events.clear()
        model.events.clear()
    assert engine.depth() == model.depth()
    live = {o.oid for o in model.book} | {s.oid for s in model.stops}
    assert {oid for oid in live if engine.order(oid) is not None} == live
    assert engine.order_count == len(model.book)
    assert engine.stop_count == len(model.stops)
    assert engine.last_price == model.last


@pytest.mark.parametrize("mode", MODES, ids=str)
@settings(max_examples=300, deadline=None, print_blob=True)
@given(commands=command_lists)
def test_engine_matches_reference_when_commands_are_random(
    mode: MatchingMode, commands: list[Command]
) -> None:
    _run_both(mode, commands)


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_engine_matches_reference_when_walk_is_long(mode: MatchingMode, seed: int) -> None:
    print(f"seed={seed} mode={mode}")  # a failing seed becomes a pinned regression
    _run_both(mode, random_walk(seed, 3_000))
