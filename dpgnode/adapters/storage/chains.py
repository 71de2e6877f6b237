"""``ChainStore`` over SQL: watcher cursors, remembered blocks, payments and incidents.

Writes run inside the writer's command through ``SqlTx.execute``, so a block's payments, the
ledger entries crediting them, their events and the cursor commit together. Issued addresses
are read from the custody address pools, which stay the record of what the node watches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.outgoing import own_sweep_txids
from dpgnode.adapters.storage.sqltx import SqlTx
from dpgnode.domain.chains.blocks import BlockRef
from dpgnode.domain.chains.cursor import ChainCursor, Incident, IncidentKind
from dpgnode.domain.chains.payments import Payment, PaymentStatus, WatchedAddress
from dpgnode.errors import IntegrityError
from dpgnode.ports.uow import Tx

_cur = tables.chain_cursors
_blk = tables.chain_blocks
_pay = tables.chain_payments
_inc = tables.chain_incidents
_addr = tables.custody_addresses
_acct = tables.custody_accounts
_payouts = tables.custody_payouts
_EVM_SCHEME = "evm"
_SPENDS_SEPARATOR = " "


def _sql(tx: Tx) -> SqlTx:
    if not isinstance(tx, SqlTx):
        raise IntegrityError("chain storage needs the SQL writer's transaction")
    return tx


class SqlChainStore:
    """The chain watchers' tables (migration 0006)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- reads ------------------------------------------------------------------------------

    def cursor(self, chain: str) -> ChainCursor | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_cur).where(_cur.c.chain == chain)).mappings().first()
        return None if row is None else _cursor(row)

    def watched_addresses(
        self, family: str, network: str, after_id: int, limit: int
    ) -> Sequence[WatchedAddress]:
        scheme = _acct.c.scheme == _EVM_SCHEME
        condition = scheme if family == _EVM_SCHEME else and_(~scheme, _acct.c.network == network)
        query = (
            select(_addr.c.id, _addr.c.address, _addr.c.owner, _addr.c.reference)
            .join(_acct, _acct.c.id == _addr.c.account_id)
            .where(condition, _addr.c.id > after_id)
            .order_by(_addr.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [WatchedAddress(int(r.id), r.address, r.owner, r.reference)
                    for r in conn.execute(query)]

    def blocks(self, chain: str, above: int) -> Mapping[int, str]:
        query = select(_blk.c.height, _blk.c.hash).where(_blk.c.chain == chain,
                                                         _blk.c.height > above)
        with self._engine.connect() as conn:
            return {int(r.height): r.hash for r in conn.execute(query)}

    def payment(self, chain: str, key: str) -> Payment | None:
        query = select(_pay).where(_pay.c.chain == chain, _pay.c.payment_key == key)
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _payment(row)

    def payments(
        self, chain: str | None = None, *, status: PaymentStatus | None = None,
        address: str | None = None, txid: str | None = None, offset: int = 0, limit: int = 100,
    ) -> Sequence[Payment]:
        query = select(_pay)
        if chain is not None:
            query = query.where(_pay.c.chain == chain)
        if status is not None:
            query = query.where(_pay.c.status == str(status))
        if address is not None:
            query = query.where(_pay.c.address == address)
        if txid is not None:
            query = query.where(_pay.c.txid == txid)
        query = query.order_by(_pay.c.id.desc()).offset(offset).limit(limit)
        with self._engine.connect() as conn:
            return [_payment(row) for row in conn.execute(query).mappings()]

    def incidents(self, chain: str | None = None, *, open_only: bool = True) -> Sequence[Incident]:
        query = select(_inc)
        if chain is not None:
            query = query.where(_inc.c.chain == chain)
        if open_only:
            query = query.where(_inc.c.resolved_at.is_(None))
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(_inc.c.id.desc())).mappings().all()
        return [_incident(row) for row in rows]

    # -- inside a writer command ------------------------------------------------------------

    def cursor_in(self, tx: Tx, chain: str) -> ChainCursor | None:
        row = _sql(tx).execute(select(_cur).where(_cur.c.chain == chain)).mappings().first()
        return None if row is None else _cursor(row)

    def save_cursor(self, tx: Tx, cursor: ChainCursor) -> None:
        sql = _sql(tx)
        values = {"height": cursor.height, "hash": cursor.hash, "paused": cursor.paused,
                  "updated_at": cursor.updated_at}
        done = sql.execute(update(_cur).where(_cur.c.chain == cursor.chain).values(values))
        if done.rowcount == 0:
            sql.execute(insert(_cur).values(chain=cursor.chain, **values))

    def blocks_in(self, tx: Tx, chain: str, above: int) -> Mapping[int, str]:
        query = select(_blk.c.height, _blk.c.hash).where(_blk.c.chain == chain,
                                                         _blk.c.height > above)
        return {int(r.height): r.hash for r in _sql(tx).execute(query)}

    def add_block(self, tx: Tx, chain: str, block: BlockRef) -> None:
        sql = _sql(tx)
        sql.execute(delete(_blk).where(_blk.c.chain == chain, _blk.c.height == block.height))
        sql.execute(insert(_blk).values(chain=chain, height=block.height, hash=block.hash))

    def forget_blocks(self, tx: Tx, chain: str, *, above: int | None = None,
                      below: int | None = None) -> None:
        query = delete(_blk).where(_blk.c.chain == chain)
        if above is not None:
            query = query.where(_blk.c.height > above)
        if below is not None:
            query = query.where(_blk.c.height < below)
        _sql(tx).execute(query)

    def addresses_in(self, tx: Tx, addresses: Iterable[str]) -> Mapping[str, WatchedAddress]:
        wanted = sorted(set(addresses))
        found: dict[str, WatchedAddress] = {}
        for start in range(0, len(wanted), 500):
            query = select(_addr.c.id, _addr.c.address, _addr.c.owner, _addr.c.reference).where(
                _addr.c.address.in_(wanted[start:start + 500]))
            for r in _sql(tx).execute(query):
                found[r.address] = WatchedAddress(int(r.id), r.address, r.owner, r.reference)
        return found

    def payment_in(self, tx: Tx, chain: str, key: str) -> Payment | None:
        query = select(_pay).where(_pay.c.chain == chain, _pay.c.payment_key == key)
        row = _sql(tx).execute(query).mappings().first()
        return None if row is None else _payment(row)

    def payments_in(
        self, tx: Tx, chain: str, statuses: Iterable[PaymentStatus], *,
        mined_above: int | None = None,
    ) -> Sequence[Payment]:
        query = select(_pay).where(_pay.c.chain == chain,
                                   _pay.c.status.in_([str(s) for s in statuses]))
        if mined_above is not None:
            query = query.where(_pay.c.block_height > mined_above)
        rows = _sql(tx).execute(query.order_by(_pay.c.id)).mappings()
        return [_payment(row) for row in rows]

    def save_payment(self, tx: Tx, payment: Payment) -> None:
        sql = _sql(tx)
        values = _payment_row(payment)
        done = sql.execute(
            update(_pay)
            .where(_pay.c.chain == payment.chain, _pay.c.payment_key == payment.key)
            .values(values)
        )
        if done.rowcount == 0:
            sql.execute(insert(_pay).values(chain=payment.chain, payment_key=payment.key,
                                            **values))

    def own_txids_in(self, tx: Tx, txids: Iterable[str]) -> set[str]:
        wanted = sorted(set(txids))
        own: set[str] = set()
        for start in range(0, len(wanted), 500):
            query = select(_payouts.c.txid).where(_payouts.c.txid.in_(wanted[start:start + 500]))
            own.update(r.txid for r in _sql(tx).execute(query))
        own |= own_sweep_txids(tx, wanted)  # sweeps and gas top-ups (migration 0007)
        return own

    def add_incident(self, tx: Tx, incident: Incident) -> int:
        result = _sql(tx).execute(insert(_inc).values(
            chain=incident.chain, kind=str(incident.kind), message=incident.message,
            details=json.dumps(incident.details, sort_keys=True),
            created_at=incident.created_at, resolved_at=incident.resolved_at,
        ).returning(_inc.c.id))
        return int(result.scalar_one())

    def resolve_incidents(self, tx: Tx, chain: str, at: datetime) -> int:
        done = _sql(tx).execute(
            update(_inc).where(_inc.c.chain == chain, _inc.c.resolved_at.is_(None))
            .values(resolved_at=at)
        )
        return int(done.rowcount)


def _cursor(row: RowMapping) -> ChainCursor:
    return ChainCursor(row["chain"], int(row["height"]), row["hash"], row["updated_at"],
                       row["paused"])


def _incident(row: RowMapping) -> Incident:
    return Incident(
        row["chain"], IncidentKind(row["kind"]), row["message"], json.loads(row["details"]),
        row["created_at"], int(row["id"]), row["resolved_at"],
    )


def _payment_row(payment: Payment) -> dict[str, Any]:
    return {
        "txid": payment.txid, "address": payment.address, "asset": payment.asset,
        "units": payment.units, "owner": payment.owner, "reference": payment.reference,
        "spends": _SPENDS_SEPARATOR.join(payment.spends), "status": str(payment.status),
        "block_height": None if payment.block is None else payment.block.height,
        "block_hash": None if payment.block is None else payment.block.hash,
        "credit_key": payment.credit_key, "conflict_txid": payment.conflict_txid,
        "conflict_height": payment.conflict_height,
        "first_seen_at": payment.first_seen_at, "updated_at": payment.updated_at,
    }


def _payment(row: RowMapping) -> Payment:
    height = row["block_height"]
    block = None if height is None else BlockRef(int(height), row["block_hash"])
    spends = tuple(row["spends"].split(_SPENDS_SEPARATOR)) if row["spends"] else ()
    conflict_height = row["conflict_height"]
    return Payment(
        chain=row["chain"], key=row["payment_key"], txid=row["txid"], address=row["address"],
        asset=row["asset"], units=int(row["units"]), owner=row["owner"],
        reference=row["reference"], spends=spends, status=PaymentStatus(row["status"]),
        first_seen_at=row["first_seen_at"], updated_at=row["updated_at"], block=block,
        credit_key=row["credit_key"], conflict_txid=row["conflict_txid"],
        conflict_height=None if conflict_height is None else int(conflict_height),
    )
