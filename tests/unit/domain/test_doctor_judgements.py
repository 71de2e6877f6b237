"""``dpg doctor``'s pure judgements: clock skew with uncertainty, disk room, backup age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dpgnode.domain.doctor import (
    Finding,
    Status,
    judge_backups,
    judge_clock,
    judge_disk,
    worst,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EVERY_15 = timedelta(minutes=15)
MIB = 1 << 20


class TestClock:
    @pytest.mark.parametrize(("offset", "uncertainty", "status"), [
        (0.2, 0.6, Status.OK),
        (-4.9, 0.1, Status.OK),
        (5.5, 0.6, Status.OK),    # could be 4.9 s: within the limit given the uncertainty
        (5.7, 0.6, Status.FAIL),  # at least 5.1 s off
        (-90.0, 0.6, Status.FAIL),
        (0.0, 7.0, Status.WARN),  # the measurement cannot tell
    ])
    def test_verdict_accounts_for_uncertainty_when_judged(
        self, offset: float, uncertainty: float, status: Status
    ) -> None:
        finding = judge_clock("https://time.example", offset, uncertainty, limit=5.0)
        assert finding.status is status
        assert "time.example" in finding.summary
        assert bool(finding.fix) == (status is not Status.OK)


class TestDisk:
    def test_fails_when_no_room_for_a_backup(self) -> None:
        assert judge_disk("data", 100 * MIB, 200 * MIB, 0).status is Status.FAIL

    def test_warns_when_room_is_below_margin(self) -> None:
        assert judge_disk("data", 300 * MIB, 200 * MIB, 1024 * MIB).status is Status.WARN

    def test_ok_when_room_and_margin(self) -> None:
        finding = judge_disk("data", 5000 * MIB, 200 * MIB, 1024 * MIB)
        assert finding.status is Status.OK
        assert "5000 MiB free" in finding.summary


class TestBackups:
    def test_fails_when_scheduled_but_none_exists(self) -> None:
        finding = judge_backups(None, NOW, EVERY_15, scheduled=True, last_error="disk full")
        assert finding.status is Status.FAIL
        assert "disk full" in finding.summary

    def test_fails_when_two_runs_were_missed(self) -> None:
        last = NOW - timedelta(minutes=31)
        assert judge_backups(last, NOW, EVERY_15, scheduled=True, last_error=None).status \
            is Status.FAIL

    def test_warns_when_fresh_but_last_attempt_failed(self) -> None:
        last = NOW - timedelta(minutes=20)
        finding = judge_backups(last, NOW, EVERY_15, scheduled=True, last_error="locked")
        assert finding.status is Status.WARN

    def test_ok_when_fresh(self) -> None:
        last = NOW - timedelta(minutes=20)
        finding = judge_backups(last, NOW, EVERY_15, scheduled=True, last_error=None)
        assert finding.status is Status.OK
        assert "20 min" in finding.summary

    def test_unkeyed_schedule_fails_unless_a_fresh_backup_exists(self) -> None:
        problem = "no backup passphrase"
        none = judge_backups(None, NOW, EVERY_15, scheduled=True, last_error=None,
                             unkeyed=problem)
        fresh = judge_backups(NOW - timedelta(minutes=5), NOW, EVERY_15, scheduled=True,
                              last_error=None, unkeyed=problem)
        assert none.status is Status.FAIL
        assert fresh.status is Status.WARN
        assert problem in none.summary
        assert "restart" in none.fix

    def test_unscheduled_warns_only_without_any_backup(self) -> None:
        assert judge_backups(None, NOW, EVERY_15, scheduled=False, last_error=None).status \
            is Status.WARN
        old = NOW - timedelta(days=30)
        assert judge_backups(old, NOW, EVERY_15, scheduled=False, last_error=None).status \
            is Status.OK


def test_worst_orders_fail_over_warn_over_ok_over_skip() -> None:
    def finding(status: Status) -> Finding:
        return Finding("x", status, "")

    assert worst([]) is Status.OK
    assert worst([finding(Status.SKIP)]) is Status.SKIP
    assert worst([finding(Status.SKIP), finding(Status.OK)]) is Status.OK
    assert worst([finding(Status.FAIL), finding(Status.WARN), finding(Status.OK)]) is Status.FAIL
