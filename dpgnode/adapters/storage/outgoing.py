"""``OutgoingStore`` over SQL: payouts' chain state (custody_payouts) and sweeps (0007).

Payout rows belong to the custody store, which writes them (``save_payout``); here they are
only selected by chain state. Sweeps and their inputs are this module's own tables. Writes
run inside the writer's command through ``SqlTx.execute``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from dpgnode.adapters.storage import custody_rows as mapped
from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.domain.chains.sweeps import Sweep, SweepInput, SweepKind, SweepStatus
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.errors import ConflictError, IntegrityError
from dpgnode.ports.outgoing import SweptFrom
from dpgnode.ports.uow import Tx

_P = tables.custody_payouts
_S = tables.chain_sweeps
_IN = tables.chain_sweep_inputs
_PAYOUT_ON_CHAIN = [str(s) for s in PayoutStatus if s.on_chain]
_SWEEP_ON_CHAIN = [str(s) for s in SweepStatus if s.on_chain]


def _sql(tx: Tx) -> SqlTx:
    if not isinstance(tx, SqlTx):
        raise IntegrityError("outgoing storage needs the SQL writer's transaction")
    return tx


class SqlOutgoingStore:
    """Payouts by chain state, and the sweep tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, query: Any) -> list[RowMapping]:
        with self._engine.connect() as conn:
            return list(conn.execute(query).mappings())

    # -- inside a writer command ---------------------------------------------------------------

    def payouts_on_chain_in(self, tx: Tx, assets: Iterable[str]) -> Sequence[Payout]:
        query = (select(_P).where(_P.c.asset.in_(list(assets)),
                                  _P.c.status.in_(_PAYOUT_ON_CHAIN))
                 .order_by(_P.c.created_at, _P.c.id))
        return [mapped.payout(r) for r in _sql(tx).execute(query).mappings()]

    def sweeps_on_chain_in(self, tx: Tx, chain: str) -> Sequence[Sweep]:
        query = (select(_S).where(_S.c.chain == chain, _S.c.status.in_(_SWEEP_ON_CHAIN))
                 .order_by(_S.c.created_at, _S.c.id))
        rows = list(_sql(tx).execute(query).mappings())
        return self._sweeps(rows, _sql(tx).execute)

    def sweep_in(self, tx: Tx, sweep_id: str) -> Sweep | None:
        rows = list(_sql(tx).execute(select(_S).where(_S.c.id == sweep_id)).mappings())
        found = self._sweeps(rows, _sql(tx).execute)
        return found[0] if found else None

    def add_sweep(self, tx: Tx, sweep: Sweep) -> None:
        sql = _sql(tx)
        known = sql.execute(select(_S.c.id).where(_S.c.chain == sweep.chain,
                                                  _S.c.txid == sweep.txid)).first()
        if known is not None:
            raise ConflictError(f"{sweep.chain} transaction {sweep.txid} is sweep {known.id}",
                                details={"txid": sweep.txid, "sweep_id": str(known.id)})
        sql.execute(insert(_S).values(id=sweep.id, batch_id=sweep.batch, chain=sweep.chain,
                                      kind=str(sweep.kind), asset=sweep.asset,
                                      to_address=sweep.to_address, units=sweep.units,
                                      fee_asset=sweep.fee_asset, txid=sweep.txid,
                                      raw_tx=sweep.raw_tx, created_at=sweep.created_at,
                                      **_state_row(sweep)))
        sql.execute(insert(_IN), [
            {"sweep_id": sweep.id, "position": n, "address": i.address, "units": i.units,
             "key_id": i.key_id, "outpoint": i.outpoint}
            for n, i in enumerate(sweep.inputs)
        ])

    def save_sweep(self, tx: Tx, sweep: Sweep) -> None:
        done = _sql(tx).execute(update(_S).where(_S.c.id == sweep.id).values(_state_row(sweep)))
        if done.rowcount != 1:
            raise IntegrityError(f"sweep {sweep.id} is not recorded")

    # -- reads ---------------------------------------------------------------------------------

    def payouts_to_resend(
        self, assets: Iterable[str], sent_before: datetime, limit: int
    ) -> Sequence[Payout]:
        query = (select(_P).where(_P.c.asset.in_(list(assets)),
                                  _P.c.status == str(PayoutStatus.BROADCAST),
                                  or_(_P.c.sent_at.is_(None), _P.c.sent_at < sent_before))
                 .order_by(_P.c.created_at, _P.c.id).limit(limit))
        return [mapped.payout(r) for r in self._rows(query)]

    def sweeps_to_resend(self, chain: str, sent_before: datetime, limit: int) -> Sequence[Sweep]:
        query = (select(_S).where(_S.c.chain == chain, _S.c.status == str(SweepStatus.BROADCAST),
                                  or_(_S.c.sent_at.is_(None), _S.c.sent_at < sent_before))
                 .order_by(_S.c.created_at, _S.c.id).limit(limit))
        return self._read_sweeps(query)

    def payouts_without_fee(self, assets: Iterable[str], limit: int) -> Sequence[Payout]:
        query = (select(_P).where(_P.c.asset.in_(list(assets)),
                                  _P.c.status == str(PayoutStatus.MINED),
                                  _P.c.fee_units.is_(None))
                 .order_by(_P.c.created_at, _P.c.id).limit(limit))
        return [mapped.payout(r) for r in self._rows(query)]

    def sweeps_without_fee(self, chain: str, limit: int) -> Sequence[Sweep]:
        query = (select(_S).where(_S.c.chain == chain, _S.c.status == str(SweepStatus.MINED),
                                  _S.c.fee_units.is_(None))
                 .order_by(_S.c.created_at, _S.c.id).limit(limit))
        return self._read_sweeps(query)

    def sweep(self, sweep_id: str) -> Sweep | None:
        found = self._read_sweeps(select(_S).where(_S.c.id == sweep_id))
        return found[0] if found else None

    def sweeps(
        self, *, chain: str | None = None, batch: str | None = None,
        status: SweepStatus | None = None, limit: int = 100,
    ) -> Sequence[Sweep]:
        query = select(_S).order_by(_S.c.created_at.desc(), _S.c.id.desc()).limit(limit)
        if chain is not None:
            query = query.where(_S.c.chain == chain)
        if batch is not None:
            query = query.where(_S.c.batch_id == batch)
        if status is not None:
            query = query.where(_S.c.status == str(status))
        return self._read_sweeps(query)

    def swept_from(self, address: str) -> Sequence[SweptFrom]:
        query = (
            select(_IN.c.units, _S.c.id, _S.c.chain, _S.c.asset, _S.c.txid, _S.c.status,
                   _S.c.fee_asset, _S.c.fee_units)
            .join(_S, _S.c.id == _IN.c.sweep_id)
            .where(_IN.c.address == address, _S.c.kind == str(SweepKind.SWEEP))
            .order_by(_S.c.created_at, _S.c.id, _IN.c.position)
        )
        return [SweptFrom(r["id"], r["chain"], r["asset"], int(r["units"]), r["txid"],
                          SweepStatus(r["status"]), r["fee_asset"],
                          None if r["fee_units"] is None else int(r["fee_units"]))
                for r in self._rows(query)]

    def topped_up(self, address: str) -> Sequence[Sweep]:
        query = (select(_S).where(_S.c.to_address == address,
                                  _S.c.kind == str(SweepKind.TOP_UP))
                 .order_by(_S.c.created_at, _S.c.id))
        return self._read_sweeps(query)

    # -- mapping -------------------------------------------------------------------------------

    def _read_sweeps(self, query: Any) -> list[Sweep]:
        with self._engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
            return self._sweeps(rows, conn.execute)

    @staticmethod
    def _sweeps(rows: list[RowMapping], execute: Any) -> list[Sweep]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        inputs: dict[str, list[SweepInput]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            query = (select(_IN).where(_IN.c.sweep_id.in_(ids[start:start + 500]))
                     .order_by(_IN.c.sweep_id, _IN.c.position))
            for r in execute(query).mappings():
                inputs[r["sweep_id"]].append(SweepInput(r["address"], int(r["units"]),
                                                        r["key_id"], r["outpoint"]))
        return [_sweep(r, inputs[r["id"]]) for r in rows]


def _state_row(sweep: Sweep) -> dict[str, Any]:
    return {
        "status": str(sweep.status), "spends": mapped.SPENDS_SEPARATOR.join(sweep.spends),
        "fee_units": sweep.fee_units,
        "block_height": None if sweep.block is None else sweep.block.height,
        "block_hash": None if sweep.block is None else sweep.block.hash,
        "conflict_txid": sweep.conflict_txid, "conflict_height": sweep.conflict_height,
        "sent_at": sweep.sent_at, "failure": sweep.failure, "updated_at": sweep.updated_at,
    }


def _sweep(row: RowMapping, inputs: list[SweepInput]) -> Sweep:
    return Sweep(
        id=row["id"], batch=row["batch_id"], chain=row["chain"], kind=SweepKind(row["kind"]),
        asset=row["asset"], to_address=row["to_address"], units=int(row["units"]),
        inputs=tuple(inputs), fee_asset=row["fee_asset"], txid=row["txid"],
        raw_tx=row["raw_tx"], status=SweepStatus(row["status"]),
        created_at=row["created_at"], updated_at=row["updated_at"],
        spends=mapped.split_spends(row["spends"]),
        fee_units=None if row["fee_units"] is None else int(row["fee_units"]),
        block=mapped.block_ref(row), conflict_txid=row["conflict_txid"],
        conflict_height=None if row["conflict_height"] is None else int(row["conflict_height"]),
        sent_at=row["sent_at"], failure=row["failure"],
    )


def own_sweep_txids(tx: Tx, txids: Sequence[str]) -> set[str]:
    """Those of ``txids`` that are sweeps or gas top-ups (for ``ChainStore.own_txids_in``)."""
    own: set[str] = set()
    for start in range(0, len(txids), 500):
        query = select(_S.c.txid).where(and_(_S.c.txid.in_(txids[start:start + 500])))
        own.update(r.txid for r in _sql(tx).execute(query))
    return own
