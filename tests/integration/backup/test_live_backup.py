"""A backup of a live SQLite node while threads post ledger entries (R7, push form).

Every entry acknowledged before the backup started must be in the restored copy, the
restored ledger must verify, and it must end exactly at the head its manifest recorded.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dpgnode.adapters.backup.keys import PassphraseKey
from dpgnode.adapters.backup.sqlite import integrity_problems
from dpgnode.maintenance.backups import create_backup
from dpgnode.maintenance.restore import restore_backup, verify_backup
from dpgnode.node import build_node
from dpgnode.settings import load_settings
from tests.integration.backup.conftest import Writers, deposit

pytestmark = pytest.mark.integration


def _journal_keys(data_dir: Path) -> tuple[set[str], int, bool]:
    node = build_node(load_settings(data_dir), upgrade=False)
    try:
        keys = {entry.idempotency_key for entry in node.queries.entries()}
        report = node.verify_ledger()
        return keys, report.entries, report.ok
    finally:
        node.close()


def test_backup_holds_every_entry_acknowledged_before_it_started_when_node_is_writing(
    tmp_path: Path, key: PassphraseKey
) -> None:
    settings = load_settings(tmp_path / "data", overrides={"backup": {"interval_minutes": 0}})
    node = build_node(settings, upgrade=True)
    for index in range(2000):  # some bulk, so the copy takes several steps
        deposit(node, f"seed-{index}", f"s{index % 50}", 10**18 + index, "ETH")
    writers = Writers(node)
    writers.start()
    try:
        while writers.count() < 300:
            time.sleep(0.01)
        before = writers.snapshot()
        made = create_backup(settings, key)
        during = writers.count() - len(before)
        # The node kept committing while and after the copy ran: nothing was blocked.
        deadline = time.monotonic() + 30
        settled = writers.count()
        while writers.count() < settled + 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writers.count() >= settled + 50
    finally:
        writers.stop()
        node.close()
    print(f"[backup] {len(before)} acked before, {during} during, manifest seq "
          f"{made.manifest.ledger_seq}, {made.size} bytes")

    assert made.check is not None
    assert made.check.ok, made.check.problems
    assert made.manifest.ledger_seq >= 2000 + len(before)
    checked = verify_backup(made.path, key)
    assert checked.check.ok, checked.check.problems

    target = tmp_path / "restored"
    restored = restore_backup(made.path, key, data_dir=target)
    assert restored.check.ok
    assert integrity_problems(target / "dpg.sqlite3") == []
    keys, entries, ok = _journal_keys(target)
    assert ok
    assert before <= keys
    assert entries == made.manifest.ledger_seq
    # Nothing acknowledged only after the backup finished can be in it.
    assert keys <= before | set(writers.acked) | {f"seed-{i}" for i in range(2000)}


def test_restored_node_starts_and_takes_new_entries_when_restored(
    tmp_path: Path, key: PassphraseKey
) -> None:
    settings = load_settings(tmp_path / "data", overrides={"backup": {"interval_minutes": 0}})
    node = build_node(settings, upgrade=True)
    deposit(node, "before", "alice", 5)
    made = create_backup(settings, key)
    node.close()
    restore_backup(made.path, key, data_dir=tmp_path / "restored")
    restored = build_node(load_settings(tmp_path / "restored"), upgrade=False)
    try:
        deposit(restored, "after", "alice", 7)
        assert restored.verify_ledger().ok
        assert [e.idempotency_key for e in restored.queries.entries()] == ["before", "after"]
    finally:
        restored.close()
