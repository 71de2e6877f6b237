"""Ledger verification (``dpg ledger verify``): recompute everything from the journal.

Checks, all of which must hold for a healthy ledger:
- the hash chain over entries verifies and ends at the stored head (no edited, deleted or
  reordered entry), and each entry's content still matches its content hash;
- sequence numbers are contiguous from 1;
- every entry sums to zero per asset, and so does the whole journal;
- every account balance equals the sum of its postings;
- no account that forbids overdraft is negative;
- every owner's ``held`` balance equals the remaining amount of its open holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from dpgnode.domain.ledger import (
    GENESIS_HASH,
    AccountKind,
    AccountRef,
    EntryDraft,
    JournalEntry,
    chain_hash,
    ensure_balanced,
    sum_by_asset,
)
from dpgnode.errors import ValidationError
from dpgnode.ports.queries import LedgerReader


@dataclass(slots=True)
class VerifyReport:
    """What verification found; ``ok`` only without problems."""

    entries: int = 0
    accounts: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check held."""
        return not self.problems


def verify_ledger(reader: LedgerReader, *, max_problems: int = 100) -> VerifyReport:
    """Recompute balances and the hash chain from the journal; report every mismatch."""
    report = VerifyReport()
    problems = report.problems
    prev_hash = GENESIS_HASH
    expected_seq = 1
    sums: dict[AccountRef, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    for entry in reader.entries():
        report.entries += 1
        problems.extend(_entry_problems(entry, prev_hash, expected_seq))
        expected_seq, prev_hash = entry.seq + 1, entry.hash
        for asset, total in sum_by_asset(entry.postings).items():
            totals[asset] += total
        for posting in entry.postings:
            sums[posting.account] += posting.units
        if len(problems) >= max_problems:
            return report
    head_seq, head_hash = reader.head()
    if (head_seq, head_hash) != (expected_seq - 1, prev_hash):
        problems.append(
            f"stored head (seq {head_seq}) does not match the last entry (seq {expected_seq - 1})"
        )
    report.totals = dict(totals)
    problems.extend(
        f"asset {asset}: postings sum to {total}, not 0"
        for asset, total in sorted(totals.items())
        if total != 0
    )
    _check_accounts(reader, sums, report)
    return report


def verify_segment(
    entries: Iterable[JournalEntry], head: tuple[int, str], *, anchored: bool
) -> tuple[int, list[str]]:
    """Check the newest entries only (``dpg doctor``'s quick ledger check).

    ``entries`` are consecutive and must end at ``head`` (seq, hash). With ``anchored``
    the first entry is not checked itself but anchors the chain (its stored hash is the
    predecessor's); without, the run starts at the genesis. Checks the hash chain, content
    hashes and that each entry balances; balances and holds need the full
    :func:`verify_ledger`. Returns how many entries were checked and the problems found.
    """
    problems: list[str] = []
    prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
    for entry in entries:
        if anchored:
            prev_hash, expected_seq, anchored = entry.hash, entry.seq + 1, False
            continue
        checked += 1
        problems.extend(_entry_problems(entry, prev_hash, expected_seq))
        prev_hash, expected_seq = entry.hash, entry.seq + 1
    if (expected_seq - 1, prev_hash) != head:
        problems.append(
            f"stored head (seq {head[0]}) does not match the last entry (seq {expected_seq - 1})"
        )
    return checked, problems


def _entry_problems(entry: JournalEntry, prev_hash: str, expected_seq: int) -> list[str]:
    """What is wrong with one entry on its own and as the successor of ``prev_hash``."""
    problems = []
    if entry.seq != expected_seq:
        problems.append(f"entry {entry.id}: sequence {entry.seq}, expected {expected_seq}")
    if chain_hash(prev_hash, entry) != entry.hash:
        problems.append(f"entry {entry.id} (seq {entry.seq}): hash chain broken")
    # The chain covers the stored content hash; recomputing it covers the content itself
    # (postings, memo, kind, metadata), else an edit that keeps every sum would pass.
    if _content_hash(entry) != entry.content_hash:
        problems.append(f"entry {entry.id} (seq {entry.seq}): content does not match its hash")
    try:
        ensure_balanced(entry.postings)
    except ValidationError as exc:
        problems.append(f"entry {entry.id}: {exc.message}")
    return problems


def _content_hash(entry: JournalEntry) -> str:
    return EntryDraft(
        entry.idempotency_key, entry.postings, entry.kind, entry.memo, entry.reverses,
        entry.metadata,
    ).content_hash()


def _check_accounts(
    reader: LedgerReader, sums: dict[AccountRef, int], report: VerifyReport
) -> None:
    held_by_account: dict[AccountRef, int] = defaultdict(int)
    for hold in reader.open_holds():
        held_by_account[hold.held_account] += hold.remaining
    for account in reader.accounts():
        report.accounts += 1
        expected = sums.pop(account.ref, 0)
        if account.balance != expected:
            report.problems.append(
                f"account {account.ref.code}: balance {account.balance}, postings sum {expected}"
            )
        if account.balance < 0 and not account.allow_overdraft:
            report.problems.append(f"account {account.ref.code}: overdrawn ({account.balance})")
        if account.ref.kind is AccountKind.HELD:
            held = held_by_account.pop(account.ref, 0)
            if held != account.balance:
                report.problems.append(
                    f"account {account.ref.code}: balance {account.balance}, open holds {held}"
                )
    report.problems.extend(f"postings on unknown account {ref.code}" for ref in sums)
    report.problems.extend(
        f"open holds of {units} on missing account {ref.code}"
        for ref, units in held_by_account.items()
        if units
    )
