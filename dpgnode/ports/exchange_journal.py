"""The matching engine's durable command journal and snapshots, as the exchange services see it.

The engine is a pure, deterministic state machine (``dpgnode.domain.exchange``): the same
commands in the same order give the same book. So the book is never written to a database;
its *commands* are. The matching thread appends each command it applies and gets back a
sequence number at memory speed; a background flusher writes groups of commands to disk and
``fdatasync``s them off the matching path. A caller that must tell a client "your order is
in" first waits until the command's sequence number is durable. After a crash the engine is
rebuilt from the latest snapshot plus the journal records after it.

Invariants every implementation keeps:

- sequence numbers are 1, 2, 3, ... per journal, without gaps, in append order; after a
  restart they continue from the last recovered one;
- ``durable_seq`` never goes backwards, and every command up to it survives a crash of the
  process or of the machine (it was ``fdatasync``'d);
- recovery returns every durable command exactly once, in order; a torn record at the tail
  (the write a crash interrupted, never acknowledged) is dropped, any other damage raises
  :class:`~dpgnode.errors.IntegrityError`;
- a snapshot is saved only for a sequence number that is already durable, so the journal
  never has to hold commands older than the snapshot it is replayed onto.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

C = TypeVar("C")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Recovered(Generic[C, S]):
    """What a journal hands back at start-up: replay ``commands`` onto ``snapshot``.

    Attributes:
        snapshot: the engine state saved at ``snapshot_seq``, or ``None`` (start empty).
        snapshot_seq: the sequence number the snapshot covers (0 without a snapshot).
        commands: the durable commands after the snapshot; the first has sequence number
            ``snapshot_seq + 1`` and the last ``last_seq``.
        truncated_bytes: how many bytes of a torn tail recovery cut off (0 after a clean
            shutdown); reported so operators see that a crash happened.
    """

    snapshot: S | None
    snapshot_seq: int
    commands: Sequence[C]
    truncated_bytes: int = 0

    @property
    def last_seq(self) -> int:
        """The sequence number of the last recovered command (new appends continue after it)."""
        return self.snapshot_seq + len(self.commands)


class ExchangeJournal(Protocol[C, S]):
    """One pair's command journal and snapshots.

    Contract:

    - :meth:`recover` is called once, before anything else, and puts the journal in a state
      where :meth:`append` continues after the last recovered command;
    - :meth:`append` is called by one thread at a time (the engine's matching thread); it
      never blocks on the disk except to apply back-pressure when far more commands are
      pending than the disk has absorbed;
    - the waits may be called from any thread or event loop;
    - once a write or ``fdatasync`` fails, the journal is failed for good: appends and waits
      raise :class:`~dpgnode.errors.UnavailableError` and the engine must be rebuilt by
      recovery in a new process (after a failed ``fdatasync`` the page cache can no longer
      be trusted to say what is on disk).
    """

    @property
    def last_seq(self) -> int:
        """The sequence number of the last appended command."""
        ...

    @property
    def durable_seq(self) -> int:
        """Every command up to this sequence number is on disk."""
        ...

    def recover(self) -> Recovered[C, S]:
        """Load the latest valid snapshot and the durable commands after it.

        Raises:
            IntegrityError: a record other than the torn tail is damaged, or the journal
                does not reach back to the snapshot (a gap in the sequence numbers).
        """
        ...

    def append(self, command: C) -> int:
        """Queue ``command`` for the disk and return its sequence number.

        Raises:
            UnavailableError: the journal has failed or is closed.
        """
        ...

    def wait_durable(self, seq: int, timeout: float | None = None) -> None:
        """Block until the command ``seq`` is on disk.

        Raises:
            UnavailableError: the journal failed, or ``timeout`` seconds passed first.
        """
        ...

    async def wait_durable_async(self, seq: int) -> None:
        """Like :meth:`wait_durable`, without blocking the event loop."""
        ...

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(durable_seq)`` after each group reaches the disk.

        The listener runs on the flusher thread: it must be quick and must not raise (an
        exception is logged and the listener dropped). This is how a server acknowledges
        many clients without one waiting thread or future per command.
        """
        ...

    def checkpoint(self, seq: int, state: S) -> None:
        """Save ``state`` (the engine's snapshot right after command ``seq``) durably.

        Waits until ``seq`` is durable first, then writes the snapshot atomically and drops
        journal segments no kept snapshot needs any more. ``state`` must not change while
        this runs (pass an immutable copy).
        """
        ...

    def close(self) -> None:
        """Flush and ``fdatasync`` everything appended, then stop the flusher."""
        ...
