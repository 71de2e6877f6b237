"""Payments to issued addresses, and the rules that move them between states.

A payment is one :class:`~dpgnode.domain.chains.blocks.Transfer` the node has seen. Its state
is a function of the best chain and the mempool, never of the order things were noticed in:

- ``pending``: unconfirmed (in the mempool, or dropped from a block by a reorganisation and
  not seen mined again);
- ``confirming``: in the best chain with fewer confirmations than the policy needs;
- ``credited``: in the best chain at the policy's depth; exactly one live ledger entry credits
  it, keyed by the payment and the block that carried it, so a replay posts nothing and a
  payment mined again in another block after a reorg is credited again under a new key only
  after the first credit was reversed;
- ``unaccounted``: a conflicting transaction (a replacement or a double spend) is in the best
  chain or the mempool, or the transaction spends the output of one that is unaccounted.

A reorganisation deeper than the chain's ``reorg_limit`` is not undone: it would rewrite history
the node treated as settled, so it is an incident that pauses the chain (RELIABILITY R9).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from dpgnode.domain.chains.blocks import BlockRef, ChainTx, Transfer
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, OwnerType, Posting
from dpgnode.errors import ValidationError

UNASSIGNED_OWNER = "operator:unassigned"
"""Who is credited for an address issued without an owner (``operator`` deposits)."""
CHAIN_WORLD_OWNER = "chain"
"""Owner id of the ``operator:chain:<ASSET>:world`` accounts deposits come from."""


class PaymentStatus(StrEnum):
    """Where a payment stands (see the module docstring)."""

    PENDING = "pending"
    CONFIRMING = "confirming"
    CREDITED = "credited"
    UNACCOUNTED = "unaccounted"


@dataclass(frozen=True, slots=True)
class WatchedAddress:
    """An issued address the watchers follow, and whom a payment to it credits."""

    id: int
    """Issue order (the pool's row id): watchers load new addresses past the last one."""
    address: str
    owner: str = ""
    """``owner_type:owner_id`` to credit; empty: the operator's unassigned deposits."""
    reference: str = ""


@dataclass(frozen=True, slots=True)
class Payment:
    """A transfer to an issued address, as the node tracks it."""

    chain: str
    key: str
    txid: str
    address: str
    asset: str
    units: int
    owner: str
    """``owner_type:owner_id`` credited for the payment (``store:st_1``)."""
    reference: str
    """What the address was issued for (an invoice id), as the address pool recorded it."""
    spends: tuple[str, ...]
    """Conflict keys of the paying transaction."""
    status: PaymentStatus
    first_seen_at: datetime
    updated_at: datetime
    block: BlockRef | None = None
    credit_key: str | None = None
    """Idempotency key of the live credit entry (set iff ``credited``)."""
    conflict_txid: str | None = None
    """The transaction that made this one unaccounted."""
    conflict_height: int | None = None
    """Height of the block that mined ``conflict_txid``; ``None`` while it is unconfirmed."""

    def __post_init__(self) -> None:
        if type(self.units) is not int or self.units <= 0:
            raise ValidationError("a payment moves a positive amount", field="units")
        if (self.credit_key is not None) != (self.status is PaymentStatus.CREDITED):
            raise ValidationError("only a credited payment has a credit", field="credit_key")
        in_block = self.status in (PaymentStatus.CONFIRMING, PaymentStatus.CREDITED)
        if in_block != (self.block is not None):
            raise ValidationError("only a mined payment has a block", field="block")


@dataclass(frozen=True, slots=True)
class ConfirmationPolicy:
    """When a chain's payments are credited, and how deep a reorg may be undone."""

    confirmations: int
    """Depth needed (1: in a block); ignored when ``finalized``."""
    reorg_limit: int
    finalized: bool = False
    """Credit only at or below the chain's own finalized height (EVM ``finalized`` tag)."""

    def __post_init__(self) -> None:
        if self.confirmations < 1:
            raise ValidationError("confirmations must be at least 1", field="confirmations")
        if self.reorg_limit < 1:
            raise ValidationError("reorg_limit must be at least 1", field="reorg_limit")

    def is_final(self, block_height: int, tip_height: int, finalized_height: int | None) -> bool:
        """Whether a payment mined at ``block_height`` has reached the policy."""
        if self.finalized:
            return finalized_height is not None and block_height <= finalized_height
        return confirmations(block_height, tip_height) >= self.confirmations


def confirmations(block_height: int, tip_height: int) -> int:
    """Confirmations of a block at ``block_height`` under ``tip_height`` (1 at the tip)."""
    return max(0, tip_height - block_height + 1)


def new_payment(
    chain: str, transfer: Transfer, tx: ChainTx, address: WatchedAddress, at: datetime,
    block: BlockRef | None = None,
) -> Payment:
    """A payment first seen in the mempool (``block=None``) or in a block."""
    status = PaymentStatus.PENDING if block is None else PaymentStatus.CONFIRMING
    return Payment(
        chain, transfer.key, transfer.txid, transfer.address, transfer.asset, transfer.units,
        address.owner or UNASSIGNED_OWNER, address.reference, tx.spends, status, at, at, block,
    )


def mined(payment: Payment, block: BlockRef, at: datetime) -> Payment:
    """``payment`` seen in ``block`` of the best chain (not yet at the policy's depth)."""
    if payment.status is PaymentStatus.CREDITED and payment.block == block:
        return payment
    return replace(payment, status=PaymentStatus.CONFIRMING, block=block, credit_key=None,
                   conflict_txid=None, updated_at=at)


def unmined(payment: Payment, at: datetime) -> Payment:
    """``payment`` whose block left the best chain: pending again until seen mined."""
    return replace(payment, status=PaymentStatus.PENDING, block=None, credit_key=None,
                   updated_at=at)


def unaccounted(
    payment: Payment, conflict_txid: str, at: datetime, conflict_height: int | None = None
) -> Payment:
    """``payment`` whose transaction lost to ``conflict_txid`` (mined at ``conflict_height``)."""
    return replace(payment, status=PaymentStatus.UNACCOUNTED, block=None, credit_key=None,
                   conflict_txid=conflict_txid, conflict_height=conflict_height, updated_at=at)


def restored(payment: Payment, at: datetime) -> Payment:
    """An unaccounted payment whose conflict left the chain and mempool: pending again."""
    return replace(payment, status=PaymentStatus.PENDING, conflict_txid=None,
                   conflict_height=None, updated_at=at)


def credited(payment: Payment, key: str, at: datetime) -> Payment:
    """``payment`` at the policy's depth, credited by the entry keyed ``key``."""
    if payment.block is None:
        raise ValidationError("only a mined payment can be credited", field="block")
    return replace(payment, status=PaymentStatus.CREDITED, credit_key=key, updated_at=at)


def credit_key(chain: str, payment_key: str, block_hash: str, generation: int = 0) -> str:
    """Idempotency key of the credit of ``payment_key`` as mined in ``block_hash``.

    ``generation`` counts earlier credits of the same payment in the same block that were
    reversed: a chain can reorganise away from a block and back to it (``reconsiderblock``),
    and the payment must then be credited again, under a key not used before.
    """
    base = f"chain:{chain}:{payment_key}@{block_hash}"
    return base if generation == 0 else f"{base}/{generation}"


def reversal_key(key: str) -> str:
    """Idempotency key of the entry reversing the credit keyed ``key``."""
    return f"reverse:{key}"


def owner_account(owner: str, asset: str) -> AccountRef:
    """The ``available`` account credited for a payment to an address of ``owner``."""
    owner_type, _, owner_id = owner.partition(":")
    try:
        kind = OwnerType(owner_type)
    except ValueError:
        raise ValidationError(f"invalid owner {owner[:80]!r}", field="owner") from None
    return AccountRef.parse(f"{kind}:{owner_id}:{asset}:{AccountKind.AVAILABLE}", field="owner")


def world_account(asset: str) -> AccountRef:
    """Where deposits of ``asset`` come from: the chain itself, as the ledger sees it."""
    return AccountRef(OwnerType.OPERATOR, CHAIN_WORLD_OWNER, asset, AccountKind.WORLD)


def credit_draft(payment: Payment) -> EntryDraft:
    """The journal entry crediting a payment to its owner."""
    if payment.credit_key is None or payment.block is None:
        raise ValidationError("the payment is not credited", field="status")
    return EntryDraft(
        idempotency_key=payment.credit_key,
        postings=(
            Posting(world_account(payment.asset), -payment.units),
            Posting(owner_account(payment.owner, payment.asset), payment.units),
        ),
        memo=f"{payment.chain} payment {payment.key} in block {payment.block.height}",
        metadata={"chain": payment.chain, "payment": payment.key, "txid": payment.txid,
                  "address": payment.address, "block": payment.block.hash},
    )


def conflicts(
    payments: Iterable[Payment], spent: Mapping[str, str]
) -> dict[str, str]:
    """Payment key -> txid of the transaction that beat it, for each payment that lost.

    A payment loses when another transaction uses one of its conflict keys.
    """
    found: dict[str, str] = {}
    for payment in payments:
        for spend in payment.spends:
            other = spent.get(spend)
            if other is not None and other != payment.txid:
                found[payment.key] = other
                break
    return found


def descendants(payments: Iterable[Payment], lost_txids: set[str]) -> dict[str, str]:
    """Payment key -> lost ancestor txid for payments spending outputs of a lost transaction.

    A conflict key ``txid:n`` names an output of ``txid`` (Bitcoin); EVM keys name a sender
    and nonce and never match a txid. Applied until nothing changes, so grandchildren follow.
    Payments already unaccounted are found too: the watcher re-evaluates conflicts at every
    poll, and a descendant left out would look as if its conflict had gone and be restored
    while its ancestor is still lost (it would flap between pending and unaccounted).
    """
    candidates = list(payments)
    lost = set(lost_txids)
    found: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for payment in candidates:
            if payment.key in found:
                continue
            for spend in payment.spends:
                parent = spend.rpartition(":")[0]
                if parent in lost:
                    found[payment.key] = parent
                    lost.add(payment.txid)
                    changed = True
                    break
    return found


def beaten(
    candidates: Sequence[Payment], spent: Mapping[str, str], present: frozenset[str] | None
) -> dict[str, str]:
    """Payment key -> what beat it.

    A conflicting transaction, or (with a complete mempool) the cause named for a
    transaction that vanished from it.
    """
    found = conflicts(candidates, spent)
    if present is not None:
        for payment in candidates:
            if payment.key not in found and payment.txid not in present:
                found[payment.key] = vanished_because(payment)
    return found


def vanished_because(payment: Payment) -> str:
    """The conflict named for a payment gone from the mempool without a visible one.

    Its unconfirmed parent when it spent one (the usual cause: the parent was replaced),
    else the payment's own transaction.
    """
    for spend in payment.spends:
        parent = spend.rpartition(":")[0]
        if parent:
            return parent
    return payment.txid


def payment_payload(
    payment: Payment, our_height: int | None = None
) -> dict[str, str | int | None]:
    """What events and the API say about a payment (amounts as decimal strings of units)."""
    payload: dict[str, str | int | None] = {
        "chain": payment.chain, "paymentKey": payment.key, "txid": payment.txid,
        "address": payment.address, "asset": payment.asset, "units": str(payment.units),
        "owner": payment.owner, "reference": payment.reference, "status": str(payment.status),
        "blockHeight": None if payment.block is None else payment.block.height,
        "blockHash": None if payment.block is None else payment.block.hash,
        "conflictTxid": payment.conflict_txid,
    }
    if our_height is not None and payment.block is not None:
        payload["confirmations"] = our_height - payment.block.height + 1
    return payload

