"""Ledger use cases: post, reverse, hold, capture, release.

Each use case is one command for the ``Writer``: it runs inside one durable transaction and
is idempotent by its key (a replay with the same content returns the original entry, a
replay with other content raises ``IdempotencyKeyReusedError``). Every entry emits a
``ledger.entry_posted`` event through the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dpgnode.domain import hold as holds
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.hold import Hold
from dpgnode.domain.ledger import (
    AccountKind,
    AccountRef,
    EntryDraft,
    EntryKind,
    JournalEntry,
    check_replay,
    reversal_draft,
    validate_draft,
)
from dpgnode.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
    ValidationError,
)
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.uow import Hints, Tx, Writer


@dataclass(frozen=True, slots=True)
class Posted:
    """An entry and whether this call created it (False: an idempotent replay)."""

    entry: JournalEntry
    created: bool


@dataclass(frozen=True, slots=True)
class HoldResult:
    """A hold after an operation, the entry it posted, and whether it is new."""

    hold: Hold
    entry: JournalEntry
    created: bool


def post_command(draft: EntryDraft) -> Callable[[Tx], Posted]:
    """The command that posts ``draft`` exactly once under its idempotency key.

    Raises:
        ValidationError: the draft is invalid, is not a plain transfer, or touches a
            ``held`` account (holds and reversals have their own use cases, which keep
            hold records and reversal links consistent with the postings).
    """
    validate_draft(draft)
    _ensure_plain_transfer(draft)

    def command(tx: Tx) -> Posted:
        existing = tx.entry_by_key(draft.idempotency_key)
        if existing is not None:
            check_replay(existing[1], draft)
            return Posted(existing[0], created=False)
        return Posted(post_entry(tx, draft), created=True)

    return command


def _ensure_plain_transfer(draft: EntryDraft) -> None:
    if draft.kind is not EntryKind.TRANSFER or draft.reverses is not None:
        raise ValidationError(
            "only transfers can be posted: use reverse, reserve, capture or release",
            field="kind",
        )
    for index, posting in enumerate(draft.postings):
        if posting.account.kind is AccountKind.HELD:
            raise ValidationError(
                "held accounts change only through reserve, capture and release",
                field=f"postings[{index}].account",
            )


def post_entry(tx: Tx, draft: EntryDraft) -> JournalEntry:
    """Post ``draft`` in the command's transaction, with its ``ledger.entry_posted`` event.

    Every service that posts inside its own writer command (trading, payouts) goes through
    here, so ledger subscribers see one event shape for every entry.

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


def _hints(draft: EntryDraft) -> Hints:
    return Hints((draft.idempotency_key,), tuple(p.account for p in draft.postings))


