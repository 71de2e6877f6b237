"""Backups as values: names, the manifest, when the next one is due, which ones to keep.

Invariants this module keeps:
- a backup's file name carries its creation time (UTC, millisecond precision), so the
  set of backups and their ages is known from a directory listing alone, and names sort in
  time order;
- retention never selects the newest backup for deletion, whatever the policy (a policy of
  zeros keeps exactly the newest one): pruning cannot leave an operator with nothing;
- a manifest read back is checked field by field; an unknown format version is refused
  rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from dpgnode.errors import ValidationError

BACKUP_SUFFIX = ".dpgbak"
"""File name extension of an encrypted backup."""
MANIFEST_FORMAT = 1
"""Version of :class:`BackupManifest`'s layout; readers refuse any other."""
_NAME = re.compile(r"^dpg-(\d{8}T\d{6})\.(\d{3})Z\.dpgbak$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DatabaseKind(StrEnum):
    """What the backup holds: a SQLite database file or a ``pg_dump`` custom-format dump."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class KeySource(StrEnum):
    """Where the key that opens a backup lives."""

    PASSPHRASE = "passphrase"  # noqa: S105 - a key source's name, not a credential
    HSM = "hsm"


def backup_file_name(created_at: datetime) -> str:
    """``dpg-20250102T030405.678Z.dpgbak`` for a backup made at ``created_at``."""
    moment = _utc(created_at, "created_at")
    return f"dpg-{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z{BACKUP_SUFFIX}"


def parse_backup_file_name(name: str) -> datetime | None:
    """The creation time a backup file name carries; ``None`` for any other name."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    try:
        moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment + timedelta(milliseconds=int(match.group(2)))


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How many backups to keep: the newest of each of the last N hours, days and ISO weeks.

    Periods count only when they hold a backup (restic's ``--keep-hourly`` semantics), so
    a node that was down for a week still keeps N daily backups, not none.
    """

    hourly: int
    daily: int
    weekly: int

    def __post_init__(self) -> None:
        for name in ("hourly", "daily", "weekly"):
            if getattr(self, name) < 0:
                raise ValidationError(f"keep_{name} must be 0 or more", field=f"keep_{name}")


def _hour(moment: datetime) -> Hashable:
    return (moment.year, moment.month, moment.day, moment.hour)


def _day(moment: datetime) -> Hashable:
    return moment.date()


def _week(moment: datetime) -> Hashable:
    return moment.isocalendar()[:2]


def retained(times: Iterable[datetime], policy: RetentionPolicy) -> frozenset[datetime]:
    """The creation times to keep; every other backup may be deleted.

    The newest backup of each of the ``policy.hourly`` most recent hours that have one is
    kept, likewise for days and ISO weeks (all in UTC), and the newest backup always.
    """
    ordered = sorted({_utc(t, "created_at") for t in times}, reverse=True)
    if not ordered:
        return frozenset()
    keep = {ordered[0]}
    buckets: tuple[tuple[int, Callable[[datetime], Hashable]], ...] = (
        (policy.hourly, _hour), (policy.daily, _day), (policy.weekly, _week),
    )
    for count, period in buckets:
        seen: set[Hashable] = set()
        for moment in ordered:
            if len(seen) >= count:
                break
            key = period(moment)
            if key not in seen:
                seen.add(key)
                keep.add(moment)
    return frozenset(keep)


def to_prune(times: Iterable[datetime], policy: RetentionPolicy) -> list[datetime]:
    """Creation times the policy no longer keeps, oldest first."""
    unique = {_utc(t, "created_at") for t in times}
    return sorted(unique - retained(unique, policy))


def backup_due(last: datetime | None, now: datetime, interval: timedelta) -> bool:
    """Whether a scheduled backup should run: none yet, or the newest is ``interval`` old.

    A newest backup "from the future" (the clock stepped back) does not block backups for
    as long as the step: it counts as due.
    """
    if last is None:
        return True
    age = _utc(now, "now") - _utc(last, "last")
    return age >= interval or age < timedelta(0)


class Freshness(StrEnum):
    """How recent the newest backup is, against the schedule."""

    FRESH = "fresh"
    LATE = "late"
    MISSING = "missing"


def freshness(last: datetime | None, now: datetime, interval: timedelta) -> Freshness:
    """``LATE`` once two scheduled runs were missed (one may still be running)."""
    if last is None:
        return Freshness.MISSING
    age = _utc(now, "now") - _utc(last, "last")
    return Freshness.LATE if age > 2 * interval else Freshness.FRESH


@dataclass(frozen=True, slots=True)
class BackupManifest:
    """What a backup says about itself; stored (authenticated) in the backup's header.

    ``ledger_seq`` and ``ledger_head`` are read in the same transaction as the copy, so
    a restored database must end exactly there.
    """

    node_version: str
    schema_revision: str | None
    ledger_seq: int
    ledger_head: str
    created_at: datetime
    database: DatabaseKind
    key_source: KeySource
    format: int = MANIFEST_FORMAT

    def as_dict(self) -> dict[str, str | int | None]:
        """JSON-ready form (camelCase, as the API and ``--json`` write)."""
        return {
            "format": self.format,
            "nodeVersion": self.node_version,
            "schemaRevision": self.schema_revision,
            "ledgerSeq": self.ledger_seq,
            "ledgerHead": self.ledger_head,
            "createdAt": _utc(self.created_at, "created_at").isoformat(),
            "database": str(self.database),
            "keySource": str(self.key_source),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BackupManifest:
        """Parse :meth:`as_dict`'s form; ``ValidationError(field="manifest")`` if malformed."""
        if data.get("format") != MANIFEST_FORMAT:
            raise ValidationError(
                f"unsupported backup manifest format {data.get('format')!r} "
                f"(this version reads {MANIFEST_FORMAT})", field="manifest",
            )
        try:
            revision = data["schemaRevision"]
            seq, head = data["ledgerSeq"], data["ledgerHead"]
            if not isinstance(seq, int) or seq < 0 or not _HEX64.fullmatch(str(head)):
                raise ValueError("ledger head")
            if revision is not None and not isinstance(revision, str):
                raise ValueError("schema revision")
            return cls(
                node_version=str(data["nodeVersion"]),
                schema_revision=revision,
                ledger_seq=seq,
                ledger_head=str(head),
                created_at=_utc(datetime.fromisoformat(str(data["createdAt"])), "createdAt"),
                database=DatabaseKind(str(data["database"])),
                key_source=KeySource(str(data["keySource"])),
            )
        except (KeyError, ValueError, TypeError, ValidationError) as exc:
            raise ValidationError(f"malformed backup manifest: {exc}", field="manifest") from exc


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValidationError(f"{name} must be an aware datetime", field=name)
    return moment.astimezone(UTC)
