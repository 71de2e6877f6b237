from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from dpgnode.domain.access import ApiKey
from dpgnode.domain.events import DomainEvent
from dpgnode.domain.hold import Hold
from dpgnode.domain.ledger import Account, AccountRef, EntryDraft, JournalEntry
from dpgnode.domain.store import Store

T = TypeVar("T")


class Tx(Protocol):
    """What one command sees inside a write transaction.

    Contract:
    - everything a command does through ``Tx`` commits together with the entries and
      events of the other commands in its batch, or not at all;
    - if the command raises, none of its effects are kept and the exception reaches the
      caller; the other commands of the batch are unaffected;
    - reads through ``Tx`` see the command's own writes and those of earlier commands in
      the same batch.
    """

    def account(self, ref: AccountRef) -> Account | None:
        """The account, or ``None`` if it was never opened."""
        ...

    def open_account(self, ref: AccountRef, *, allow_overdraft: bool | None = None) -> Account:
        """The account, opened now if needed (overdraft rule defaults to the kind's)."""
        ...

    def entry_by_key(self, idempotency_key: str) -> tuple[JournalEntry, str] | None:
        """The entry posted under this key and its content hash, if any."""
        ...

    def entry_by_id(self, entry_id: str) -> JournalEntry | None:
        """The entry with this id, including earlier ones of this batch."""
        ...

    def reversal_of(self, entry_id: str) -> JournalEntry | None:
        """The entry that reversed ``entry_id``, if one exists."""
        ...

    def post(self, draft: EntryDraft) -> JournalEntry:
        """Apply a validated draft: balances move, the entry joins the hash chain.

        Raises:
            InsufficientFundsError: a posting would overdraw an account that forbids it.
        """
        ...

    def hold(self, hold_id: str) -> Hold | None:
        """The hold with this id as this transaction sees it."""
        ...

    def save_hold(self, hold: Hold) -> None:
        """Insert or update a hold in this transaction."""
        ...

    def emit(self, event: DomainEvent) -> str:
        """Queue an outbox event in this transaction; returns its stable id."""
        ...

    def store(self, store_id: str) -> Store | None:
        """The store with this id as this transaction sees it."""
        ...

    def save_store(self, store: Store, *, creation_key: str | None = None) -> None:
        """Insert or update a store; ``creation_key`` records the request that created it."""
        ...

    def store_by_creation_key(self, creation_key: str) -> Store | None:
        """The store a request with this idempotency key created, if any."""
        ...

    def save_api_key(self, key: ApiKey) -> None:
        """Insert or update an API key in this transaction."""
        ...

    def api_key(self, key_id: str) -> ApiKey | None:
        """The API key with this id as this transaction sees it."""
        ...


@dataclass(frozen=True, slots=True)
class Hints:
    """What a command will touch, so a batching writer can fetch it for many at once."""

    idempotency_keys: tuple[str, ...] = ()
    accounts: tuple[AccountRef, ...] = ()


class Writer(Protocol):
    """Runs commands in durable transactions.

    Contract: ``run`` returns only after the transaction holding the command's effects is
    committed durably (fsync'd), or raises; a batching writer may group concurrent commands
    into one transaction (group commit) without changing what each caller observes.
    """

    def run(self, command: Callable[[Tx], T], hints: Hints | None = None) -> T:
        """Run ``command`` and return its result once it is durably committed."""
        ...

    async def run_async(self, command: Callable[[Tx], T], hints: Hints | None = None) -> T:
        """``run`` for event-loop callers: awaits the commit without blocking the loop."""
        ...
