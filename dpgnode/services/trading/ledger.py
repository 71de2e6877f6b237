"""Trading's use of the ledger: users' accounts and posting an entry inside a command."""

from __future__ import annotations

from dpgnode.domain.events import DomainEvent
from dpgnode.domain.ledger import AccountKind, AccountRef, EntryDraft, JournalEntry, OwnerType
from dpgnode.ports.uow import Tx


def user_account(user_id: str, asset: str, kind: AccountKind = AccountKind.AVAILABLE) -> AccountRef:
    """The trading user's account of ``kind`` in ``asset`` (ledger owner ``user:<id>``)."""
    return AccountRef(OwnerType.USER, user_id, asset, kind)


def post_entry(tx: Tx, draft: EntryDraft) -> JournalEntry:
    """Post ``draft`` in the command's transaction with its ``ledger.entry_posted`` event.

    The event has the same shape as the ledger service's, so ledger subscribers see trading
    entries like any other.

    Raises:
        InsufficientFundsError: a posting would overdraw an account that forbids it.
    """
    entry = tx.post(draft)
    tx.emit(
        DomainEvent(
            type="ledger.entry_posted",
            aggregate="ledger",
            payload={
                "entryId": entry.id,
                "seq": entry.seq,
                "kind": str(entry.kind),
                "idempotencyKey": entry.idempotency_key,
                "postings": [
                    {"account": p.account.code, "units": str(p.units)} for p in entry.postings
                ],
            },
        )
    )
    return entry
