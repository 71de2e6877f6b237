"""bench/orderbook.py at a tiny size: every engine runs, reports, and ends in W1's book.

The pinned book is W1's (``bench/w1.py``, seed 20240601, the version that reproduces
WORKLOADS.md's 1,000,000-op checksums) after 2,000 timed ops; all five engines and the
benchmark's own reference replay agreed on it when it was pinned. No speed is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
W1_2000_OPS = {"orders": 1_861, "lots": 94_907, "fills": 857}
ENGINES = {"ours", "ours-gc", "liquibook", "lightmatchingengine", "ours-journal"}


def test_tiny_run_prints_every_figure_and_the_w1_book(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "bench/orderbook.py", "--ops", "2000", "--runs", "2",
         "--journal-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "ours-journal: acknowledgement" in proc.stdout  # the table came first
    out = json.loads(lines[-1])
    assert out["ops"] == 2_000
    assert out["expected"] == out["reference"] == W1_2000_OPS
    assert set(out["engines"]) == ENGINES
    for name, result in out["engines"].items():
        assert "error" not in result, (name, result)
        assert (result["final_orders"], result["final_lots"]) == (1_861, 94_907), name
        assert result["book_ok"] is True, name
        assert result["matches_reference"] is True, name
        assert len(result["runs_ops_per_s"]) == 2
        assert result["ops_per_s"] > 0
        assert "ratio_vs_liquibook" in result
    for name in ("ours", "ours-gc", "liquibook", "lightmatchingengine"):
        latency = out["engines"][name]["latency_us"]
        assert set(latency) == {"p50", "p99", "p999", "max"}
        assert latency["p50"] <= latency["p99"] <= latency["p999"] <= latency["max"]
    for name in ("ours", "ours-gc", "lightmatchingengine"):
        assert out["engines"][name]["fills"] == 857
    journal = out["engines"]["ours-journal"]
    assert journal["replay_ok"] is True
    assert journal["ack_groups"] >= 1
    assert set(journal["ack_ms"]) == {"p50", "p99", "p999", "max"}
    assert not list(tmp_path.iterdir())  # the journal directory was cleaned up
