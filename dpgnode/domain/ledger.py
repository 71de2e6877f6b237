"""Double-entry ledger rules.

Invariants this module keeps (and the storage adapter re-checks before commit):
- every journal entry has at least two postings, none of them zero, and its postings sum
  to zero per asset (``ensure_balanced``);
- an account that forbids overdraft never goes below zero (``apply_posting``);
- entries are immutable: a correction is a new entry (``reversal_draft``) linked to the one
  it reverses;
- an entry's idempotency key identifies its content: replaying the key with the same
  content returns the original entry, with other content it is a conflict (``content_hash``);
- entries form a hash chain (``chain_hash``), so an edited, deleted or reordered entry breaks
  verification.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from dpgnode.domain.money import MAX_UNITS, AssetRegistry, parse_units
from dpgnode.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    ValidationError,
)

GENESIS_HASH = "0" * 64
_OWNER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class OwnerType(StrEnum):
    """Who an account belongs to."""

    OPERATOR = "operator"
    STORE = "store"
    USER = "user"


class AccountKind(StrEnum):
    """What an account is for; ``world`` stands for everything outside the node."""

    AVAILABLE = "available"
    HELD = "held"
    PENDING = "pending"
    FEES = "fees"
    WORLD = "world"
    INVENTORY = "inventory"


class EntryKind(StrEnum):
    """Why an entry was posted."""

    TRANSFER = "transfer"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    REVERSAL = "reversal"


@dataclass(frozen=True, slots=True, order=True)
class AccountRef:
    """Identity of an account: who owns it, in which asset, for what.

    Its text form ``owner_type:owner_id:ASSET:kind`` (``store:st_1:BTC:available``) is what
    operators type and what statements print.
    """

    owner_type: OwnerType
    owner_id: str
    asset: str
    kind: AccountKind

    @property
    def code(self) -> str:
        """Text form ``owner_type:owner_id:ASSET:kind``."""
        return f"{self.owner_type}:{self.owner_id}:{self.asset}:{self.kind}"

    @classmethod
    def parse(cls, code: str, *, field: str = "account") -> AccountRef:
        """Parse ``owner_type:owner_id:ASSET:kind``."""
        parts = code.split(":") if isinstance(code, str) else []
        if len(parts) != 4:
            raise ValidationError(
                "account must look like owner_type:owner_id:ASSET:kind", field=field
            )
        owner_type, owner_id, asset, kind = parts
        try:
            ref = cls(OwnerType(owner_type), owner_id, asset, AccountKind(kind))
        except ValueError as exc:
            raise ValidationError(f"invalid account {code[:80]!r}: {exc}", field=field) from exc
        if not _OWNER_ID.fullmatch(owner_id):
            raise ValidationError("invalid account owner id", field=field)
        return ref

    def sibling(self, kind: AccountKind) -> AccountRef:
        """The same owner's account of another kind in the same asset."""
        return AccountRef(self.owner_type, self.owner_id, self.asset, kind)

    def default_allows_overdraft(self) -> bool:
        """Only the outside world may go negative: it is where deposits come from."""
        return self.kind is AccountKind.WORLD


@dataclass(frozen=True, slots=True)
class Account:
    """An account row as the ledger sees it."""

    ref: AccountRef
    id: int
    allow_overdraft: bool
    balance: int
    version: int = 0


