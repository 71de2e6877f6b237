"""The custody audit log: append inside other commands, list, verify (``dpg audit``).

Every use case that decides about a signature appends its record in the same transaction
as the decision (a payout refused by policy, the approval that starts signing, the
signing's outcome), so the log can never miss a decision that was committed nor hold one
that was rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence

from dpgnode.domain.custody.audit import AuditEvent, AuditRecord, ChainVerification, verify_chain
from dpgnode.ports.clock import Clock
from dpgnode.ports.custody import AuditLog
from dpgnode.ports.ids import IdGenerator
from dpgnode.ports.uow import Tx


class AuditService:
    """Appends to, reads and verifies the custody audit log."""

    def __init__(self, log: AuditLog, ids: IdGenerator, clock: Clock) -> None:
        self._log = log
        self._ids = ids
        self._clock = clock

    def append(self, tx: Tx, event: AuditEvent) -> AuditRecord:
        """Append ``event`` inside ``tx`` (the caller's command)."""
        return self._log.append_audit(tx, event, record_id=self._ids.new("aud"),
                                      at=self._clock.now())

    def records(
        self, *, after_seq: int = 0, limit: int = 100, subject: str | None = None
    ) -> Sequence[AuditRecord]:
        """Records after ``after_seq`` in order, at most ``limit`` (1..1000)."""
        return self._log.audit_records(
            after_seq=after_seq, limit=max(1, min(limit, 1000)), subject=subject
        )

    def verify(self, anchor: tuple[int, str] | None = None) -> ChainVerification:
        """Walk the whole chain and its head in one snapshot; report the first bad record.

        One read snapshot: a record appended while verification runs is either wholly in
        it (record and head) or wholly outside it, so it never causes a false alarm, and a
        record forged past the head is still seen. ``anchor`` (``seq``, ``hash``) from an
        earlier verification, kept off this database, must still be in the chain: that
        catches a log cut short with its head rewound, which the chain alone cannot.
        """
        with self._log.audit_snapshot() as (head, records):
            return verify_chain(records, head, anchor)
