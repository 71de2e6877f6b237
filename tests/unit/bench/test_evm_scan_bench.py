"""bench/evm_scan.py at a tiny size: it scans a busy token on anvil, finds every payment made.

The benchmark checks each run's payments (txids and amounts) against what its setup paid;
here a tiny run must report them correct and print every figure. No speed is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.anvil import require_anvil

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.integration
def test_tiny_run_finds_every_payment_and_prints_every_figure() -> None:
    require_anvil()
    proc = subprocess.run(
        [sys.executable, "bench/evm_scan.py", "--blocks", "6", "--per-block", "20",
         "--paying", "0.25", "--watch", "500", "--log-range", "1", "--log-range", "4"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["blocks"], out["transfers_per_block"]) == (6, 20)
    runs = {run["log_range"]: run for run in out["runs"]}
    assert set(runs) == {1, 4}
    assert runs[1]["get_logs_requests"] == 6  # one per block
    assert runs[4]["get_logs_requests"] == 2  # 6 blocks in ranges of 4
    for run in runs.values():
        assert run["correct"] is True
        assert run["payments"] > 0
        assert run["logs"] == 6 * 20
        assert run["blocks_per_s"] > 0
