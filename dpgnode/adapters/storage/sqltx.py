"""One write transaction shared by a batch of commands (the ``Tx`` port over SQL).

Ledger rows (accounts, journal, postings, holds, outbox events) are buffered in memory and
written with one ``executemany`` per table when the batch flushes: that is what makes group
commit cheap (TigerBeetle's prefetch-validate-apply). The hot tables go through
``bulk.BulkStatement`` (driver SQL, Core's bind processors), so a batch costs O(tables)
statements and little Python per row. Each command keeps an undo log, so a command that
raises leaves no trace in the buffers; the rare raw statements (stores, API keys) run
inside a savepoint the command opens on first use.

The writer may hand in ``accounts``, its cache of committed account rows, when it knows no
other connection has written since the cache was filled (see ``SqlWriter``); the
transaction then updates it in place, and the writer drops it if the batch does not commit.
Accounts are written only through this class, which is what makes such a cache sound.

Invariants checked before the batch commits: the batch's postings sum to zero per asset and
the hash chain continues from the stored head.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.engine import NestedTransaction

from dpgnode.adapters.storage import mappers, tables
from dpgnode.adapters.storage.bulk import BulkStatement, placeholder
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

_UPDATE_BALANCES = BulkStatement(tables.accounts, ("balance", "version"), key="id")
_INSERT_JOURNAL = BulkStatement(tables.journal, mappers.JOURNAL_COLUMNS)
_INSERT_POSTINGS = BulkStatement(tables.postings, ("entry_seq", "account_id", "units"))
_INSERT_OUTBOX = BulkStatement(tables.outbox, ("id", "type", "aggregate", "payload", "created_at"))
_HOLD_COLUMNS = ("account_id", "amount", "captured", "released", "status", "updated_at")
_INSERT_HOLDS = BulkStatement(tables.holds, ("id", *_HOLD_COLUMNS, "created_at"))
_UPDATE_HOLDS = BulkStatement(tables.holds, _HOLD_COLUMNS, key="id")
_HEAD_SQL = "SELECT seq, hash FROM ledger_head WHERE id = 1"
_UPDATE_HEAD = BulkStatement(tables.ledger_head, ("seq", "hash"), key="id")


class SqlTx:
    """The ``Tx`` port for one batch; see the module docstring."""

    def __init__(
        self,
        conn: Connection,
        ids: IdGenerator,
        clock: Clock,
        *,
        accounts: dict[AccountRef, Account] | None = None,
    ) -> None:
        self._conn = conn
        self._ids = ids
        self._clock = clock
        # SQLite has no FOR UPDATE: the writer's BEGIN IMMEDIATE already holds the write lock.
        head = conn.exec_driver_sql(
            _HEAD_SQL if conn.dialect.name == "sqlite" else _HEAD_SQL + " FOR UPDATE"
        ).one()
        self._start_seq = self._head_seq = int(head.seq)
        self._head_hash: str = head.hash
        self._accounts: dict[AccountRef, Account] = {} if accounts is None else accounts
        self._new_accounts: dict[AccountRef, Account] = {}
        self._by_id: dict[int, AccountRef] = {}
        self._next_account_id: int | None = None
        self._keys: dict[str, tuple[JournalEntry, str] | None] = {}
        self._entries: list[JournalEntry] = []
        self._posting_rows: list[tuple[int, int, int]] = []
        self._event_rows: list[tuple[Any, ...]] = []
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
        refs: dict[AccountRef, None] = {}
        cached = self._accounts
        for hint in hints:
            keys.update(hint.idempotency_keys)
            for ref in hint.accounts:
                if ref not in cached:
                    refs[ref] = None
        if refs:
            rows = self._conn.execute(
                select(tables.accounts).where(tables.accounts.c.code.in_([r.code for r in refs]))
            ).mappings()
            for row in rows:
                acc = mappers.account(row)
                self._accounts[acc.ref] = acc
        keys.difference_update(self._keys)
        if keys:
            ordered = sorted(keys)
            marks = ", ".join([placeholder(self._conn.dialect)] * len(ordered))
            existing = self._conn.exec_driver_sql(  # only placeholders are interpolated
                f"SELECT idempotency_key FROM journal WHERE idempotency_key IN ({marks})",  # noqa: S608
                tuple(ordered),
            ).scalars().all()
            found = (
                self._load_entries(tables.journal.c.idempotency_key.in_(sorted(existing)))
                if existing
                else {}
            )
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

    def _set_accounts(self, before: list[Account], after: list[Account]) -> None:
        accounts, new, by_id = self._accounts, self._new_accounts, self._by_id
        for acc in after:
            accounts[acc.ref] = acc
            by_id[acc.id] = acc.ref
            if new and acc.ref in new:
                new[acc.ref] = acc

        def undo() -> None:
            for previous in reversed(before):
                accounts[previous.ref] = previous
                if previous.ref in new:
                    new[previous.ref] = previous

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
        cached = self._accounts
        before = [cached.get(p.account) or self.open_account(p.account) for p in draft.postings]
        updated = [
            apply_posting(acc, p.units) for acc, p in zip(before, draft.postings, strict=True)
        ]
        self._set_accounts(before, updated)
        content_hash = draft.content_hash()
        fields = (
            self._ids.new("je"), self._head_seq + 1, draft.idempotency_key, draft.kind,
            draft.postings, draft.memo, draft.reverses, dict(draft.metadata), self._clock.now(),
            content_hash,
        )
        # Built twice rather than with dataclasses.replace (several times slower): the
        # chain hash covers the entry's other fields.
        entry = JournalEntry(*fields, hash=chain_hash(self._head_hash, JournalEntry(*fields, "")))
        marks = (len(self._entries), len(self._posting_rows), self._head_seq, self._head_hash)
        previous_key = self._keys.get(draft.idempotency_key)
        self._entries.append(entry)
        seq = entry.seq
        self._posting_rows.extend(
            (seq, acc.id, p.units) for acc, p in zip(updated, draft.postings, strict=True)
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
            (
                event_id,
                event.type,
                event.aggregate,
                json.dumps(event.payload, sort_keys=True, separators=(",", ":")),
                self._clock.now(),
            )
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

    def save_store(self, store: Store, *, creation_key: str | None = None) -> None:
        values = mappers.store_row(store)
        conn = self._raw()
        done = conn.execute(
            update(tables.stores).where(tables.stores.c.id == store.id).values(values)
        )
        if done.rowcount == 0:
            conn.execute(insert(tables.stores).values({**values, "creation_key": creation_key}))

    def store_by_creation_key(self, creation_key: str) -> Store | None:
        row = self._conn.execute(
            select(tables.stores).where(tables.stores.c.creation_key == creation_key)
        ).mappings().first()
        return None if row is None else mappers.store(row)

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

    def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run a statement of another module's table inside this command's savepoint.

        ``parameters`` (a dict, or a list of dicts for executemany) lets callers keep one
        prebuilt statement per shape: building a Core statement costs far more than binding.
        """
        if parameters is None:
            return self._raw().execute(statement)
        return self._raw().execute(statement, parameters)

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
        touched = sorted({row[1] for row in self._posting_rows})
        changed = [
            (acc.balance, acc.version, acc.id)
            for acc in (self._accounts[self._by_id[account_id]] for account_id in touched)
            if acc.ref not in self._new_accounts
        ]
        _UPDATE_BALANCES.execute(conn, changed)
        if self._entries:
            _INSERT_JOURNAL.execute(conn, [mappers.entry_values(e) for e in self._entries])
            _INSERT_POSTINGS.execute(conn, self._posting_rows)
            _UPDATE_HEAD.execute(conn, [(self._head_seq, self._head_hash, 1)])
        self._flush_holds(now)
        _INSERT_OUTBOX.execute(conn, self._event_rows)

    def _flush_holds(self, now: Any) -> None:
        def values(h: Hold) -> tuple[Any, ...]:  # in _HOLD_COLUMNS order
            acc = self._accounts[h.account]
            return (acc.id, h.amount, h.captured, h.released, str(h.status), now)

        _INSERT_HOLDS.execute(
            self._conn,
            [(i, *values(self._holds[i]), now) for i in sorted(self._new_holds)],
        )
        dirty = self._dirty_holds - self._new_holds
        _UPDATE_HOLDS.execute(self._conn, [(*values(self._holds[i]), i) for i in sorted(dirty)])

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
