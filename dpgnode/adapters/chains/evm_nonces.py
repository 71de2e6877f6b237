"""Nonces of the node's own EVM sending addresses, reserved so concurrent sends never share one.

The node's ``pending`` transaction count says which nonce comes next once a transaction is in
its mempool; between choosing a nonce and broadcasting there is a gap in which a second send
of the same address would pick the same one, and only one of the two could ever confirm.
:class:`NonceReservations` closes that gap inside one process:

- a reservation takes the lowest nonce at or above ``max(pending, floor)`` that no live
  reservation and no recently used nonce holds (``floor``: what the caller knows is taken
  elsewhere, e.g. signed payouts not broadcast yet, ``reserved.next_nonce_after``);
- :meth:`Reservation.commit` once the transaction is broadcast (or durably recorded as signed):
  the nonce stays taken until the node's pending count passes it;
- leaving the ``with`` block without committing releases it, so a send that failed before
  broadcasting leaves no gap (a gap would hold back every later transaction of the address).

Across processes, the database (signed payouts) and the node's pending count remain the
record; this is the in-process part.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from dpgnode.domain.custody.evm import parse_evm_address


class Reservation:
    """One reserved nonce; a context manager that releases it unless committed."""

    def __init__(self, owner: NonceReservations, sender: str, nonce: int) -> None:
        self._owner = owner
        self.sender = sender
        self.nonce = nonce
        self._done = False

    def commit(self) -> None:
        """The transaction with this nonce was broadcast (or durably recorded)."""
        if not self._done:
            self._done = True
            self._owner._settle(self, used=True)

    def release(self) -> None:
        """The nonce was not used: the next reservation may take it."""
        if not self._done:
            self._done = True
            self._owner._settle(self, used=False)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class NonceReservations:
    """In-process nonce reservations per sender (see the module docstring). Thread-safe."""

    def __init__(self, pending_nonce: Callable[[str], int]) -> None:
        self._pending = pending_nonce
        self._lock = threading.Lock()
        self._held: dict[str, set[int]] = {}
        self._used: dict[str, set[int]] = {}

    def reserve(self, sender: str, *, floor: int = 0) -> Reservation:
        """The next free nonce of ``sender`` (asks the node for its pending count first).

        Raises:
            ValidationError: ``sender`` is not an EVM address.
            UnavailableError: the node could not be asked.
        """
        key = parse_evm_address(sender, field="sender").raw.hex()
        pending = self._pending(sender)
        with self._lock:
            used = self._used.setdefault(key, set())
            used.difference_update({n for n in used if n < pending})  # the node counts them
            held = self._held.setdefault(key, set())
            nonce = max(pending, floor)
            while nonce in held or nonce in used:
                nonce += 1
            held.add(nonce)
        return Reservation(self, key, nonce)

    def held(self, sender: str) -> set[int]:
        """Nonces of ``sender`` reserved or used and not yet counted by the node."""
        key = parse_evm_address(sender, field="sender").raw.hex()
        with self._lock:
            return set(self._held.get(key, ())) | set(self._used.get(key, ()))

    def _settle(self, reservation: Reservation, *, used: bool) -> None:
        with self._lock:
            self._held.get(reservation.sender, set()).discard(reservation.nonce)
            if used:
                self._used.setdefault(reservation.sender, set()).add(reservation.nonce)
