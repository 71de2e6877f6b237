"""One write transaction shared by a batch of commands (the ``Tx`` port over SQL).

Ledger rows (accounts, journal, postings, holds, outbox events) are buffered in memory and
written with one ``executemany`` per table when the batch flushes: that is what makes group
commit cheap (TigerBeetle's prefetch-validate-apply). Each command keeps an undo log, so a
command that raises leaves no trace in the buffers; the rare raw statements (stores, API
keys) run inside a savepoint the command opens on first use.

Invariants checked before the batch commits: the batch's postings sum to zero per asset and
the hash chain continues from the stored head.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.engine import NestedTransaction

from dpgnode.adapters.storage import mappers, tables
from dpgnode.domain.access import ApiKey
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.hold import Hold
from dpgnode.domain.ledger import (
    Account,
    AccountRef,
    EntryDraft,
    JournalEntry,
    Posting,
    apply_posting,
    chain_hash,
    validate_draft,
)
from dpgnode.domain.store import Store
from dpgnode.errors import ensure
from dpgnode.ports.clock import Clock
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.uow import Hints

_UPDATE_BALANCE = (
    update(tables.accounts)
    .where(tables.accounts.c.id == bindparam("b_id"))
    .values(balance=bindparam("b_balance"), version=bindparam("b_version"))
)


class SqlTx:
    """The ``Tx`` port for one batch; see the module docstring."""

    def __init__(self, conn: Connection, ids: IdGenerator, clock: Clock) -> None:
        self._conn = conn
        self._ids = ids
        self._clock = clock
        head = conn.execute(
            select(tables.ledger_head.c.seq, tables.ledger_head.c.hash)
            .where(tables.ledger_head.c.id == 1)
            .with_for_update()
        ).one()
        self._start_seq = self._head_seq = int(head.seq)
        self._head_hash: str = head.hash
        self._accounts: dict[AccountRef, Account] = {}
        self._new_accounts: dict[AccountRef, Account] = {}
        self._next_account_id: int | None = None
        self._keys: dict[str, tuple[JournalEntry, str] | None] = {}
        self._entries: list[JournalEntry] = []
        self._posting_rows: list[dict[str, Any]] = []
        self._event_rows: list[dict[str, Any]] = []
        self._holds: dict[str, Hold] = {}
        self._new_holds: set[str] = set()
        self._dirty_holds: set[str] = set()
        self._undo: list[Callable[[], None]] = []
        self._savepoint: NestedTransaction | None = None

    # -- command boundaries -------------------------------------------------------------

    def begin_command(self) -> None:
        self._undo = []
        self._savepoint = None

    def end_command(self) -> None:
        if self._savepoint is not None:
            self._savepoint.commit()
        self._savepoint = None

    def rollback_command(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo = []
        if self._savepoint is not None:
            self._savepoint.rollback()
        self._savepoint = None

    def _raw(self) -> Connection:
        """The connection for an unbuffered write, inside this command's savepoint."""
        if self._savepoint is None:
            self._savepoint = self._conn.begin_nested()
        return self._conn

    # -- prefetch ----------------------------------------------------------------------

    def prefetch(self, hints: Iterable[Hints]) -> None:
        """Load every hinted account and idempotency key with one query each."""
        keys: set[str] = set()
        refs: set[AccountRef] = set()
        for hint in hints:
            keys.update(hint.idempotency_keys)
            refs.update(hint.accounts)
        refs.difference_update(self._accounts)
        if refs:
            rows = self._conn.execute(
                select(tables.accounts).where(tables.accounts.c.code.in_([r.code for r in refs]))
            ).mappings()
            for row in rows:
                acc = mappers.account(row)
                self._accounts[acc.ref] = acc
        keys.difference_update(self._keys)
        if keys:
            found = self._load_entries(tables.journal.c.idempotency_key.in_(sorted(keys)))
            for key in keys:
                self._keys[key] = found.get(key)

    # -- accounts ----------------------------------------------------------------------

    def account(self, ref: AccountRef) -> Account | None:
        cached = self._accounts.get(ref)
        if cached is not None:
            return cached
        row = self._conn.execute(
            select(tables.accounts).where(tables.accounts.c.code == ref.code)
        ).mappings().first()
        if row is None:
            return None
        acc = mappers.account(row)
        self._accounts[ref] = acc
        return acc

    def open_account(self, ref: AccountRef, *, allow_overdraft: bool | None = None) -> Account:
        existing = self.account(ref)
        if existing is not None:
            return existing
        if self._next_account_id is None:
            top = self._conn.execute(select(func.max(tables.accounts.c.id))).scalar()
            self._next_account_id = int(top or 0) + 1
        overdraft = ref.default_allows_overdraft() if allow_overdraft is None else allow_overdraft
        acc = Account(ref, self._next_account_id, overdraft, 0, 0)
        self._next_account_id += 1
        self._accounts[ref] = acc
        self._new_accounts[ref] = acc

        def undo() -> None:
            self._accounts.pop(ref, None)
            self._new_accounts.pop(ref, None)
            self._next_account_id = acc.id

        self._undo.append(undo)
        return acc

    def _set_account(self, acc: Account) -> None:
        previous = self._accounts[acc.ref]
        self._accounts[acc.ref] = acc
        is_new = acc.ref in self._new_accounts
        if is_new:
            self._new_accounts[acc.ref] = acc

        def undo() -> None:
            self._accounts[acc.ref] = previous
            if is_new:
                self._new_accounts[acc.ref] = previous

        self._undo.append(undo)

    # -- journal -----------------------------------------------------------------------

    def entry_by_key(self, idempotency_key: str) -> tuple[JournalEntry, str] | None:
        if idempotency_key not in self._keys:
            found = self._load_entries(tables.journal.c.idempotency_key == idempotency_key)
            self._keys[idempotency_key] = found.get(idempotency_key)
        return self._keys[idempotency_key]

    def entry_by_id(self, entry_id: str) -> JournalEntry | None:
        for buffered in self._entries:
            if buffered.id == entry_id:
                return buffered
        found = self._load_entries(tables.journal.c.id == entry_id)
        return next((e for e, _ in found.values()), None)

    def reversal_of(self, entry_id: str) -> JournalEntry | None:
        for buffered in self._entries:
            if buffered.reverses == entry_id:
                return buffered
        found = self._load_entries(tables.journal.c.reverses == entry_id)
        return next((e for e, _ in found.values()), None)

    def post(self, draft: EntryDraft) -> JournalEntry:
        validate_draft(draft)
        accounts = [self.open_account(p.account) for p in draft.postings]
        updated = [apply_posting(acc, p.units) for acc, p in zip(accounts, draft.postings, strict=True)]
        for acc in updated:
            self._set_account(acc)
        content_hash = draft.content_hash()
        entry = JournalEntry(
            id=self._ids.new("je"),
            seq=self._head_seq + 1,
            idempotency_key=draft.idempotency_key,
            kind=draft.kind,
            postings=draft.postings,
            memo=draft.memo,
            reverses=draft.reverses,
            metadata=dict(draft.metadata),
            created_at=self._clock.now(),
            content_hash=content_hash,
            hash="",
        )
        entry = replace(entry, hash=chain_hash(self._head_hash, entry))
        marks = (len(self._entries), len(self._posting_rows), self._head_seq, self._head_hash)
        previous_key = self._keys.get(draft.idempotency_key)
        self._entries.append(entry)
        self._posting_rows.extend(
            {"entry_seq": entry.seq, "account_id": acc.id, "units": p.units}
            for acc, p in zip(updated, draft.postings, strict=True)
        )
        self._keys[draft.idempotency_key] = (entry, content_hash)
        self._head_seq, self._head_hash = entry.seq, entry.hash

        def undo() -> None:
            del self._entries[marks[0]:]
            del self._posting_rows[marks[1]:]
            self._head_seq, self._head_hash = marks[2], marks[3]
            self._keys[draft.idempotency_key] = previous_key

        self._undo.append(undo)
        return entry

    def _load_entries(self, condition: Any) -> dict[str, tuple[JournalEntry, str]]:
        rows = list(self._conn.execute(select(tables.journal).where(condition)).mappings())
        if not rows:
            return {}
        postings: dict[int, list[Posting]] = defaultdict(list)
        p, a = tables.postings, tables.accounts
        for prow in self._conn.execute(
            select(p.c.entry_seq, p.c.units, a.c.owner_type, a.c.owner_id, a.c.asset, a.c.kind)
            .join(a, a.c.id == p.c.account_id)
            .where(p.c.entry_seq.in_([r["seq"] for r in rows]))
            .order_by(p.c.id)
        ).mappings():
            postings[prow["entry_seq"]].append(Posting(mappers.account_ref(prow), prow["units"]))
        return {
            r["idempotency_key"]: (mappers.entry(r, postings[r["seq"]]), r["content_hash"])
            for r in rows
        }

    # -- holds -------------------------------------------------------------------------

    def hold(self, hold_id: str) -> Hold | None:
        if hold_id in self._holds:
            return self._holds[hold_id]
        h, a = tables.holds, tables.accounts
        row = self._conn.execute(
            select(h, a.c.owner_type, a.c.owner_id, a.c.asset, a.c.kind)
            .join(a, a.c.id == h.c.account_id)
            .where(h.c.id == hold_id)
        ).mappings().first()
        if row is None:
            return None
        found = mappers.hold(row, mappers.account_ref(row))
        self._holds[hold_id] = found
        return found

    def save_hold(self, hold: Hold) -> None:
        previous = self.hold(hold.id)
        self.open_account(hold.account)
        self._holds[hold.id] = hold
        is_new = previous is None and hold.id not in self._new_holds
        if is_new:
            self._new_holds.add(hold.id)
        else:
            self._dirty_holds.add(hold.id)

        def undo() -> None:
            if previous is None:
                self._holds.pop(hold.id, None)
                self._new_holds.discard(hold.id)
            else:
                self._holds[hold.id] = previous

        self._undo.append(undo)

    # -- events ------------------------------------------------------------------------

    def emit(self, event: DomainEvent) -> str:
        event_id = self._ids.new("evt")
        self._event_rows.append(
            {
                "id": event_id,
                "type": event.type,
                "aggregate": event.aggregate,
                "payload": json.dumps(event.payload, sort_keys=True, separators=(",", ":")),
                "created_at": self._clock.now(),
            }
        )
        mark = len(self._event_rows) - 1
        self._undo.append(lambda: self._event_rows.__delitem__(slice(mark, None)))
        return event_id

    # -- stores and keys (unbuffered: rare writes) -------------------------------------

    def store(self, store_id: str) -> Store | None:
        row = self._conn.execute(
            select(tables.stores).where(tables.stores.c.id == store_id)
        ).mappings().first()
        return None if row is None else mappers.store(row)

    def save_store(self, store: Store) -> None:
        values = mappers.store_row(store)
        conn = self._raw()
        done = conn.execute(
            update(tables.stores).where(tables.stores.c.id == store.id).values(values)
        )
        if done.rowcount == 0:
            conn.execute(insert(tables.stores).values(values))

    def api_key(self, key_id: str) -> ApiKey | None:
        row = self._conn.execute(
            select(tables.api_keys).where(tables.api_keys.c.id == key_id)
        ).mappings().first()
        return None if row is None else mappers.api_key(row)

    def save_api_key(self, key: ApiKey) -> None:
        values = mappers.api_key_row(key)
        conn = self._raw()
        done = conn.execute(
            update(tables.api_keys).where(tables.api_keys.c.id == key.id).values(values)
        )
        if done.rowcount == 0:
            conn.execute(insert(tables.api_keys).values(values))

    def execute(self, statement: Any) -> Any:
        """Run a statement of another module's table inside this command's savepoint."""
        return self._raw().execute(statement)

    # -- flush -------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered row; called once per batch, right before COMMIT."""
        conn = self._conn
        self._check_batch_invariants()
        now = self._clock.now()
        if self._new_accounts:
            conn.execute(
                insert(tables.accounts),
                [
                    {
                        "id": acc.id, "code": acc.ref.code, "owner_type": str(acc.ref.owner_type),
                        "owner_id": acc.ref.owner_id, "asset": acc.ref.asset,
                        "kind": str(acc.ref.kind), "allow_overdraft": acc.allow_overdraft,
                        "balance": acc.balance, "version": acc.version, "created_at": now,
                    }
                    for acc in self._new_accounts.values()
                ],
            )
        touched = {row["account_id"] for row in self._posting_rows}
        changed = [
            {"b_id": acc.id, "b_balance": acc.balance, "b_version": acc.version}
            for ref, acc in self._accounts.items()
            if ref not in self._new_accounts and acc.id in touched
        ]
        if changed:
            conn.execute(_UPDATE_BALANCE, changed)
        if self._entries:
            conn.execute(insert(tables.journal), [mappers.entry_row(e) for e in self._entries])
            conn.execute(insert(tables.postings), self._posting_rows)
            conn.execute(
                update(tables.ledger_head)
                .where(tables.ledger_head.c.id == 1)
                .values(seq=self._head_seq, hash=self._head_hash)
            )
        self._flush_holds(now)
        if self._event_rows:
            conn.execute(insert(tables.outbox), self._event_rows)

    def _flush_holds(self, now: Any) -> None:
        def row(h: Hold) -> dict[str, Any]:
            acc = self._accounts[h.account]
            return {
                "id": h.id, "account_id": acc.id, "amount": h.amount, "captured": h.captured,
                "released": h.released, "status": str(h.status), "updated_at": now,
            }

        if self._new_holds:
            self._conn.execute(
                insert(tables.holds),
                [{**row(self._holds[i]), "created_at": now} for i in sorted(self._new_holds)],
            )
        dirty = self._dirty_holds - self._new_holds
        for hold_id in sorted(dirty):
            values = row(self._holds[hold_id])
            self._conn.execute(
                update(tables.holds).where(tables.holds.c.id == hold_id).values(values)
            )

    def _check_batch_invariants(self) -> None:
        totals: dict[str, int] = defaultdict(int)
        for entry in self._entries:
            for posting in entry.postings:
                totals[posting.account.asset] += posting.units
        ensure(all(v == 0 for v in totals.values()), "batch postings do not sum to zero")
        ensure(
            self._head_seq == self._start_seq + len(self._entries),
            "journal sequence does not continue from the stored head",
        )