@dataclass(frozen=True, slots=True)
class Posting:
    """One signed movement on one account: positive credits, negative debits."""

    account: AccountRef
    units: int


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """An entry a service wants to post; the writer gives it an id, a sequence and a hash."""

    idempotency_key: str
    postings: tuple[Posting, ...]
    kind: EntryKind = EntryKind.TRANSFER
    memo: str = ""
    reverses: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def content_hash(self) -> str:
        """Digest of everything a replay must repeat to count as the same request."""
        body = {
            "kind": str(self.kind),
            "memo": self.memo,
            "reverses": self.reverses or "",
            "metadata": dict(sorted(self.metadata.items())),
            "postings": sorted([p.account.code, str(p.units)] for p in self.postings),
        }
        return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":")))


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A committed, immutable journal entry."""

    id: str
    seq: int
    idempotency_key: str
    kind: EntryKind
    postings: tuple[Posting, ...]
    memo: str
    reverses: str | None
    metadata: Mapping[str, str]
    created_at: datetime
    content_hash: str
    hash: str


def validate_draft(draft: EntryDraft) -> None:
    """Reject a draft that could never be posted: the checks before any balance is read.

    Raises:
        ValidationError: bad key, fewer than two postings, a zero or oversized posting,
            or postings that do not sum to zero per asset.
    """
    if not isinstance(draft.idempotency_key, str) or not _IDEMPOTENCY_KEY.fullmatch(
        draft.idempotency_key
    ):
        raise ValidationError(
            "idempotency key must be 1-255 printable ASCII characters", field="idempotency_key"
        )
    if len(draft.memo) > 500:
        raise ValidationError("memo is longer than 500 characters", field="memo")
    ensure_balanced(draft.postings)


def ensure_balanced(postings: Sequence[Posting]) -> None:
    """Check the double-entry rule: at least two postings, each non-zero, Σ = 0 per asset."""
    if len(postings) < 2:
        raise ValidationError("an entry needs at least two postings", field="postings")
    totals: dict[str, int] = defaultdict(int)
    seen: set[AccountRef] = set()
    for index, posting in enumerate(postings):
        if type(posting.units) is not int or posting.units == 0:
            raise ValidationError(
                "posting amount must be a non-zero integer", field=f"postings[{index}].amount"
            )
        if abs(posting.units) > MAX_UNITS:
            raise ValidationError(
                "posting amount exceeds the uint256 range", field=f"postings[{index}].amount"
            )
        if posting.account in seen:
            raise ValidationError(
                "an account appears twice in one entry", field=f"postings[{index}].account"
            )
        seen.add(posting.account)
        totals[posting.account.asset] += posting.units
    unbalanced = sorted(asset for asset, total in totals.items() if total != 0)
    if unbalanced:
        raise ValidationError(
            f"postings do not sum to zero for {', '.join(unbalanced)}", field="postings"
        )


def parse_posting(account: str, amount: str, assets: AssetRegistry, *, field: str) -> Posting:
    """A posting from its text form: an account code and a signed decimal amount.

    Raises:
        ValidationError: malformed account, unknown asset or malformed amount; the error
            names ``field.account`` or ``field.amount``.
    """
    ref = AccountRef.parse(account, field=f"{field}.account")
    asset = assets.get(ref.asset)
    if asset is None:
        raise ValidationError(f"unknown asset {ref.asset[:20]!r}", field=f"{field}.account")
    return Posting(ref, parse_units(amount, asset.decimals, field=f"{field}.amount", signed=True))


def apply_posting(account: Account, units: int) -> Account:
    """The account after one posting, refusing an overdraft where the account forbids it."""
    balance = account.balance + units
    if balance < 0 and not account.allow_overdraft:
        raise InsufficientFundsError(
            f"{account.ref.code} has insufficient funds",
            details={"account": account.ref.code},
        )
    if abs(balance) > MAX_UNITS:
        raise ValidationError("balance would exceed the uint256 range", field="amount")
    return Account(account.ref, account.id, account.allow_overdraft, balance, account.version + 1)


def check_replay(existing_content_hash: str, draft: EntryDraft) -> None:
    """A replayed key must carry the content it was first used with."""
    if existing_content_hash != draft.content_hash():
        raise IdempotencyKeyReusedError(
            "idempotency key was already used for a different entry",
            details={"idempotency_key": draft.idempotency_key},
        )


def reversal_draft(entry: JournalEntry, idempotency_key: str, memo: str = "") -> EntryDraft:
    """The entry that undoes ``entry``: same accounts, opposite signs, linked back to it."""
    if entry.kind is EntryKind.REVERSAL:
        raise ConflictError("a reversal cannot itself be reversed; post a new entry")
    if entry.kind in (EntryKind.HOLD, EntryKind.CAPTURE, EntryKind.RELEASE):
        # Reversing it would move the held balance away from what the hold record says.
        raise ConflictError(
            f"a {entry.kind} entry belongs to a hold: release the hold or post a new entry"
        )
    return EntryDraft(
        idempotency_key=idempotency_key,
        postings=tuple(Posting(p.account, -p.units) for p in entry.postings),
        kind=EntryKind.REVERSAL,
        memo=memo or f"reversal of {entry.id}",
        reverses=entry.id,
    )


def chain_hash(prev_hash: str, entry: JournalEntry) -> str:
    """Hash linking ``entry`` to its predecessor; any edit, deletion or reorder breaks it."""
    body = "|".join(
        [
            prev_hash,
            str(entry.seq),
            entry.id,
            entry.idempotency_key,
            entry.content_hash,
            entry.created_at.isoformat(),
        ]
    )
    return _sha256(body)


def sum_by_asset(postings: Iterable[Posting]) -> dict[str, int]:
    """Σ of signed postings per asset; every value is 0 in a healthy ledger."""
    totals: dict[str, int] = defaultdict(int)
    for posting in postings:
        totals[posting.account.asset] += posting.units
    return dict(totals)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
