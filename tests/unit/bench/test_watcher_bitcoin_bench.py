"""bench/watcher_bitcoin.py at a tiny size: it runs, checks its own matches, reports every figure.

The benchmark asserts (before timing) that the parser found exactly the outputs paying watched
addresses and that python-bitcoinlib computes the same txids; no speed is asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_tiny_run_matches_every_paid_address_and_prints_every_figure() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/watcher_bitcoin.py", "--addresses", "2000", "--txs", "400",
         "--runs", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["addresses"], out["txs"]) == (2000, 400)
    assert out["matched_outputs"] == 3  # transactions 100, 200 and 300 pay watched addresses
    for figure in ("watch_load_s", "parse_match_ms", "bitcoinlib_parse_ms", "watch_mb"):
        assert figure in out
    assert out["parse_match_ms"] > 0
