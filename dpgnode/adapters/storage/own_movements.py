"""``OwnMovements`` over SQL: what the node's payouts, sweeps and gas top-ups moved per address.

Reconciliation (``services/chains/reconcile.py``) adds these to the ledger's credits to know
what each issued address should hold. Every own transaction that may be on chain (payouts
``signed`` to ``confirmed``; sweeps and top-ups not ``failed``) is reduced to one movement
per ``(address, asset)`` it touches at an address the node issued:

- Bitcoin, read from the signed bytes: each input takes the value of the output it spends
  (a credited deposit from ``chain_payments``, or an output of another own transaction)
  from that output's address; each output to an issued address (change) adds its value;
- EVM: the sender loses the amount and the fee in the chain's coin; an issued recipient (a
  topped-up deposit address) gains the amount.

``height`` is the block that mined the transaction (``mined`` and ``confirmed``), ``None``
while it is not mined, and also while an EVM fee is not read yet: a movement whose size is
not known is never guessed (the contract of the port), so reconciliation leaves the address
out of that run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bitcoin.core import CTransaction, b2lx  # type: ignore[import-untyped]
from sqlalchemy import Engine, select
from sqlalchemy.engine import RowMapping

from dpgnode.adapters.chains.rawtx import evm_fields
from dpgnode.adapters.storage import tables
from dpgnode.domain.chains.reconcile import OwnMovement
from dpgnode.domain.chains.sweeps import SweepStatus
from dpgnode.domain.custody.addresses import address_from_script
from dpgnode.domain.custody.evm import checksum_encode
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.payout import PayoutStatus
from dpgnode.domain.money import AssetKind, AssetRegistry
from dpgnode.errors import IntegrityError

_P = tables.custody_payouts
_S = tables.chain_sweeps
_IN = tables.chain_sweep_inputs
_PAY = tables.chain_payments
_ADDR = tables.custody_addresses
_BATCH = 500
_ON_CHAIN = [str(s) for s in PayoutStatus
             if s.on_chain or s is PayoutStatus.CONFIRMED]
_IN_BLOCK = {str(PayoutStatus.MINED), str(PayoutStatus.CONFIRMED)}


@dataclass(frozen=True, slots=True)
class _Own:
    """One own transaction as far as movements go."""

    txid: str
    asset: str
    units: int
    raw_tx: str
    height: int | None
    fee: int | None
    destination: str = ""
    sender: str = ""
    """EVM: the address paying (sweeps name it; payouts read it from the signature)."""


class SqlOwnMovements:
    """:class:`~dpgnode.ports.reconcile.OwnMovements` over payouts and sweeps (module doc)."""

    def __init__(self, engine: Engine, assets: AssetRegistry, network: Network) -> None:
        self._engine = engine
        self._assets = assets
        self._network = network

    def movements(self, chain: str) -> Sequence[OwnMovement]:
        """Every own transaction's net movement per issued address and asset."""
        codes = [c for c, a in self._assets.items() if a.network == chain]
        coins = [c for c in codes if self._assets[c].kind is AssetKind.CRYPTO]
        if not coins:
            return []
        own = self._own(chain, codes)
        if chain == "bitcoin":
            return self._bitcoin(chain, coins[0], own)
        return self._evm(coins[0], own)

    # -- reading -------------------------------------------------------------------------------

    def _own(self, chain: str, codes: Sequence[str]) -> list[_Own]:
        payouts = select(_P).where(_P.c.asset.in_(list(codes)), _P.c.status.in_(_ON_CHAIN),
                                   _P.c.raw_tx.is_not(None))
        sweeps = select(_S).where(_S.c.chain == chain,
                                  _S.c.status != str(SweepStatus.FAILED))
        senders = (select(_IN.c.sweep_id, _IN.c.address).join(_S, _S.c.id == _IN.c.sweep_id)
                   .where(_S.c.chain == chain, _IN.c.position == 0))
        with self._engine.connect() as conn:
            first_input = {r.sweep_id: r.address for r in conn.execute(senders)}
            found = [_Own(r["txid"] or "", r["asset"], int(r["units"]), r["raw_tx"], _height(r),
                          _int(r["fee_units"]), destination=r["destination"])
                     for r in conn.execute(payouts).mappings()]
            found += [_Own(r["txid"], r["asset"], int(r["units"]), r["raw_tx"], _height(r),
                           _int(r["fee_units"]), destination=r["to_address"],
                           sender=first_input.get(r["id"], ""))
                      for r in conn.execute(sweeps).mappings()]
        return found

    def _issued(self, addresses: Iterable[str]) -> dict[str, str]:
        """Lower-cased address -> the address as the node issued it, for those it issued."""
        wanted = sorted({a.lower() for a in addresses if a} | {a for a in addresses if a})
        found: dict[str, str] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), _BATCH):
                query = select(_ADDR.c.address).where(
                    _ADDR.c.address.in_(wanted[start:start + _BATCH]))
                found.update((r.address.lower(), r.address) for r in conn.execute(query))
        return found

    # -- Bitcoin -------------------------------------------------------------------------------

    def _bitcoin(self, chain: str, coin: str, own: Sequence[_Own]) -> list[OwnMovement]:
        parsed = {o.txid: _parse(o.raw_tx, o.txid) for o in own}
        outputs: dict[str, tuple[str, int]] = {}  # outpoint -> (address text, value)
        for txid, tx in parsed.items():
            for n, out in enumerate(tx.vout):
                address = address_from_script(bytes(out.scriptPubKey), self._network)
                if address is not None:
                    outputs[f"{txid}:{n}"] = (address, int(out.nValue))
        issued = self._issued(a for a, _ in outputs.values())
        spent = sorted({f"{b2lx(i.prevout.hash)}:{i.prevout.n}"
                        for tx in parsed.values() for i in tx.vin})
        deposits = self._deposits(chain, spent)
        net: dict[tuple[str, str], int] = defaultdict(int)
        for item in own:
            tx = parsed[item.txid]
            for txin in tx.vin:
                key = f"{b2lx(txin.prevout.hash)}:{txin.prevout.n}"
                source = deposits.get(key) or _issued_output(outputs.get(key), issued)
                if source is not None:
                    net[(item.txid, source[0])] -= source[1]
            for n in range(len(tx.vout)):
                found = _issued_output(outputs.get(f"{item.txid}:{n}"), issued)
                if found is not None:
                    net[(item.txid, found[0])] += found[1]
        heights = {o.txid: o.height for o in own}
        return [OwnMovement(address, coin, units, txid, heights[txid])
                for (txid, address), units in sorted(net.items())]

    def _deposits(self, chain: str, keys: Sequence[str]) -> dict[str, tuple[str, int]]:
        found: dict[str, tuple[str, int]] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(keys), _BATCH):
                query = select(_PAY.c.payment_key, _PAY.c.address, _PAY.c.units).where(
                    _PAY.c.chain == chain, _PAY.c.payment_key.in_(keys[start:start + _BATCH]))
                found.update((r.payment_key, (r.address, int(r.units)))
                             for r in conn.execute(query))
        return found

    # -- EVM -----------------------------------------------------------------------------------

    def _evm(self, coin: str, own: Sequence[_Own]) -> list[OwnMovement]:
        senders = {o.txid: o.sender or checksum_encode(evm_fields(o.raw_tx).sender)
                   for o in own}
        issued = self._issued([*senders.values(), *(o.destination for o in own)])
        net: dict[tuple[str, str, str], int] = defaultdict(int)
        known: dict[str, int | None] = {}
        for item in own:
            sender = issued.get(senders[item.txid].lower())
            fee_known = item.fee is not None
            known[item.txid] = item.height if (fee_known or item.height is None) else None
            if sender is not None:
                net[(item.txid, sender, item.asset)] -= item.units
                net[(item.txid, sender, coin)] -= item.fee or 0
            recipient = issued.get(item.destination.lower())
            if recipient is not None:
                net[(item.txid, recipient, item.asset)] += item.units
        return [OwnMovement(address, asset, units, txid, known[txid])
                for (txid, address, asset), units in sorted(net.items())]


def _height(row: RowMapping) -> int | None:
    height = row["block_height"]
    return int(height) if row["status"] in _IN_BLOCK and height is not None else None


def _int(value: int | str | None) -> int | None:
    return None if value is None else int(value)


def _issued_output(found: tuple[str, int] | None,
                   issued: dict[str, str]) -> tuple[str, int] | None:
    if found is None or found[0].lower() not in issued:
        return None
    return issued[found[0].lower()], found[1]


def _parse(raw_hex: str, txid: str) -> CTransaction:
    try:
        return CTransaction.deserialize(bytes.fromhex(raw_hex))
    except Exception as exc:  # python-bitcoinlib raises assorted types on bad bytes
        raise IntegrityError(f"the recorded transaction {txid} does not parse") from exc
