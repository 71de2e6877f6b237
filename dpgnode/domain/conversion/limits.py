"""Conversion limits per user and per period, and the check that enforces them.

A limit caps, per calendar period in UTC (``day`` or ``month``), either

- the volume of one **asset** a user converts: a conversion counts for both assets it
  touches, by the amount of each (selling 1 BTC for 60,000 USDT counts 1 BTC against a BTC
  limit and 60,000 USDT against a USDT limit; the fee is part of what is sold), or
- the **value** of everything a user converts, in the reference currency (the quote records
  the conversion's value in it when the quote is made).

A limit belongs to one user, or to ``*``: the default for every user who has no limit of
their own for the same kind, asset and period. The check runs inside the write transaction
that posts the conversion and bumps the usage counters, so two conversions racing for the
last of a limit cannot both pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from dpgnode.domain.money import Amount, AssetRegistry
from dpgnode.errors import PolicyDeniedError, ValidationError

DEFAULT_OWNER = "*"
"""Owner id of the limits that apply to every user without their own."""


class Period(StrEnum):
    """A calendar period in UTC; usage starts again from zero at its start."""

    DAY = "day"
    MONTH = "month"

    @property
    def adjective(self) -> str:
        """``daily`` or ``monthly``, for messages."""
        return "daily" if self is Period.DAY else "monthly"

    def start(self, now: datetime) -> datetime:
        """Start of the period that contains ``now`` (an aware datetime)."""
        moment = now.astimezone(UTC)
        if self is Period.DAY:
            return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        return datetime(moment.year, moment.month, 1, tzinfo=UTC)

    def end(self, now: datetime) -> datetime:
        """Start of the next period: when the usage of the current one resets."""
        start = self.start(now)
        if self is Period.DAY:
            return datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return datetime(year, month, 1, tzinfo=UTC)


class LimitKind(StrEnum):
    """What a limit counts: one asset's volume, or the value in the reference currency."""

    ASSET = "asset"
    VALUE = "value"


LimitKey = tuple[LimitKind, str, Period]
"""``(kind, asset, period)``: what a limit is about, whoever it belongs to."""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``units`` base units of ``asset`` per ``period`` for ``owner_id``."""

    owner_id: str
    kind: LimitKind
    asset: str
    period: Period
    units: int

    def __post_init__(self) -> None:
        if type(self.units) is not int or self.units < 0:
            raise ValidationError("a limit must be zero or more", field="limit")

    @property
    def key(self) -> LimitKey:
        """What the limit is about, without its owner."""
        return (self.kind, self.asset, self.period)

    @property
    def is_default(self) -> bool:
        """Whether this is the limit of every user who has none of their own."""
        return self.owner_id == DEFAULT_OWNER


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """A limit in force for a user, with what is used of it in the current period."""

    limit: Limit
    used: int
    period_start: datetime
    resets_at: datetime

    @property
    def remaining(self) -> int:
        """What is left in this period (never negative)."""
        return max(self.limit.units - self.used, 0)


def effective_limits(limits: Iterable[Limit], owner_id: str) -> dict[LimitKey, Limit]:
    """The limits that apply to ``owner_id``: their own, else the default for that key."""
    chosen: dict[LimitKey, Limit] = {}
    for limit in limits:
        if limit.owner_id == owner_id or (limit.is_default and limit.key not in chosen):
            chosen[limit.key] = limit
    return chosen


def volumes(
    sell: Amount, buy: Amount, reference: Amount | None
) -> dict[tuple[LimitKind, str], int]:
    """What one conversion counts against limits, by kind and asset."""
    counted = {
        (LimitKind.ASSET, sell.asset.code): sell.units,
        (LimitKind.ASSET, buy.asset.code): buy.units,
    }
    if reference is not None:
        counted[(LimitKind.VALUE, reference.asset.code)] = reference.units
    return counted


def prorated_value(value: Amount, part: int, whole: int) -> Amount:
    """``value * part / whole`` rounded up, in exact integers: the value of part of a sale.

    A book-route conversion may sell less than it was quoted for; its value-limit usage is
    the quoted value scaled to what really sold, rounded up so a limit always counts the
    full value. (``value.units * part / whole`` would pass through a float and lose units
    beyond 2^53, i.e. any 18-decimal amount above about 0.009.)
    """
    if whole <= 0 or part < 0:
        raise ValidationError("cannot prorate over a non-positive whole", field="amount")
    return Amount(-(-value.units * part // whole), value.asset)


def tally(
    used: Mapping[LimitKey, int], counted: Mapping[tuple[LimitKind, str], int]
) -> dict[LimitKey, int]:
    """Usage after one more conversion, for every period and everything it counts for.

    Usage is kept whether or not a limit exists yet, so a limit set in the middle of a
    period counts what was already converted in it.
    """
    return {
        (kind, asset, period): used.get((kind, asset, period), 0) + units
        for (kind, asset), units in counted.items()
        for period in Period
    }


def recount(
    used: Mapping[LimitKey, int],
    before: Mapping[tuple[LimitKind, str], int],
    after: Mapping[tuple[LimitKind, str], int],
) -> dict[LimitKey, int]:
    """Usage with what one conversion counted replaced: ``before`` out, ``after`` in.

    For a conversion whose final amounts differ from those it reserved (the book route),
    or that gave its reservation back (``after`` empty). Never below zero.
    """
    touched = {(kind, asset, period) for (kind, asset) in {**before, **after} for period in Period}
    return {
        key: max(used.get(key, 0) - before.get(key[:2], 0) + after.get(key[:2], 0), 0)
        for key in touched
    }


def check_limits(
    limits: Mapping[LimitKey, Limit],
    used: Mapping[LimitKey, int],
    counted: Mapping[tuple[LimitKind, str], int],
    assets: AssetRegistry,
) -> dict[LimitKey, int]:
    """The usage after one more conversion (see :func:`tally`), or a refusal.

    ``used`` is this period's usage per key (missing: zero). A value limit that the
    conversion has no value for refuses it: the limit could not be enforced.

    Raises:
        PolicyDeniedError: the conversion does not fit a limit (``details`` name it).
    """
    after = tally(used, counted)
    for key, limit in sorted(limits.items()):
        kind, asset, period = key
        if key not in after:
            if kind is LimitKind.VALUE:
                raise PolicyDeniedError(
                    f"this quote has no value in {asset} to check the {period.adjective} limit: "
                    "request a new quote",
                    details={"rule": "conversion_limit", "kind": str(kind), "asset": asset,
                             "period": str(period)},
                )
            continue
        if after[key] > limit.units:
            already = used.get(key, 0)
            remaining = max(limit.units - already, 0)
            raise PolicyDeniedError(
                f"the conversion exceeds the {period.adjective} {kind} limit of "
                f"{assets.format(limit.units, asset)} {asset} "
                f"({assets.format(remaining, asset)} {asset} remaining)",
                details={
                    "rule": "conversion_limit", "kind": str(kind), "asset": asset,
                    "period": str(period), "limit": assets.format(limit.units, asset),
                    "used": assets.format(already, asset),
                    "remaining": assets.format(remaining, asset),
                },
            )
    return after