class LedgerService:
    """The ledger's write use cases over a ``Writer``."""

    def __init__(self, writer: Writer, ids: IdGenerator) -> None:
        self._writer = writer
        self._ids = ids

    def post(self, draft: EntryDraft) -> Posted:
        """Post ``draft`` once; a replay of its key returns the original entry."""
        return self._writer.run(post_command(draft), _hints(draft))

    async def post_async(self, draft: EntryDraft) -> Posted:
        """``post`` for event-loop callers."""
        return await self._writer.run_async(post_command(draft), _hints(draft))

    def reverse(self, entry_id: str, idempotency_key: str, memo: str = "") -> Posted:
        """Post the reversal of ``entry_id``; an entry can be reversed only once."""

        def command(tx: Tx) -> Posted:
            existing = tx.entry_by_key(idempotency_key)
            if existing is not None:
                if existing[0].reverses != entry_id:
                    raise IdempotencyKeyReusedError(
                        "idempotency key was already used for a different entry",
                        details={"idempotency_key": idempotency_key},
                    )
                return Posted(existing[0], created=False)
            original = tx.entry_by_id(entry_id)
            if original is None:
                raise NotFoundError(f"no entry {entry_id}", details={"field": "entry_id"})
            if tx.reversal_of(entry_id) is not None:
                raise ConflictError(f"entry {entry_id} is already reversed")
            return Posted(post_entry(tx, reversal_draft(original, idempotency_key, memo)), True)

        return self._writer.run(command, Hints((idempotency_key,)))

    def reserve(
        self, account: AccountRef, units: int, idempotency_key: str, memo: str = ""
    ) -> HoldResult:
        """Put ``units`` of ``account`` on hold (for an order or a payout)."""
        if units <= 0:
            raise ValidationError("hold amount must be positive", field="amount")
        hold = Hold(id=self._ids.new("hold"), account=account, amount=units)
        draft = holds.reserve_draft(hold, idempotency_key, memo)

        def command(tx: Tx) -> HoldResult:
            existing = tx.entry_by_key(idempotency_key)
            if existing is not None:
                entry = existing[0]
                previous = tx.hold(entry.metadata.get("hold_id", ""))
                replay = holds.reserve_draft(
                    Hold(entry.metadata.get("hold_id", ""), account, units), idempotency_key, memo
                )
                check_replay(existing[1], replay)
                if previous is None:
                    raise ConflictError("idempotency key belongs to an entry without a hold")
                return HoldResult(previous, entry, created=False)
            entry = post_entry(tx, draft)
            tx.save_hold(hold)
            return HoldResult(hold, entry, created=True)

        return self._writer.run(command, Hints((idempotency_key,), (account, hold.held_account)))

    def capture(
        self,
        hold_id: str,
        units: int,
        destination: AccountRef,
        idempotency_key: str,
        memo: str = "",
    ) -> HoldResult:
        """Move ``units`` of an open hold to ``destination``."""

        def command(tx: Tx) -> HoldResult:
            hold = _existing_hold(tx, hold_id)
            replayed = _replayed(tx, idempotency_key, hold_id, EntryKind.CAPTURE)
            if replayed is not None:
                check_replay(
                    replayed[1],
                    holds.capture_draft(hold, units, destination, idempotency_key, memo),
                )
                return HoldResult(hold, replayed[0], created=False)
            updated, draft = holds.capture(hold, units, destination, idempotency_key, memo)
            entry = post_entry(tx, draft)
            tx.save_hold(updated)
            return HoldResult(updated, entry, created=True)

        return self._writer.run(command, Hints((idempotency_key,)))

    def release(self, hold_id: str, idempotency_key: str, memo: str = "") -> HoldResult:
        """Return what remains of a hold to its account."""

        def command(tx: Tx) -> HoldResult:
            hold = _existing_hold(tx, hold_id)
            replayed = _replayed(tx, idempotency_key, hold_id, EntryKind.RELEASE)
            if replayed is not None:
                return HoldResult(hold, replayed[0], created=False)
            updated, draft = holds.release(hold, idempotency_key, memo)
            entry = post_entry(tx, draft)
            tx.save_hold(updated)
            return HoldResult(updated, entry, created=True)

        return self._writer.run(command, Hints((idempotency_key,)))


def _existing_hold(tx: Tx, hold_id: str) -> Hold:
    hold = tx.hold(hold_id)
    if hold is None:
        raise NotFoundError(f"no hold {hold_id}", details={"field": "hold_id"})
    return hold


def _replayed(
    tx: Tx, idempotency_key: str, hold_id: str, kind: EntryKind
) -> tuple[JournalEntry, str] | None:
    """The entry a replayed hold operation created, refusing a key used elsewhere.

    The key must have been used for the same operation (``kind``) on the same hold: a
    release replayed under the key of the hold's reserve must not pass for a release.
    """
    existing = tx.entry_by_key(idempotency_key)
    if existing is None:
        return None
    if existing[0].metadata.get("hold_id") != hold_id or existing[0].kind is not kind:
        raise IdempotencyKeyReusedError(
            "idempotency key was already used for a different entry",
            details={"idempotency_key": idempotency_key},
        )
    return existing
