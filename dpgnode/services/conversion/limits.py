"""Conversion limits: what operators set, what users see, the early check at quote time.

The binding check is not here: it runs inside the command that executes a conversion
(:mod:`dpgnode.services.conversion.service`), together with the usage update. The check
at quote time only spares users a quote they could not execute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from dpgnode.domain.conversion.limits import (
    DEFAULT_OWNER,
    Limit,
    LimitKind,
    LimitStatus,
    Period,
    check_limits,
    effective_limits,
    volumes,
)
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.money import Amount, AssetRegistry, parse_units
from dpgnode.errors import ValidationError
from dpgnode.ports.clock import Clock
from dpgnode.ports.conversion import ConversionStore
from dpgnode.ports.uow import Tx, Writer

_OWNER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def check_owner(owner_id: str, *, field: str = "userId") -> str:
    """A valid ledger owner id for a user, else ``ValidationError`` naming ``field``."""
    if not isinstance(owner_id, str) or not _OWNER_ID.fullmatch(owner_id):
        raise ValidationError("a user id is 1-64 letters, digits, '_', '.', '-'", field=field)
    return owner_id


class ConversionLimits:
    """Per-user, per-period conversion limits over the ``ConversionStore``."""

    def __init__(
        self,
        writer: Writer,
        store: ConversionStore,
        assets: AssetRegistry,
        clock: Clock,
        reference_asset: str | None,
    ) -> None:
        self._writer = writer
        self._store = store
        self._assets = assets
        self._clock = clock
        self._reference_asset = reference_asset

    def status(self, owner_id: str) -> list[LimitStatus]:
        """The limits in force for a user, with this period's usage and what remains."""
        owner = check_owner(owner_id)
        now = self._clock.now()
        limits = effective_limits(self._store.limits(owner), owner)
        used = self._store.usage(owner, now)
        return [
            LimitStatus(limit, used.get(key, 0), key[2].start(now), key[2].end(now))
            for key, limit in sorted(limits.items())
        ]

    def all(self) -> Sequence[Limit]:
        """Every limit set, the defaults (owner ``*``) included."""
        return self._store.limits(None)

    def set(
        self,
        owner_id: str | None,
        kind: LimitKind,
        asset_code: str,
        period: Period,
        amount: str | None,
    ) -> Limit | None:
        """Set a limit, or remove it with ``amount=None``; ``owner_id=None`` is the default.

        Emits ``conversion.limit_set`` in the same transaction.

        Raises:
            ValidationError: bad owner, asset or amount; a value limit that is not in the
                reference currency.
        """
        owner = DEFAULT_OWNER if owner_id is None else check_owner(owner_id)
        asset = self._assets.get(asset_code) if isinstance(asset_code, str) else None
        if asset is None:
            raise ValidationError(f"unknown asset {str(asset_code)[:20]!r}", field="asset")
        if kind is LimitKind.VALUE and asset.code != self._reference_asset:
            raise ValidationError(
                "value limits are in the reference currency "
                f"{self._reference_asset or '(none configured)'}",
                field="asset",
            )
        limit = None
        if amount is not None:
            units = parse_units(amount, asset.decimals, field="limit")
            limit = Limit(owner, kind, asset.code, period, units)
        now = self._clock.now()
        shown = None if limit is None else self._assets.format(limit.units, asset.code)
        event = DomainEvent(
            type="conversion.limit_set",
            aggregate=f"user:{owner}",
            payload={
                "userId": owner, "kind": str(kind), "asset": asset.code,
                "period": str(period), "limit": shown,
            },
        )

        def command(tx: Tx) -> None:
            if limit is None:
                self._store.delete_limit(tx, owner, (kind, asset.code, period))
            else:
                self._store.save_limit(tx, limit, now)
            tx.emit(event)

        self._writer.run(command)
        return limit

    def precheck(
        self, owner: str, sell: Amount, buy: Amount, reference: Amount | None, now: datetime
    ) -> None:
        """Refuse a quote its user could not execute now, on committed usage.

        Raises:
            PolicyDeniedError: the conversion would not fit a limit.
        """
        limits = effective_limits(self._store.limits(owner), owner)
        if limits:
            check_limits(
                limits, self._store.usage(owner, now), volumes(sell, buy, reference),
                self._assets,
            )
