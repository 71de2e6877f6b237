"""The engine on the W1 workload (bench/w1.py): checksums of WORKLOADS.md.

The push test replays a short W1 prefix and compares the engine with the generator's own,
independent FIFO book. The slow test replays the full million operations and checks every
published checksum: op counts, fills, trading ops and the final book (2,294 orders holding
114,558 lots). It asserts results, never time.
"""

from __future__ import annotations

import pytest

from bench import w1


def test_engine_agrees_with_the_workload_generators_book_when_replaying_a_prefix() -> None:
    prefill, ops, summary = w1.simulate(30_000)
    counts = w1.replay(prefill, ops)
    assert counts["rejected"] == 0  # every cancel named a resting order
    assert counts["fills"] == summary["fills"]
    assert (counts["final_orders"], counts["final_lots"]) == (
        summary["final_orders"], summary["final_lots"],
    )
    assert counts["final_orders"] > 1_500  # a deep book, as W1 keeps it


@pytest.mark.slow
def test_engine_reproduces_every_published_checksum_when_replaying_full_w1() -> None:
    prefill, ops, summary = w1.simulate()
    counts = w1.replay(prefill, ops)
    assert counts["rejected"] == 0
    assert summary["marketable"] == 187_158
    assert {key: counts[key] for key in w1.CHECKSUMS if key in counts} == {
        "limits": 600_174,
        "cancels": 300_102,
        "markets": 99_724,
        "fills": 395_226,
        "trading_ops": 222_012,
        "final_orders": 2_294,
        "final_lots": 114_558,
    }
