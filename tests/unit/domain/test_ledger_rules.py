"""Double-entry rules: balance, postings, content hash, hash chain, reversal, overdraft."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from dpgnode.domain.ledger import (
    GENESIS_HASH,
    Account,
    AccountKind,
    AccountRef,
    EntryDraft,
    EntryKind,
    OwnerType,
    Posting,
    apply_posting,
    chain_hash,
    check_replay,
    ensure_balanced,
    reversal_draft,
    sum_by_asset,
    validate_draft,
)
from dpgnode.domain.money import MAX_UNITS
from dpgnode.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InsufficientFundsError,
    ValidationError,
)
from tests import factories as f

ALICE = f.account("alice")
BOB = f.account("bob")
ALICE_ETH = f.account("alice", "ETH")
BOB_ETH = f.account("bob", "ETH")


class TestEnsureBalanced:
    def test_accepts_when_postings_sum_to_zero(self) -> None:
        ensure_balanced([Posting(ALICE, -5), Posting(BOB, 5)])

    def test_accepts_when_each_asset_of_a_multi_asset_entry_sums_to_zero(self) -> None:
        ensure_balanced(
            [
                Posting(ALICE, -5),
                Posting(BOB, 4),
                Posting(f.operator(AccountKind.FEES), 1),
                Posting(BOB_ETH, -(10**30)),
                Posting(ALICE_ETH, 10**30),
            ]
        )

    def test_refuses_naming_the_asset_when_one_asset_does_not_sum_to_zero(self) -> None:
        with pytest.raises(ValidationError, match="ETH") as info:
            ensure_balanced(
                [Posting(ALICE, -5), Posting(BOB, 5), Posting(ALICE_ETH, -3), Posting(BOB_ETH, 2)]
            )
        assert info.value.field == "postings"

    @pytest.mark.parametrize("count", [0, 1])
    def test_refuses_when_entry_has_fewer_than_two_postings(self, count: int) -> None:
        with pytest.raises(ValidationError, match="at least two"):
            ensure_balanced([Posting(ALICE, 0)][:count])

    def test_refuses_naming_the_posting_when_a_posting_is_zero(self) -> None:
        with pytest.raises(ValidationError, match="non-zero") as info:
            ensure_balanced([Posting(ALICE, -5), Posting(BOB, 5), Posting(f.account("carol"), 0)])
        assert info.value.field == "postings[2].amount"

    @pytest.mark.parametrize("units", [True, 1.0, "1"])
    def test_refuses_when_a_posting_is_not_an_int(self, units: object) -> None:
        with pytest.raises(ValidationError, match="integer"):
            ensure_balanced([Posting(ALICE, units), Posting(BOB, -1)])  # type: ignore[arg-type]

    def test_refuses_when_the_same_account_appears_twice(self) -> None:
        with pytest.raises(ValidationError, match="twice") as info:
            ensure_balanced([Posting(ALICE, -5), Posting(BOB, 3), Posting(ALICE, 2)])
        assert info.value.field == "postings[2].account"

    def test_refuses_when_a_posting_exceeds_uint256(self) -> None:
        with pytest.raises(ValidationError, match="uint256"):
            ensure_balanced([Posting(ALICE, -(MAX_UNITS + 1)), Posting(BOB, MAX_UNITS + 1)])

    def test_sum_by_asset_gives_zero_per_asset_when_entry_is_balanced(self) -> None:
        postings = [Posting(ALICE, -5), Posting(BOB, 5), Posting(ALICE_ETH, 7)]
        assert sum_by_asset(postings) == {"BTC": 0, "ETH": 7}


class TestValidateDraft:
    @pytest.mark.parametrize("key", ["", " ", "a b", "clé", "k\n", "x" * 256])
    def test_refuses_when_idempotency_key_is_not_1_to_255_printable_ascii(self, key: str) -> None:
        with pytest.raises(ValidationError) as info:
            validate_draft(f.transfer(idempotency_key=key))
        assert info.value.field == "idempotency_key"

    def test_accepts_when_idempotency_key_is_255_printable_characters(self) -> None:
        validate_draft(f.transfer(idempotency_key="k" * 254 + "~"))

    def test_refuses_when_memo_is_longer_than_500_characters(self) -> None:
        with pytest.raises(ValidationError) as info:
            validate_draft(f.transfer(memo="m" * 501))
        assert info.value.field == "memo"

    def test_refuses_when_postings_are_unbalanced(self) -> None:
        draft = EntryDraft("k", (Posting(ALICE, -5), Posting(BOB, 4)))
        with pytest.raises(ValidationError, match="sum to zero"):
            validate_draft(draft)


class TestContentHash:
    DRAFT = EntryDraft(
        "k-1",
        (Posting(f.world(), -100), Posting(f.account(), 100)),
        memo="m",
        metadata={"b": "2", "a": "1"},
    )

    def test_hash_is_pinned_when_content_is_fixed(self) -> None:
        # A change here invalidates every stored content hash: replays would start to conflict.
        expected = "ebe275cc0fef12d935ccdd98b9434d636abe2885b48760f0ed860ffb905621fd"
        assert self.DRAFT.content_hash() == expected

    def test_hash_is_unchanged_when_postings_or_metadata_are_reordered(self) -> None:
        reordered = replace(
            self.DRAFT,
            postings=tuple(reversed(self.DRAFT.postings)),
            metadata={"a": "1", "b": "2"},
        )
        assert reordered.content_hash() == self.DRAFT.content_hash()

    def test_hash_ignores_the_key_when_only_the_key_differs(self) -> None:
        assert replace(self.DRAFT, idempotency_key="other").content_hash() == (
            self.DRAFT.content_hash()
        )

    @pytest.mark.parametrize(
        "changed",
        [
            replace(DRAFT, postings=(Posting(f.world(), -101), Posting(f.account(), 101))),
            replace(DRAFT, postings=(Posting(f.world(), -100), Posting(f.account("u2"), 100))),
            replace(DRAFT, memo="other"),
            replace(DRAFT, kind=EntryKind.HOLD),
            replace(DRAFT, reverses="je_9"),
            replace(DRAFT, metadata={"a": "1"}),
        ],
        ids=["units", "account", "memo", "kind", "reverses", "metadata"],
    )
    def test_hash_differs_when_any_content_field_differs(self, changed: EntryDraft) -> None:
        assert changed.content_hash() != self.DRAFT.content_hash()

    def test_replay_check_passes_when_content_is_the_same(self) -> None:
        check_replay(self.DRAFT.content_hash(), replace(self.DRAFT))

    def test_replay_check_raises_key_reused_when_content_differs(self) -> None:
        with pytest.raises(IdempotencyKeyReusedError) as info:
            check_replay(self.DRAFT.content_hash(), replace(self.DRAFT, memo="x"))
        assert info.value.details["idempotency_key"] == "k-1"
        assert isinstance(info.value, ConflictError)


class TestChainHash:
    def test_hash_is_pinned_when_entry_is_fixed(self) -> None:
        entry = f.journal_entry(TestContentHash.DRAFT, id="je_1", seq=1)
        expected = "f7580d895a01ead8ac65d3311b93a31190fbcc093dbc81b9a50d30fb41c88556"
        assert entry.hash == expected
        assert chain_hash(GENESIS_HASH, entry) == expected

    @pytest.mark.parametrize(
        "field_change",
        [
            {"seq": 2},
            {"id": "je_2"},
            {"idempotency_key": "other"},
            {"content_hash": "f" * 64},
        ],
        ids=["seq", "id", "key", "content"],
    )
    def test_hash_changes_when_a_chained_field_is_edited(
        self, field_change: dict[str, object]
    ) -> None:
        entry = f.journal_entry()
        edited = replace(entry, **field_change)  # type: ignore[arg-type]
        assert chain_hash(GENESIS_HASH, edited) != entry.hash

    def test_hash_changes_when_created_at_is_edited(self) -> None:
        entry = f.journal_entry()
        edited = replace(entry, created_at=entry.created_at + timedelta(microseconds=1))
        assert chain_hash(GENESIS_HASH, edited) != entry.hash

    def test_hash_changes_when_predecessor_differs(self) -> None:
        entry = f.journal_entry()
        assert chain_hash("1" * 64, entry) != entry.hash


class TestReversal:
    def test_reversal_negates_every_posting_and_links_back_when_entry_is_a_transfer(
        self,
    ) -> None:
        entry = f.journal_entry(f.transfer(ALICE, BOB, 7), id="je_7")
        draft = reversal_draft(entry, "rev-1")
        assert draft.kind is EntryKind.REVERSAL
        assert draft.reverses == "je_7"
        assert draft.idempotency_key == "rev-1"
        assert draft.postings == (Posting(ALICE, 7), Posting(BOB, -7))
        assert draft.memo == "reversal of je_7"
        validate_draft(draft)

    def test_reversal_keeps_a_given_memo_when_one_is_passed(self) -> None:
        entry = f.journal_entry(f.transfer(ALICE, BOB, 7))
        assert reversal_draft(entry, "rev-1", memo="refund").memo == "refund"

    def test_reversal_is_refused_when_entry_is_itself_a_reversal(self) -> None:
        entry = f.journal_entry(f.transfer(ALICE, BOB, 7, kind=EntryKind.REVERSAL))
        with pytest.raises(ConflictError):
            reversal_draft(entry, "rev-2")

    @pytest.mark.parametrize("kind", [EntryKind.HOLD, EntryKind.CAPTURE, EntryKind.RELEASE])
    def test_reversal_is_refused_when_entry_belongs_to_a_hold(self, kind: EntryKind) -> None:
        # Reversing a hold movement would leave the hold's record and its held balance apart;
        # holds are undone by release, captures by a new transfer.
        held = ALICE.sibling(AccountKind.HELD)
        entry = f.journal_entry(f.transfer(ALICE, held, 7, kind=kind, metadata={"hold_id": "h"}))
        with pytest.raises(ConflictError, match="hold"):
            reversal_draft(entry, "rev-3")


class TestApplyPosting:
    def _account(self, balance: int, *, overdraft: bool = False) -> Account:
        return Account(ALICE, 1, overdraft, balance, 3)

    def test_balance_moves_and_version_increments_when_funds_suffice(self) -> None:
        after = apply_posting(self._account(10), -10)
        assert (after.balance, after.version) == (0, 4)

    def test_overdraft_is_refused_naming_the_account_when_account_forbids_it(self) -> None:
        with pytest.raises(InsufficientFundsError) as info:
            apply_posting(self._account(10), -11)
        assert info.value.details["account"] == ALICE.code

    def test_balance_goes_negative_when_account_allows_overdraft(self) -> None:
        assert apply_posting(self._account(0, overdraft=True), -5).balance == -5

    def test_posting_is_refused_when_balance_would_exceed_uint256(self) -> None:
        with pytest.raises(ValidationError, match="uint256"):
            apply_posting(self._account(MAX_UNITS), 1)


class TestAccountRef:
    def test_code_round_trips_when_parsed(self) -> None:
        ref = AccountRef(OwnerType.STORE, "st_1", "USDT-ETH", AccountKind.HELD)
        assert ref.code == "store:st_1:USDT-ETH:held"
        assert AccountRef.parse(ref.code) == ref

    @pytest.mark.parametrize(
        "code",
        [
            "store:st_1:BTC",
            "store:st_1:BTC:available:x",
            "shop:st_1:BTC:available",
            "store:st_1:BTC:savings",
            "store:st 1:BTC:available",
            "store::BTC:available",
            "store:st_1\n:BTC:available",
        ],
    )
    def test_parse_refuses_when_code_is_malformed(self, code: str) -> None:
        with pytest.raises(ValidationError) as info:
            AccountRef.parse(code, field="source")
        assert info.value.field == "source"

    @pytest.mark.parametrize("kind", list(AccountKind))
    def test_only_world_allows_overdraft_when_opened_with_defaults(self, kind: AccountKind) -> None:
        assert ALICE.sibling(kind).default_allows_overdraft() is (kind is AccountKind.WORLD)
