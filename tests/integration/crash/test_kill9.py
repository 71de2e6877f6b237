"""R4/R5 kill -9 harness: SIGKILL the ledger workload at random moments, then check.

Push: 10 seeds x 5 kills = 50 kills (each seed its own data directory, so pytest-xdist
spreads them). Nightly: ``-m slow`` with ``DPG_CRASH_KILLS`` kills (default 1,000) in rounds of
5 per seed. ``DPG_CRASH_SEED`` moves the seeds; every cycle prints its seed, kill delay and
checkpoint setting, and a failing seed re-runs with ``DPG_CRASH_SEED``. See ``harness.py`` for
what is checked after each kill.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dpgnode.node import build_node
from dpgnode.settings import load_settings
from tests.integration.crash.harness import SeedReport, run_seed

pytestmark = pytest.mark.integration

PUSH_SEEDS = 10
KILLS_PER_SEED = 5
BASE_SEED = int(os.environ.get("DPG_CRASH_SEED", "4000"))


def _assert_clean(report: SeedReport, data_dir: Path) -> None:
    detail = "\n".join(report.problems[:20])
    assert not report.problems, f"crash harness failed for seed {report.seed}:\n{detail}"
    assert report.kills >= KILLS_PER_SEED - 1, (
        f"seed {report.seed}: only {report.kills} runs died by SIGKILL: {report.cycles}"
    )
    # The final state through a fresh node, then through `dpg ledger verify` itself.
    node = build_node(load_settings(data_dir), upgrade=False)
    try:
        verdict = node.verify_ledger()
    finally:
        node.close()
    assert verdict.ok, verdict.problems[:10]
    assert verdict.entries == report.entries
    cli = subprocess.run(
        [sys.executable, "-c", "from dpgnode.cli.main import main; main()",
         "--data-dir", str(data_dir), "ledger", "verify", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert cli.returncode == 0, f"dpg ledger verify exited {cli.returncode}: {cli.stderr[-2000:]}"
    assert json.loads(cli.stdout)["entries"] == report.entries


@pytest.mark.parametrize("index", range(PUSH_SEEDS), ids=lambda i: f"seed+{i}")
def test_kill9_workload_keeps_every_acknowledged_entry(index: int, tmp_path: Path) -> None:
    seed = BASE_SEED + index
    print(f"[crash] seed {seed} (re-run: DPG_CRASH_SEED={BASE_SEED} ... -k 'seed+{index}')")
    report = run_seed(tmp_path, seed, KILLS_PER_SEED)
    print(f"[crash] seed {seed}: {report.kills} kills, {report.acked} acked keys, "
          f"{report.entries} entries")
    _assert_clean(report, tmp_path)


@pytest.mark.slow
def test_kill9_nightly(tmp_path: Path) -> None:
    total = int(os.environ.get("DPG_CRASH_KILLS", "1000"))
    kills = 0
    seed = BASE_SEED * 1000
    while kills < total:
        data_dir = tmp_path / f"seed-{seed}"
        report = run_seed(data_dir, seed, KILLS_PER_SEED)
        _assert_clean(report, data_dir)
        kills += report.kills
        seed += 1
    print(f"[crash] nightly: {kills} kills, last seed {seed - 1}")
