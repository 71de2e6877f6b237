"""What reconciliation and the blockchain API read of the ledger, over SQL.

- :class:`SqlChainLedger` reads credited payments joined to the journal entries keyed by
  their credit keys (what the ledger actually posted, not what the payment row claims),
  keeps the mismatch incidents, and finds payouts by txid;
- :class:`PayoutMovements` is the interim reader of what the node's own transactions moved
  at its addresses (the ``OwnMovements`` port): it reads signed payouts' raw transactions.
  It knows neither fees nor the heights that mined them (payout confirmation records them
  later), so every address a payout spent from is reported with ``height=None``: left out of
  the comparison, never guessed. Sweeps and confirmed payouts extend it with exact movements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Engine, and_, select, update
from sqlalchemy.orm import aliased

from dpgnode.adapters.chains.rawtx import bitcoin_outpoints, evm_fields
from dpgnode.adapters.storage import tables
from dpgnode.adapters.storage.chains import _incident, _sql
from dpgnode.adapters.storage.custody_rows import payout as payout_from_row
from dpgnode.domain.chains.cursor import Incident, IncidentKind
from dpgnode.domain.chains.payments import CHAIN_WORLD_OWNER, PaymentStatus
from dpgnode.domain.chains.reconcile import Holding, LedgerCredit, OwnMovement
from dpgnode.domain.custody.evm import checksum_encode
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.ledger import AccountKind, OwnerType
from dpgnode.domain.money import AssetKind, AssetRegistry
from dpgnode.errors import IntegrityError
from dpgnode.ports.uow import Tx

_pay = tables.chain_payments
_inc = tables.chain_incidents
_journal = tables.journal
_postings = tables.postings
_accounts = tables.accounts
_payouts = tables.custody_payouts
_BATCH = 500
_OFF_CHAIN = (PayoutStatus.PENDING_APPROVAL, PayoutStatus.SIGNING, PayoutStatus.CANCELLED,
              PayoutStatus.FAILED)
"""Payout states whose transaction is not (or no longer) on its way to the chain; every
other state with a signed transaction may be on chain (a signed one may be broadcast any
time, a mined or confirmed one is)."""


class _Signed(NamedTuple):
    asset: str
    units: int
    raw_tx: str
    txid: str


class SqlChainLedger:
    """``LedgerHoldings`` and ``ReconcileIncidents`` over the node's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def credits(self, chain: str, *, address: str | None = None) -> Sequence[LedgerCredit]:
        entry = aliased(_journal, name="entry")
        reversal = aliased(_journal, name="reversal")
        world = aliased(_accounts, name="world")
        query = (
            select(_pay.c.asset, _pay.c.address, _pay.c.payment_key, _pay.c.block_height,
                   _pay.c.units, _postings.c.units.label("posted"),
                   reversal.c.seq.label("reversed"))
            .select_from(_pay)
            .outerjoin(entry, entry.c.idempotency_key == _pay.c.credit_key)
            .outerjoin(reversal, reversal.c.reverses == entry.c.id)
            .outerjoin(world, and_(world.c.owner_type == str(OwnerType.OPERATOR),
                                   world.c.owner_id == CHAIN_WORLD_OWNER,
                                   world.c.asset == _pay.c.asset,
                                   world.c.kind == str(AccountKind.WORLD)))
            .outerjoin(_postings, and_(_postings.c.entry_seq == entry.c.seq,
                                       _postings.c.account_id == world.c.id))
            .where(_pay.c.chain == chain, _pay.c.status == str(PaymentStatus.CREDITED))
            .order_by(_pay.c.id)
        )
        if address is not None:
            query = query.where(_pay.c.address == address)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        found: list[LedgerCredit] = []
        for row in rows:
            posted = None if row.posted is None or row.reversed is not None else -int(row.posted)
            if row.block_height is None:
                raise IntegrityError(f"credited payment {row.payment_key} has no block")
            found.append(LedgerCredit(row.asset, row.address, row.payment_key,
                                      int(row.block_height), int(row.units), posted))
        return found

    def holdings(self, chain: str, *, address: str | None = None) -> Sequence[Holding]:
        query = select(_pay.c.asset, _pay.c.address).where(_pay.c.chain == chain).distinct()
        if address is not None:
            query = query.where(_pay.c.address == address)
        with self._engine.connect() as conn:
            return [(r.asset, r.address) for r in conn.execute(query)]

    def confirming(self, chain: str, at_or_below: int) -> Sequence[Holding]:
        query = select(_pay.c.asset, _pay.c.address).where(
            _pay.c.chain == chain, _pay.c.status == str(PaymentStatus.CONFIRMING),
            _pay.c.block_height <= at_or_below,
        ).distinct()
        with self._engine.connect() as conn:
            return [(r.asset, r.address) for r in conn.execute(query)]

    def open_incidents_in(self, tx: Tx, chain: str, kind: IncidentKind) -> Sequence[Incident]:
        query = select(_inc).where(_inc.c.chain == chain, _inc.c.kind == str(kind),
                                   _inc.c.resolved_at.is_(None)).order_by(_inc.c.id.desc())
        return [_incident(row) for row in _sql(tx).execute(query).mappings()]

    def resolve_incident(self, tx: Tx, incident_id: int, at: datetime) -> bool:
        done = _sql(tx).execute(
            update(_inc).where(_inc.c.id == incident_id, _inc.c.resolved_at.is_(None))
            .values(resolved_at=at)
        )
        return bool(done.rowcount)

    def payouts_with_txid(self, txid: str) -> Sequence[Payout]:
        """Payouts whose signed transaction has this id (any state)."""
        query = select(_payouts).where(_payouts.c.txid == txid).order_by(_payouts.c.created_at)
        with self._engine.connect() as conn:
            return [payout_from_row(row) for row in conn.execute(query).mappings()]


