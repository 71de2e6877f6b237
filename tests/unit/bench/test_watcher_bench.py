"""bench/watcher.py's crediting figure at a tiny size: every payment the chain carries is
credited once, the ledger verifies, and the figures come out. No speed is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from bench.watcher import credit


@pytest.mark.integration
def test_tiny_credit_run_credits_every_payment() -> None:
    figures = credit(blocks=3, payments_per_block=2, addresses=5)
    assert figures["blocks"] == 3
    assert figures["payments_per_s"] > 0
