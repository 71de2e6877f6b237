"""The custody audit log: an append-only, hash-chained record of every signing decision.

Each record says who (``actor``: an operator id, ``system`` or ``api``), did what
(``action``) to which object (``subject``), which policy rule decided (``rule``, empty when
none refused) and the outcome (``result``). Records form a chain: a record's hash is
``sha256(prev_hash || canonical_json(record))``, where the canonical JSON covers every
field, its sequence number included. The store keeps the last sequence and hash in a head
row, so :func:`verify_chain` detects an edited record (its hash no longer matches), a
deleted one (a sequence gap, or a head past the last record) and reordered ones (the
sequence numbers and links no longer agree), and names the first bad record.

What the chain alone cannot see: someone who can write the database may delete the last
records *and* rewind the head to the new end (or rewrite the whole chain), since no secret
goes into the hashes. The database refuses both through triggers (migration 0003), and
an *anchor* -- a ``seq:hash`` pair the operator kept elsewhere from an earlier
verification -- catches them even when the triggers were dropped: the anchored record must
still be there with the same hash.

Records never carry secrets: no seed, mnemonic, private key or token; details hold ids,
amounts as decimal strings, addresses and txids only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from dpgnode.errors import ValidationError

GENESIS_HASH = "0" * 64


class AuditAction(StrEnum):
    """What was done."""

    WALLET_CREATED = "wallet.created"
    WALLET_IMPORTED = "wallet.imported"
    WATCH_ONLY_ADDED = "wallet.watch_only_added"
    OPERATOR_ADDED = "operator.added"
    OPERATOR_DISABLED = "operator.disabled"
    PAYOUT_REQUESTED = "payout.requested"
    PAYOUT_APPROVED = "payout.approved"
    PAYOUT_CANCELLED = "payout.cancelled"
    SIGNING_REQUESTED = "signing.requested"
    SIGNING_SUCCEEDED = "signing.succeeded"
    SIGNING_FAILED = "signing.failed"
    PAYOUT_BROADCAST = "payout.broadcast"
    PAYOUT_CONFIRMED = "payout.confirmed"
    PAYOUT_LOST = "payout.lost"
    SWEEP_SIGNED = "sweep.signed"
    SWEEP_BROADCAST = "sweep.broadcast"
    SWEEP_CONFIRMED = "sweep.confirmed"
    SWEEP_FAILED = "sweep.failed"


class AuditResult(StrEnum):
    """How it ended."""

    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A record before the log gives it a sequence number, an id, a time and its hashes."""

    actor: str
    action: AuditAction
    subject: str
    result: AuditResult
    rule: str = ""
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored record with its place in the chain."""

    seq: int
    id: str
    at: datetime
    actor: str
    action: str
    subject: str
    result: str
    rule: str
    details: Mapping[str, str]
    prev_hash: str
    hash: str


def canonical_json(
    seq: int,
    record_id: str,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    result: str,
    rule: str,
    details: Mapping[str, str],
) -> str:
    """The exact text a record's hash covers: sorted keys, no spaces, ASCII only."""
    body = {
        "seq": seq,
        "id": record_id,
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "result": result,
        "rule": rule,
        "details": {str(k): str(v) for k, v in sorted(details.items())},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def link_hash(prev_hash: str, canonical: str) -> str:
    """``sha256(prev_hash || canonical)`` as hex."""
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def seal(
    event: AuditEvent, *, seq: int, record_id: str, at: datetime, prev_hash: str
) -> AuditRecord:
    """Turn ``event`` into the record that follows a record hashed ``prev_hash``."""
    action, result = str(event.action), str(event.result)
    details = {str(k): str(v) for k, v in event.details.items()}
    canonical = canonical_json(
        seq, record_id, at, event.actor, action, event.subject, result, event.rule, details
    )
    return AuditRecord(
        seq=seq,
        id=record_id,
        at=at,
        actor=event.actor,
        action=action,
        subject=event.subject,
        result=result,
        rule=event.rule,
        details=details,
        prev_hash=prev_hash,
        hash=link_hash(prev_hash, canonical),
    )


def recompute_hash(record: AuditRecord) -> str:
    """The hash ``record`` should carry given its content and its stored ``prev_hash``."""
    canonical = canonical_json(
        record.seq,
        record.id,
        record.at,
        record.actor,
        record.action,
        record.subject,
        record.result,
        record.rule,
        record.details,
    )
    return link_hash(record.prev_hash, canonical)


@dataclass(frozen=True, slots=True)
class ChainVerification:
    """Outcome of :func:`verify_chain`: ``first_bad_seq`` names the first record that fails.

    ``head`` is the log's head as read (``None``: its row is gone); on success it is the
    anchor to keep for the next verification.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    first_bad_id: str | None = None
    reason: str = ""
    head: tuple[int, str] | None = None


def parse_anchor(text: str, *, field: str = "anchor") -> tuple[int, str]:
    """``SEQ:HASH`` (as ``dpg audit verify`` prints it) as ``(seq, hash)``.

    Raises:
        ValidationError: anything else.
    """
    seq, _, digest = text.strip().partition(":") if isinstance(text, str) else ("", "", "")
    if not (seq.isdigit() and int(seq) >= 1 and len(digest) == 64) or any(
        c not in "0123456789abcdef" for c in digest
    ):
        raise ValidationError(
            "an anchor is SEQ:HASH as `dpg audit verify` prints it "
            "(a record number and 64 lower-case hex digits)",
            field=field,
        )
    return int(seq), digest


def verify_chain(
    records: Iterable[AuditRecord],
    head: tuple[int, str] | None,
    anchor: tuple[int, str] | None = None,
) -> ChainVerification:
    """Walk ``records`` in stored sequence order and check every link against ``head``.

    Args:
        records: every record, ordered by ``seq``.
        head: the last sequence number and hash the log says it appended (``None``: the
            head row is missing, which is itself tampering).
        anchor: a ``(seq, hash)`` known from an earlier verification, kept off the
            database: that record must still be in the chain, unchanged.
    """
    if head is None:
        return ChainVerification(
            False, 0, None, None, "the log's head row is missing (it was deleted)"
        )
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for record in records:
        problem = _check_one(record, expected_seq, prev_hash) or _check_anchor(record, anchor)
        if problem:
            return ChainVerification(False, checked, record.seq, record.id, problem, head)
        checked += 1
        expected_seq, prev_hash = record.seq + 1, record.hash
    last = expected_seq - 1
    head_seq, head_hash = head
    if head_seq != last or head_hash != prev_hash:
        return ChainVerification(
            False,
            checked,
            last + 1 if head_seq > last else head_seq + 1,
            None,
            f"the log's head is record {head_seq} but the chain ends at record {last}: "
            "records were deleted from the end, or the head was altered",
            head,
        )
    if anchor is not None and anchor[0] > last:
        return ChainVerification(
            False,
            checked,
            last + 1,
            None,
            f"the chain ends at record {last}, before the anchored record {anchor[0]}: "
            "records were deleted from the end and the head rewound",
            head,
        )
    return ChainVerification(True, checked, head=head)


def _check_one(record: AuditRecord, expected_seq: int, prev_hash: str) -> str:
    if record.seq != expected_seq:
        if record.seq > expected_seq:
            return f"record {expected_seq} is missing (found {record.seq} next)"
        return f"record {record.seq} is out of order (expected {expected_seq})"
    if record.prev_hash != prev_hash:
        return "the link to the previous record is broken (a record was edited, removed or moved)"
    if recompute_hash(record) != record.hash:
        return "the record's content does not match its hash (it was edited)"
    return ""


def _check_anchor(record: AuditRecord, anchor: tuple[int, str] | None) -> str:
    if anchor is None or record.seq != anchor[0] or record.hash == anchor[1]:
        return ""
    return "the record's hash differs from the anchor: the chain was rewritten from here or earlier"
