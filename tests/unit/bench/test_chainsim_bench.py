"""bench/chainsim.py at a tiny size: it runs seeds in worker processes and reports every figure.

Whether the seeds pass is the R8 test's business (tests/integration/chains/
test_chain_simulation.py); here the exit code only has to agree with the failures counted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_tiny_run_reports_every_seed_and_figure() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/chainsim.py", "--seeds", "2", "--first-seed", "7",
         "--blocks", "4", "--steps", "8", "--processes", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["first_seed"], out["seeds"]) == (7, 2)
    assert out["passed"] + out["failed"] == 2
    assert proc.returncode == (1 if out["failed"] else 0), proc.stderr
    assert out["seeds_per_second"] > 0
    for figure in ("steps", "reorgs", "rescans", "credited", "deep_reorgs"):
        assert figure in out or out["passed"] == 0