class PayoutMovements:
    """Interim ``OwnMovements``: addresses signed payouts spend from, at unknown heights."""

    def __init__(self, engine: Engine, assets: AssetRegistry) -> None:
        self._engine = engine
        self._assets = assets

    def movements(self, chain: str) -> Sequence[OwnMovement]:
        codes = [code for code, asset in self._assets.items() if asset.network == chain]
        if not codes:
            return []
        query = select(
            _payouts.c.asset, _payouts.c.units, _payouts.c.raw_tx, _payouts.c.txid
        ).where(
            _payouts.c.asset.in_(codes), _payouts.c.status.not_in([str(s) for s in _OFF_CHAIN]),
            _payouts.c.raw_tx.is_not(None),
        )
        with self._engine.connect() as conn:
            rows = [_Signed(r.asset, int(r.units), r.raw_tx, r.txid or "")
                    for r in conn.execute(query)]
        if chain == "bitcoin":
            return self._bitcoin(chain, rows)
        native = [code for code in codes if self._assets[code].kind is AssetKind.CRYPTO]
        return [moved for row in rows for moved in self._evm(row, native)]

    def _bitcoin(self, chain: str, rows: Sequence[_Signed]) -> list[OwnMovement]:
        spent: dict[str, str] = {}
        for row in rows:
            for txid, vout in bitcoin_outpoints(row.raw_tx):
                spent[f"{txid}:{vout}"] = row.txid
        keys = sorted(spent)
        found: list[OwnMovement] = []
        with self._engine.connect() as conn:
            for start in range(0, len(keys), _BATCH):
                query = select(
                    _pay.c.payment_key, _pay.c.address, _pay.c.asset, _pay.c.units
                ).where(_pay.c.chain == chain,
                        _pay.c.payment_key.in_(keys[start:start + _BATCH]))
                found.extend(
                    OwnMovement(r.address, r.asset, -int(r.units), spent[r.payment_key])
                    for r in conn.execute(query)
                )
        return found

    @staticmethod
    def _evm(row: _Signed, native: Sequence[str]) -> list[OwnMovement]:
        sender = checksum_encode(evm_fields(row.raw_tx).sender)
        moved = [OwnMovement(sender, row.asset, -row.units, row.txid)]
        # The sender paid gas in the native coin; how much is known only once it is mined.
        moved += [OwnMovement(sender, code, 0, row.txid) for code in native
                  if code != row.asset]
        return moved
