"""``dpg doctor``'s findings and the judgements that need no I/O.

Each check yields findings (:class:`Finding`): ``ok``, ``warn`` (works, but an operator
should look), ``fail`` (something is wrong: the command exits non-zero) or ``skip`` (could
not be measured here, and the summary says why). Measurements are judged with their
uncertainty: a clock read over a network is known only within half the round trip (plus
the source's resolution), so the check fails only when the skew exceeds the limit by more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dpgnode.domain.backup import Freshness, freshness

_MIB = 1 << 20


class Status(StrEnum):
    """A finding's verdict, in rising order of severity (``skip`` below ``ok``)."""

    SKIP = "skip"
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


_RANK = {Status.SKIP: 0, Status.OK: 1, Status.WARN: 2, Status.FAIL: 3}


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result; ``fix`` says what to do when it is not ``ok``."""

    check: str
    status: Status
    summary: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"check": self.check, "status": str(self.status), "summary": self.summary,
                "fix": self.fix}


def worst(findings: Iterable[Finding]) -> Status:
    """The most severe status among ``findings`` (``ok`` when there are none)."""
    return max((f.status for f in findings), key=_RANK.__getitem__, default=Status.OK)


def judge_clock(source: str, offset: float, uncertainty: float, limit: float) -> Finding:
    """Compare the local clock with ``source``: ``offset`` = source minus local, in seconds."""
    described = f"{offset:+.3f} s against {source} (±{uncertainty:.3f} s)"
    if abs(offset) - uncertainty > limit:
        return Finding(
            "clock", Status.FAIL, f"clock is off by {described}, limit {limit:g} s",
            "synchronise the clock (systemd-timesyncd, chrony or ntpd)",
        )
    if uncertainty > limit:
        return Finding("clock", Status.WARN, f"clock {described}: too uncertain to judge",
                       "use a nearer time reference (doctor.time_url)")
    return Finding("clock", Status.OK, f"clock {described}")


def judge_disk(name: str, free: int, needed: int, min_free: int) -> Finding:
    """``fail`` below ``needed`` (room for one backup), ``warn`` below ``needed + min_free``."""
    text = f"{name}: {free // _MIB} MiB free"
    if free < needed:
        return Finding("disk", Status.FAIL, f"{text}, a backup needs about {needed // _MIB} MiB",
                       f"free space on {name} or move backup.directory to another disk")
    if free < needed + min_free:
        return Finding("disk", Status.WARN, f"{text}, below doctor.min_free_disk_mb after a "
                       "backup", f"free space on {name}")
    return Finding("disk", Status.OK, text)


def judge_backups(
    last: datetime | None,
    now: datetime,
    interval: timedelta,
    *,
    scheduled: bool,
    last_error: str | None,
    unkeyed: str | None = None,
) -> Finding:
    """Backup freshness against the schedule, the scheduler's last error, a missing key.

    ``unkeyed`` says why the schedule cannot run (no key configured): ``fail`` unless a
    fresh backup exists anyway (made by hand), then ``warn``.
    """
    if scheduled and unkeyed:
        fresh = last is not None and freshness(last, now, interval) is Freshness.FRESH
        newest = f"; newest backup {_human(now - last)} old" if last is not None else ""
        return Finding("backups", Status.WARN if fresh else Status.FAIL,
                       f"scheduled backups are off: {unkeyed}{newest}",
                       "configure the backup key, then restart the node")
    if not scheduled:
        if last is None:
            return Finding("backups", Status.WARN, "no backups, and scheduled backups are off",
                           "set backup.interval_minutes, or run `dpg backup create` from cron")
        return Finding("backups", Status.OK,
                       f"newest backup {last.isoformat()} (scheduled backups are off)")
    if last is None:
        detail = f": last attempt failed: {last_error}" if last_error else ""
        return Finding("backups", Status.FAIL, f"no backup yet{detail}",
                       "start the node with a backup key configured, or `dpg backup create`")
    age = now - last
    if freshness(last, now, interval) is Freshness.LATE:
        detail = f"; last attempt failed: {last_error}" if last_error else ""
        return Finding("backups", Status.FAIL,
                       f"newest backup is {_human(age)} old, schedule every {_human(interval)}"
                       f"{detail}", "look at the node's log for `scheduled backup failed`")
    if last_error:
        return Finding("backups", Status.WARN,
                       f"newest backup {_human(age)} old; last attempt failed: {last_error}",
                       "look at the node's log for `scheduled backup failed`")
    return Finding("backups", Status.OK, f"newest backup is {_human(age)} old")


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
