"""bench/backup.py at a tiny size: it backs up, verifies and restores, and reports figures.

Only that the run completes with every check passing and every figure present; no time is
asserted (the 1 GB figures come from the full run, reported in the closing notes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_tiny_run_restores_every_entry_and_reports_every_figure() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/backup.py", "--size-mb", "1", "--no-cache", "--round", "300",
         "--accounts", "50"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["checks_ok"] is True
    assert out["entries"] >= 300
    for figure in ("create_s", "verify_s", "restore_s", "database_mib", "backup_mib"):
        assert out[figure] > 0
    assert set(out["steps"]["restore"]) == {"decrypting", "checking the copy"}
    assert "restore" in proc.stdout
