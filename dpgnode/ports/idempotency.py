"""Where ``Idempotency-Key`` records live (Stripe semantics for the HTTP API).

A record belongs to a *scope* (the API key id, or the client address for anonymous
routes) and a *key* (the header's value). It holds the digest of the first request and,
once that request finished, the response to replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response as first sent: replayed byte for byte."""

    status_code: int
    content_type: str
    body: bytes


class ClaimStatus(StrEnum):
    """What a claim found."""

    CLAIMED = "claimed"
    """The caller owns the key now: run the request, then complete or release."""
    REPLAY = "replay"
    """The same request already finished: send its stored response."""
    IN_PROGRESS = "in_progress"
    """The same request is running elsewhere and its lock has not expired."""
    MISMATCH = "mismatch"
    """The key was first used with a different request."""


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The outcome of a claim; ``response`` is set for ``REPLAY``."""

    status: ClaimStatus
    response: StoredResponse | None = None


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """One attempt to take a key; the times come from the caller's clock."""

    scope: str
    key: str
    request_hash: str
    now: datetime
    locked_until: datetime
    """How long the claim stands if its holder never completes or releases it."""
    expired_before: datetime
    """A record created before this moment is expired and counts as absent."""


class IdempotencyStore(Protocol):
    """Durable idempotency records.

    Contract:
    - ``claim`` is atomic with respect to every other call on the same ``(scope, key)``,
      across threads and processes: of many concurrent claims of a free key exactly one
      gets ``CLAIMED``; the decision follows, in order: no record or an expired one
      (``created_at < expired_before``) -> a new in-progress record, ``CLAIMED``; another
      request hash -> ``MISMATCH``; a completed record -> ``REPLAY`` with its response; an
      in-progress record whose lock ended (``locked_until <= now``: its holder died) ->
      taken over, ``CLAIMED``; else ``IN_PROGRESS``. It may raise ``ConflictError`` when a
      concurrent writer won a race; the caller retries.
    - ``complete`` stores the response of an in-progress record of that request hash and
      is a no-op otherwise; ``release`` deletes such a record (the key may be used again).
    - A method returns only after its change is durable.
    """

    async def claim(self, request: ClaimRequest) -> ClaimResult:
        """Take the key, or say why not (see the class contract)."""
        ...

    async def complete(
        self, scope: str, key: str, request_hash: str, response: StoredResponse
    ) -> None:
        """Store the response of the in-progress claim of ``request_hash``."""
        ...

    async def release(self, scope: str, key: str, request_hash: str) -> None:
        """Delete the in-progress claim of ``request_hash``."""
        ...

    async def purge(self, expired_before: datetime) -> int:
        """Delete records created before ``expired_before``; returns how many."""
        ...
