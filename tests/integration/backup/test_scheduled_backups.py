"""The node's scheduled backups: when they run, retention, failures, the lock, the worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dpgnode.adapters.backup.directory import exclusive, list_backups
from dpgnode.adapters.backup.keys import PassphraseKey
from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.errors import ConfigError
from dpgnode.maintenance.schedule import ScheduledBackups, scheduled_backups
from dpgnode.node import Node, build_node
from dpgnode.settings import Settings, load_settings
from tests.integration.backup.conftest import PASSPHRASE, deposit

pytestmark = pytest.mark.integration


def _settings(tmp_path: Path, **backup: Any) -> Settings:
    return load_settings(tmp_path / "data", overrides={"backup": backup})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def node(tmp_path: Path, clock: FixedClock) -> Iterator[Node]:
    built = build_node(_settings(tmp_path), upgrade=True, clock=clock)
    deposit(built, "k1", "alice", 10)
    yield built
    built.close()


def _status(directory: Path) -> dict[str, Any]:
    status: dict[str, Any] = json.loads((directory / ".status.json").read_text())
    return status


class TestScheduledBackups:
    def test_backs_up_every_interval_and_keeps_what_retention_says(
        self, tmp_path: Path, clock: FixedClock, node: Node, key: PassphraseKey
    ) -> None:
        settings = _settings(tmp_path, interval_minutes=15, keep_hourly=3, keep_daily=0,
                             keep_weekly=0)
        scheduler = ScheduledBackups(settings, clock, lambda: key)
        assert scheduler.run_once() is not None  # nothing yet: due at once
        assert scheduler.run_once() is None
        clock.advance(timedelta(minutes=14, seconds=59))
        assert scheduler.run_once() is None
        clock.advance(timedelta(seconds=1))
        assert scheduler.run_once() is not None
        for _ in range(12):  # three more hours
            clock.advance(timedelta(minutes=15))
            assert scheduler.run_once() is not None
        times = [b.created_at for b in list_backups(scheduler.directory)]
        # 14 made; kept: the newest of each of the last 3 hours (the newest among them).
        assert len(times) == 3
        assert times[-1] == clock.now()
        assert {t.minute for t in times[:-1]} == {45}
        status = _status(scheduler.directory)
        assert status["ok"] is True
        assert status["pruned"] == 1

    def test_failure_is_recorded_and_retried_only_after_an_interval(
        self, tmp_path: Path, clock: FixedClock, node: Node, key: PassphraseKey
    ) -> None:
        attempts: list[int] = []

        def failing() -> PassphraseKey:
            attempts.append(1)
            if len(attempts) == 1:
                raise ConfigError("no backup passphrase: set backup.passphrase_file")
            return key

        settings = _settings(tmp_path, interval_minutes=15)
        scheduler = ScheduledBackups(settings, clock, failing)
        assert scheduler.run_once() is None
        status = _status(scheduler.directory)
        assert status["ok"] is False
        assert "no backup passphrase" in status["error"]
        clock.advance(timedelta(minutes=5))
        assert scheduler.run_once() is None
        assert len(attempts) == 1  # no tight retry loop
        clock.advance(timedelta(minutes=10))
        assert scheduler.run_once() is not None
        assert _status(scheduler.directory)["ok"] is True

    def test_does_nothing_while_another_process_holds_the_lock(
        self, tmp_path: Path, clock: FixedClock, node: Node, key: PassphraseKey
    ) -> None:
        scheduler = ScheduledBackups(_settings(tmp_path, interval_minutes=15), clock, lambda: key)
        with exclusive(scheduler.directory) as mine:
            assert mine
            assert scheduler.run_once() is None
        assert list_backups(scheduler.directory) == []
        assert scheduler.run_once() is not None

    def test_removes_what_a_killed_run_left_when_it_runs(
        self, tmp_path: Path, clock: FixedClock, node: Node, key: PassphraseKey
    ) -> None:
        scheduler = ScheduledBackups(_settings(tmp_path, interval_minutes=15), clock, lambda: key)
        scheduler.directory.mkdir(parents=True)
        (scheduler.directory / ".work-killed").mkdir()
        (scheduler.directory / ".work-killed" / "dpg.sqlite3").write_bytes(b"plain copy")
        (scheduler.directory / "dpg-20250101T000000.000Z.dpgbak.partial").write_bytes(b"x")
        assert scheduler.run_once() is not None
        names = {p.name for p in scheduler.directory.iterdir()}
        assert not any(n.startswith(".work-") or n.endswith(".partial") for n in names)


class TestNodeWorker:
    def test_node_writes_a_backup_on_start_when_a_key_is_configured(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DPG_BACKUP_PASSPHRASE", PASSPHRASE)
        settings = _settings(tmp_path, interval_minutes=15)
        node = build_node(settings, upgrade=True)
        try:
            node.start_workers()
            directory = settings.data_dir / "backups"
            deadline = time.monotonic() + 120
            while not list_backups(directory) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            node.close()
        assert len(list_backups(directory)) == 1

    def test_no_scheduler_without_a_key_or_with_interval_zero(
        self, tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("DPG_BACKUP_PASSPHRASE", raising=False)
        assert scheduled_backups(_settings(tmp_path, interval_minutes=15), clock) is None
        monkeypatch.setenv("DPG_BACKUP_PASSPHRASE", PASSPHRASE)
        assert scheduled_backups(_settings(tmp_path, interval_minutes=0), clock) is None
        assert scheduled_backups(_settings(tmp_path, interval_minutes=15), clock) is not None
