"""R6: databases written by earlier releases upgrade to head with nothing lost."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage import migrate
from dpgnode.adapters.storage.engine import make_engine
from dpgnode.node import build_node
from dpgnode.settings import load_settings

FIXTURES = Path(__file__).parent
RELEASES = sorted(FIXTURES.glob("*.sqlite3"))


def _copy(fixture: Path, data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "dpg.sqlite3"
    shutil.copyfile(fixture, target)
    return target


def _balances(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("select code, balance from accounts").fetchall())


def _journal(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("select id, hash from journal order by seq").fetchall()


@pytest.mark.parametrize("fixture", RELEASES, ids=[f.stem for f in RELEASES])
def test_upgrade_keeps_every_balance_and_entry_when_a_release_database_is_migrated(
    fixture: Path, tmp_path: Path
) -> None:
    path = _copy(fixture, tmp_path)
    balances, journal = _balances(path), _journal(path)

    node = build_node(load_settings(tmp_path), clock=FixedClock(), upgrade=True)
    try:
        report = migrate.check(node.engine)
        assert report.ok, report.problems
        assert report.current == report.head
        assert node.verify_ledger().ok
        assert {a.ref.code: str(a.balance) for a in node.queries.accounts()} == balances
        assert [(e.id, e.hash) for e in node.queries.entries()] == journal
        assert [s.name for s in node.access.stores()] == ["Release 0001 shop"]
        assert len(node.queries.open_holds()) == 2
    finally:
        node.close()


def test_upgrade_completes_when_killed_at_random_points_and_rerun(tmp_path: Path) -> None:
    seed = int(os.environ.get("DPG_UPGRADE_SEED", "20261124"))
    rng = random.Random(seed)
    print(f"seed={seed}")
    oldest = RELEASES[0]
    for attempt in range(5):
        data_dir = tmp_path / f"kill-{attempt}"
        path = _copy(oldest, data_dir)
        url = f"sqlite+pysqlite:///{path}"
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys\nfrom dpgnode.adapters.storage import migrate, engine\n"
                "migrate.upgrade(engine.make_engine(sys.argv[1], writer=True))",
                url,
            ],
        )
        time.sleep(rng.uniform(0.05, 0.8))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait()
        writer = make_engine(url, writer=True)
        try:
            migrate.upgrade(writer)  # the re-run finishes whatever the kill interrupted
            report = migrate.check(writer)
        finally:
            writer.dispose()
        assert report.ok, (seed, attempt, report.problems)
        assert _balances(path) == _balances(oldest)
