"""Backup values: file names, retention selection, schedule, manifest (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpgnode.domain.backup import (
    BackupManifest,
    DatabaseKind,
    Freshness,
    KeySource,
    RetentionPolicy,
    backup_due,
    backup_file_name,
    freshness,
    parse_backup_file_name,
    retained,
    to_prune,
)
from dpgnode.errors import ValidationError

T0 = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)  # a Monday, start of ISO week 2


def every(step: timedelta, count: int, start: datetime = T0) -> list[datetime]:
    return [start + i * step for i in range(count)]


class TestFileNames:
    def test_name_round_trips_to_the_millisecond_when_parsed(self) -> None:
        moment = datetime(2025, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
        name = backup_file_name(moment)
        assert name == "dpg-20250102T030405.678Z.dpgbak"
        assert parse_backup_file_name(name) == moment.replace(microsecond=678_000)

    @pytest.mark.parametrize("name", [
        "dpg-20250102T030405.678Z.dpgbak.partial", "dpg-20251302T030405.678Z.dpgbak",
        "notes.txt", ".status.json", "dpg-20250102T030405Z.dpgbak",
    ])
    def test_other_names_are_not_backups_when_parsed(self, name: str) -> None:
        assert parse_backup_file_name(name) is None

    def test_names_sort_in_time_order_when_listed(self) -> None:
        moments = every(timedelta(minutes=15), 50)
        names = [backup_file_name(m) for m in moments]
        assert sorted(names) == names

    def test_naive_time_is_refused_when_named(self) -> None:
        with pytest.raises(ValidationError):
            backup_file_name(datetime(2025, 1, 1))


class TestRetention:
    def test_keeps_newest_of_each_hour_day_and_week_when_backups_run_every_15_minutes(
        self,
    ) -> None:
        times = every(timedelta(minutes=15), 4 * 24 * 30)  # 30 days
        keep = retained(times, RetentionPolicy(hourly=24, daily=7, weekly=4))
        newest = times[-1]
        hourly = {t for t in times if t.minute == 45 and newest - t < timedelta(hours=24)}
        daily = {t for t in times if (t.hour, t.minute) == (23, 45)
                 and newest - t < timedelta(days=7)}
        sundays = {t for t in times if t.weekday() == 6 and (t.hour, t.minute) == (23, 45)}
        weekly = set(sorted(sundays | {newest})[-4:])
        assert keep == hourly | daily | weekly | {newest}

    def test_keeps_only_the_newest_when_policy_is_all_zero(self) -> None:
        times = every(timedelta(hours=1), 10)
        assert retained(times, RetentionPolicy(0, 0, 0)) == {times[-1]}
        assert to_prune(times, RetentionPolicy(0, 0, 0)) == times[:-1]

    def test_counts_only_periods_that_have_a_backup_when_there_were_gaps(self) -> None:
        times = [T0, T0 + timedelta(days=10), T0 + timedelta(days=20)]
        assert retained(times, RetentionPolicy(0, 3, 0)) == set(times)

    def test_prunes_nothing_when_empty(self) -> None:
        assert retained([], RetentionPolicy(1, 1, 1)) == frozenset()
        assert to_prune([], RetentionPolicy(1, 1, 1)) == []

    def test_negative_count_is_refused_when_policy_is_built(self) -> None:
        with pytest.raises(ValidationError):
            RetentionPolicy(-1, 0, 0)

    @settings(max_examples=300, deadline=None)
    @given(
        offsets=st.lists(st.integers(0, 60 * 24 * 90), min_size=1, max_size=60),
        hourly=st.integers(0, 30), daily=st.integers(0, 10), weekly=st.integers(0, 6),
    )
    def test_selection_holds_its_invariants_when_times_are_arbitrary(
        self, offsets: list[int], hourly: int, daily: int, weekly: int
    ) -> None:
        times = [T0 + timedelta(minutes=m) for m in offsets]
        policy = RetentionPolicy(hourly, daily, weekly)
        keep = retained(times, policy)
        pruned = to_prune(times, policy)
        assert max(times) in keep
        assert keep | set(pruned) == set(times)
        assert not keep & set(pruned)
        assert len(keep) <= hourly + daily + weekly + 1
        # Each kept backup but the newest is the newest of its hour, day or ISO week.
        for kept in keep - {max(times)}:
            assert any(
                max(t for t in times if key(t) == key(kept)) == kept
                for key in (lambda t: (t.date(), t.hour), lambda t: t.date(),
                            lambda t: t.isocalendar()[:2])
            )
        # Pruning again changes nothing: retention is idempotent.
        assert to_prune(keep, policy) == []


class TestSchedule:
    def test_backup_is_due_when_none_exists_or_interval_passed(self) -> None:
        interval = timedelta(minutes=15)
        assert backup_due(None, T0, interval)
        assert not backup_due(T0, T0 + timedelta(minutes=14, seconds=59), interval)
        assert backup_due(T0, T0 + interval, interval)

    def test_backup_is_due_when_clock_stepped_back(self) -> None:
        assert backup_due(T0, T0 - timedelta(minutes=1), timedelta(minutes=15))

    def test_freshness_turns_late_after_two_missed_runs(self) -> None:
        interval = timedelta(minutes=15)
        assert freshness(None, T0, interval) is Freshness.MISSING
        assert freshness(T0, T0 + 2 * interval, interval) is Freshness.FRESH
        assert freshness(T0, T0 + 2 * interval + timedelta(seconds=1), interval) is Freshness.LATE


class TestManifest:
    def manifest(self) -> BackupManifest:
        return BackupManifest("0.1.0", "0006", 42, "ab" * 32, T0, DatabaseKind.SQLITE,
                              KeySource.PASSPHRASE)

    def test_manifest_round_trips_when_serialised(self) -> None:
        manifest = self.manifest()
        assert BackupManifest.from_dict(manifest.as_dict()) == manifest

    @pytest.mark.parametrize(("key", "value"), [
        ("format", 2), ("ledgerSeq", -1), ("ledgerHead", "xyz"), ("database", "mysql"),
        ("createdAt", "2025-01-01T00:00:00"), ("keySource", "guess"), ("schemaRevision", 7),
    ])
    def test_malformed_manifest_is_refused_when_parsed(self, key: str, value: object) -> None:
        data = {**self.manifest().as_dict(), key: value}
        with pytest.raises(ValidationError) as raised:
            BackupManifest.from_dict(data)
        assert raised.value.details["field"] == "manifest"
