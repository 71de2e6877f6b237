"""``ConversionStore`` over SQL: quotes, conversions, limits and usage counters.

Writes run inside the writer's command through ``SqlTx.execute`` (the command's savepoint),
so a conversion row, its quote's new status, the usage counters and the journal entry
commit together or not at all. Reads outside a command use pooled connections and see
committed data only. Rates are stored as exact fractions ``"numerator/denominator"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.domain.conversion.limits import DEFAULT_OWNER, Limit, LimitKey, LimitKind, Period
from dpgnode.domain.conversion.pricing import FixedSide, Priced, Terms
from dpgnode.domain.conversion.quote import Conversion, Quote, QuoteStatus, Route
from dpgnode.domain.money import Amount, AssetRegistry
from dpgnode.errors import ConflictError, IntegrityError
from dpgnode.ports.uow import Tx

_q = tables.conversion_quotes
_c = tables.conversions
_l = tables.conversion_limits
_u = tables.conversion_usage


def _sql(tx: Tx) -> SqlTx:
    if not isinstance(tx, SqlTx):
        raise IntegrityError("conversion storage needs the SQL writer's transaction")
    return tx


class SqlConversionStore:
    def __init__(self, engine: Engine, assets: AssetRegistry) -> None:
        self._engine = engine
        self._assets = assets

    # -- inside a writer command ---------------------------------------------------------

    def save_quote(self, tx: Tx, quote: Quote) -> None:
        _sql(tx).execute(insert(_q).values(quote_row(quote)))

    def quote_in(self, tx: Tx, quote_id: str) -> Quote | None:
        row = _sql(tx).execute(select(_q).where(_q.c.id == quote_id)).mappings().first()
        return None if row is None else self._quote(row)

    def conversion_of_quote(self, tx: Tx, quote_id: str) -> Conversion | None:
        row = _sql(tx).execute(select(_c).where(_c.c.quote_id == quote_id)).mappings().first()
        return None if row is None else self._conversion(row)

    def save_conversion(self, tx: Tx, conversion: Conversion) -> None:
        sql = _sql(tx)
        pending = (str(QuoteStatus.OPEN), str(QuoteStatus.EXECUTING))
        done = sql.execute(
            update(_q)
            .where(_q.c.id == conversion.quote_id, _q.c.status.in_(pending))
            .values(status=str(QuoteStatus.EXECUTED))
        )
        if done.rowcount != 1:
            raise ConflictError(
                f"quote {conversion.quote_id} is not open", details={"quoteId": conversion.quote_id}
            )
        sql.execute(insert(_c).values(conversion_row(conversion)))

    def set_quote_status(
        self, tx: Tx, quote_id: str, status: QuoteStatus, accepted_at: datetime | None
    ) -> None:
        values = {"status": str(status), "accepted_at": accepted_at}
        _sql(tx).execute(update(_q).where(_q.c.id == quote_id).values(values))

    def limits_in(self, tx: Tx, owner_id: str) -> Sequence[Limit]:
        rows = _sql(tx).execute(_limits_query(owner_id)).mappings()
        return [_limit(row) for row in rows]

    def usage_in(self, tx: Tx, owner_id: str, now: datetime) -> dict[LimitKey, int]:
        rows = _sql(tx).execute(_usage_query(owner_id, now)).mappings()
        return {_key(row): int(row["used"]) for row in rows}

    def save_usage(
        self, tx: Tx, owner_id: str, now: datetime, totals: Mapping[LimitKey, int]
    ) -> None:
        sql = _sql(tx)
        for key, used in sorted(totals.items()):
            kind, asset, period = key
            where = (
                _u.c.owner_id == owner_id, _u.c.kind == str(kind), _u.c.asset == asset,
                _u.c.period == str(period), _u.c.period_start == period.start(now),
            )
            done = sql.execute(update(_u).where(*where).values(used=used))
            if done.rowcount == 0:
                sql.execute(
                    insert(_u).values(
                        owner_id=owner_id, kind=str(kind), asset=asset, period=str(period),
                        period_start=period.start(now), used=used,
                    )
                )

    def save_limit(self, tx: Tx, limit: Limit, now: datetime) -> None:
        sql = _sql(tx)
        self.delete_limit(tx, limit.owner_id, limit.key)
        sql.execute(
            insert(_l).values(
                owner_id=limit.owner_id, kind=str(limit.kind), asset=limit.asset,
                period=str(limit.period), units=limit.units, updated_at=now,
            )
        )

    def delete_limit(self, tx: Tx, owner_id: str, key: LimitKey) -> bool:
        kind, asset, period = key
        done = _sql(tx).execute(
            delete(_l).where(
                _l.c.owner_id == owner_id, _l.c.kind == str(kind), _l.c.asset == asset,
                _l.c.period == str(period),
            )
        )
        return bool(done.rowcount)

    # -- committed reads -----------------------------------------------------------------

    def _read(self, statement: Any) -> list[RowMapping]:
        conn: Connection
        with self._engine.connect() as conn:
            return list(conn.execute(statement).mappings())

    def quote(self, quote_id: str) -> Quote | None:
        rows = self._read(select(_q).where(_q.c.id == quote_id))
        return self._quote(rows[0]) if rows else None

    def conversion(self, conversion_id: str) -> Conversion | None:
        rows = self._read(select(_c).where(_c.c.id == conversion_id))
        return self._conversion(rows[0]) if rows else None

    def limits(self, owner_id: str | None) -> Sequence[Limit]:
        query = select(_l).order_by(_l.c.owner_id, _l.c.kind, _l.c.asset, _l.c.period)
        if owner_id is not None:
            query = _limits_query(owner_id)
        return [_limit(row) for row in self._read(query)]

    def usage(self, owner_id: str, now: datetime) -> dict[LimitKey, int]:
        return {_key(row): int(row["used"]) for row in self._read(_usage_query(owner_id, now))}

    # -- row mapping ---------------------------------------------------------------------

    def _amount(self, units: int, code: str) -> Amount:
        return Amount(int(units), self._assets.require(code))

    def _quote(self, row: RowMapping) -> Quote:
        terms = Terms(int(row["spread_bps"]), int(row["fee_bps"]))
        mid = Fraction(row["mid_rate"])
        sold, bought = row["from_asset"], row["to_asset"]
        reference = (
            self._amount(row["reference_units"], row["reference_asset"])
            if row["reference_asset"] is not None
            else None
        )
        return Quote(
            id=row["id"], owner_id=row["owner_id"], side=FixedSide(row["side"]),
            route=Route(row["route"]),
            priced=Priced(
                sell=self._amount(row["sell_units"], sold),
                fee=self._amount(row["fee_units"], sold),
                buy=self._amount(row["buy_units"], bought),
                mid_rate=mid, rate=terms.client_rate(mid),
                spread=self._amount(row["spread_units"], bought),
            ),
            terms=terms, rate_source=row["rate_source"],
            rate_observed_at=row["rate_observed_at"], reference=reference,
            max_slippage_bps=int(row["max_slippage_bps"]), created_at=row["created_at"],
            expires_at=row["expires_at"], status=QuoteStatus(row["status"]),
            accepted_at=row["accepted_at"],
        )

    def _conversion(self, row: RowMapping) -> Conversion:
        sold, bought = row["from_asset"], row["to_asset"]
        return Conversion(
            id=row["id"], quote_id=row["quote_id"], owner_id=row["owner_id"],
            route=Route(row["route"]), sell=self._amount(row["sell_units"], sold),
            fee=self._amount(row["fee_units"], sold),
            buy=self._amount(row["buy_units"], bought), entry_id=row["entry_id"],
            created_at=row["created_at"], order_id=row["order_id"],
        )


def quote_row(quote: Quote) -> dict[str, Any]:
    priced = quote.priced
    reference = quote.reference
    return {
        "id": quote.id, "owner_id": quote.owner_id, "side": str(quote.side),
        "route": str(quote.route), "status": str(quote.status),
        "from_asset": priced.sell.asset.code, "to_asset": priced.buy.asset.code,
        "sell_units": priced.sell.units, "fee_units": priced.fee.units,
        "buy_units": priced.buy.units, "spread_units": priced.spread.units,
        "mid_rate": _fraction(priced.mid_rate), "spread_bps": quote.terms.spread_bps,
        "fee_bps": quote.terms.fee_bps, "max_slippage_bps": quote.max_slippage_bps,
        "rate_source": quote.rate_source[:500], "rate_observed_at": quote.rate_observed_at,
        "reference_asset": reference.asset.code if reference is not None else None,
        "reference_units": reference.units if reference is not None else None,
        "created_at": quote.created_at, "expires_at": quote.expires_at,
        "accepted_at": quote.accepted_at,
    }


def conversion_row(conversion: Conversion) -> dict[str, Any]:
    return {
        "id": conversion.id, "quote_id": conversion.quote_id, "owner_id": conversion.owner_id,
        "route": str(conversion.route), "from_asset": conversion.sell.asset.code,
        "to_asset": conversion.buy.asset.code, "sell_units": conversion.sell.units,
        "fee_units": conversion.fee.units, "buy_units": conversion.buy.units,
        "entry_id": conversion.entry_id, "order_id": conversion.order_id,
        "created_at": conversion.created_at,
    }


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _limits_query(owner_id: str) -> Any:
    return (
        select(_l)
        .where(_l.c.owner_id.in_([owner_id, DEFAULT_OWNER]))
        .order_by(_l.c.owner_id, _l.c.kind, _l.c.asset, _l.c.period)
    )


def _usage_query(owner_id: str, now: datetime) -> Any:
    current = [
        and_(_u.c.period == str(period), _u.c.period_start == period.start(now))
        for period in Period
    ]
    return select(_u).where(_u.c.owner_id == owner_id, or_(*current))


def _key(row: RowMapping) -> LimitKey:
    return (LimitKind(row["kind"]), row["asset"], Period(row["period"]))


def _limit(row: RowMapping) -> Limit:
    return Limit(
        row["owner_id"], LimitKind(row["kind"]), row["asset"], Period(row["period"]),
        int(row["units"]),
    )
