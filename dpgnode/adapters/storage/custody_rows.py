"""Custody rows to domain objects and back, explicitly (no ORM mapping of value objects)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from dpgnode.domain.chains.blocks import BlockRef
from dpgnode.domain.custody.audit import AuditRecord
from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.operator import Operator
from dpgnode.domain.custody.payout import Payout, PayoutStatus
from dpgnode.domain.custody.wallet import IssuedAddress, KeyAccount, Keychain, KeychainKind, Scheme
from dpgnode.domain.ledger import AccountRef


def keychain_row(k: Keychain) -> dict[str, Any]:
    return {
        "id": k.id, "label": k.label, "kind": str(k.kind), "network": str(k.network),
        "sealed_seed": k.sealed_seed, "fingerprint": k.fingerprint, "created_at": k.created_at,
    }


def keychain(row: RowMapping) -> Keychain:
    return Keychain(
        id=row["id"], label=row["label"], kind=KeychainKind(row["kind"]),
        network=Network(row["network"]), created_at=row["created_at"],
        sealed_seed=row["sealed_seed"], fingerprint=row["fingerprint"],
    )


def account_row(a: KeyAccount) -> dict[str, Any]:
    return {
        "id": a.id, "keychain_id": a.keychain_id, "scheme": str(a.scheme),
        "network": str(a.network), "account": a.account, "path": a.path, "xpub": a.xpub,
        "next_index": a.next_index, "next_change_index": a.next_change_index,
        "last_used_index": a.last_used_index, "created_at": a.created_at,
    }


def account(row: RowMapping) -> KeyAccount:
    return KeyAccount(
        id=row["id"], keychain_id=row["keychain_id"], scheme=Scheme(row["scheme"]),
        network=Network(row["network"]), account=int(row["account"]), path=row["path"],
        xpub=row["xpub"], created_at=row["created_at"], next_index=int(row["next_index"]),
        next_change_index=int(row["next_change_index"]),
        last_used_index=int(row["last_used_index"]),
    )


def address(row: RowMapping) -> IssuedAddress:
    return IssuedAddress(
        account_id=row["account_id"], branch=int(row["branch"]),
        index=int(row["address_index"]), address=row["address"],
        issued_at=row["issued_at"], reference=row["reference"], used_at=row["used_at"],
        owner=row["owner"],
    )


def replace_used(address: IssuedAddress, at: datetime) -> IssuedAddress:
    return dataclasses.replace(address, used_at=at)


def operator(row: RowMapping) -> Operator:
    return Operator(
        id=row["id"], name=row["name"], token_hash=row["token_hash"],
        created_at=row["created_at"], disabled_at=row["disabled_at"],
    )


def payout_row(p: Payout) -> dict[str, Any]:
    return {
        "id": p.id, "asset": p.asset, "units": p.units, "destination": p.destination,
        "debit_account": p.debit_account.code, "hold_id": p.hold_id, "source": p.source,
        "requested_by": p.requested_by, "approvals_required": p.approvals_required,
        "status": str(p.status), "memo": p.memo, "request_key": p.request_key,
        "raw_tx": p.raw_tx, "txid": p.txid, "failure": p.failure,
        "created_at": p.created_at, "updated_at": p.updated_at,
        "fee_units": p.fee_units, "spends": SPENDS_SEPARATOR.join(p.spends),
        "block_height": None if p.block is None else p.block.height,
        "block_hash": None if p.block is None else p.block.hash,
        "conflict_txid": p.conflict_txid, "conflict_height": p.conflict_height,
        "sent_at": p.sent_at,
    }


def payout(row: RowMapping) -> Payout:
    return Payout(
        id=row["id"], asset=row["asset"], units=int(row["units"]),
        destination=row["destination"], debit_account=AccountRef.parse(row["debit_account"]),
        hold_id=row["hold_id"], source=row["source"], requested_by=row["requested_by"],
        approvals_required=int(row["approvals_required"]), status=PayoutStatus(row["status"]),
        request_key=row["request_key"], created_at=row["created_at"],
        updated_at=row["updated_at"], memo=row["memo"], raw_tx=row["raw_tx"], txid=row["txid"],
        failure=row["failure"],
        fee_units=None if row["fee_units"] is None else int(row["fee_units"]),
        spends=split_spends(row["spends"]), block=block_ref(row),
        conflict_txid=row["conflict_txid"],
        conflict_height=None if row["conflict_height"] is None else int(row["conflict_height"]),
        sent_at=row["sent_at"],
    )


SPENDS_SEPARATOR = " "
"""Conflict keys are stored space-separated (as the chain payments keep them)."""


def split_spends(text: str | None) -> tuple[str, ...]:
    """The conflict keys a ``spends`` column holds."""
    return tuple(text.split(SPENDS_SEPARATOR)) if text else ()


def block_ref(row: RowMapping) -> BlockRef | None:
    """The ``block_height``/``block_hash`` pair of a row, if set."""
    height = row["block_height"]
    return None if height is None else BlockRef(int(height), row["block_hash"])


def audit(row: RowMapping) -> AuditRecord:
    return AuditRecord(
        seq=int(row["seq"]), id=row["id"], at=row["at"], actor=row["actor"],
        action=row["action"], subject=row["subject"], result=row["result"], rule=row["rule"],
        details=json.loads(row["details"]), prev_hash=row["prev_hash"], hash=row["hash"],
    )
