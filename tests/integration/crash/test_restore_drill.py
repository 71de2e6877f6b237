"""R7 restore drill: back up while the crash harness's workload runs, SIGKILL it, restore.

The workload child (``workload.py``: deposits, transfers, holds, reversals over two assets
from 24 threads, group-committed) writes to its data directory and reports every
acknowledged key on its ack pipe. Once it has acknowledged a few hundred, the test records
that set, backs the live database up (SQLite online backup, from this process), then kills
the child with SIGKILL mid-run. The backup is restored into a new data directory and
checked with the harness's own post-crash checks: integrity, foreign keys, schema, ledger
verification, every key acknowledged before the backup started present exactly once, and
one outbox event per journal entry.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dpgnode.maintenance.backups import create_backup
from dpgnode.maintenance.restore import restore_backup
from dpgnode.settings import load_settings
from tests.integration.crash.harness import REPO, check_after_kill
from tests.support.backup import cheap_key

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("DPG_CRASH_SEED", "4000")) + 777
ACKS_BEFORE_BACKUP = 400


class Child:
    """The workload in a subprocess, its ack lines collected by a reader thread."""

    def __init__(self, data_dir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(  # fixed argv, no shell
            [sys.executable, "-m", "tests.integration.crash.workload", "--data-dir",
             str(data_dir), "--seed", str(SEED), "--ops", "5000"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._lock:
                self.lines.append(raw.decode().rstrip("\n"))

    def acked(self) -> set[str]:
        with self._lock:
            lines = list(self.lines)
        return {parts[0] for parts in (line.split() for line in lines)
                if len(parts) == 3 and parts[2] in ("created", "replayed")}

    def errors(self) -> list[str]:
        with self._lock:
            return [line for line in self.lines if line.startswith("ERROR")]

    def kill(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(60)
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def test_restore_drill_keeps_every_entry_acknowledged_before_the_backup(tmp_path: Path) -> None:
    data_dir = tmp_path / "live"
    child = Child(data_dir)
    try:
        deadline = time.monotonic() + 120
        while len(child.acked()) < ACKS_BEFORE_BACKUP and time.monotonic() < deadline:
            assert child.process.poll() is None, f"workload exited: {child.errors()}"
            time.sleep(0.01)
        before = child.acked()
        assert len(before) >= ACKS_BEFORE_BACKUP, "the workload did not get going"
        key = cheap_key("correct horse battery staple")
        settings = load_settings(data_dir, overrides={"backup": {"interval_minutes": 0}})
        started = time.monotonic()
        made = create_backup(settings, key)
        took = time.monotonic() - started
        acked_during = len(child.acked()) - len(before)
        still_running = child.process.poll() is None
    finally:
        code = child.kill()
    print(f"[drill] seed {SEED}: {len(before)} acked before the backup, {acked_during} during "
          f"({took:.2f} s), manifest seq {made.manifest.ledger_seq}, child exit {code}")
    assert not child.errors()
    assert still_running, "the workload ended before the backup did: the drill proved nothing"

    target = tmp_path / "restored"
    started = time.monotonic()
    restore_backup(made.path, key, data_dir=target)
    print(f"[drill] restored in {time.monotonic() - started:.2f} s")
    problems, snapshot = check_after_kill(target, before)
    assert problems == []
    assert snapshot.entries == made.manifest.ledger_seq
