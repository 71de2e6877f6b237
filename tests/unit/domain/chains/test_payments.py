"""Payment states and the rules that move them (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dpgnode.domain.chains.blocks import BlockRef, ChainTx, Transfer
from dpgnode.domain.chains.payments import (
    ConfirmationPolicy,
    Payment,
    PaymentStatus,
    WatchedAddress,
    beaten,
    confirmations,
    conflicts,
    credit_draft,
    credit_key,
    credited,
    descendants,
    mined,
    new_payment,
    owner_account,
    restored,
    unaccounted,
    unmined,
)
from dpgnode.domain.ledger import ensure_balanced
from dpgnode.errors import ValidationError

AT = datetime(2026, 1, 1, tzinfo=UTC)
BLOCK = BlockRef(10, "b" * 64)


def payment(txid: str = "aa", spends: tuple[str, ...] = ("c0:0",), units: int = 1000) -> Payment:
    transfer = Transfer(f"{txid}:0", txid, "addr1", "BTC", units)
    return new_payment("bitcoin", transfer, ChainTx(txid, (transfer,), spends),
                       WatchedAddress(1, "addr1", "store:st_1", "inv_1"), AT)


def test_confirmations_count_the_tip_as_one() -> None:
    assert confirmations(10, 10) == 1
    assert confirmations(10, 15) == 6
    assert confirmations(11, 10) == 0


def test_depth_policy_and_finalized_policy_decide_differently() -> None:
    depth = ConfirmationPolicy(confirmations=3, reorg_limit=6)
    assert not depth.is_final(10, 11, None)
    assert depth.is_final(10, 12, None)
    final = ConfirmationPolicy(confirmations=1, reorg_limit=64, finalized=True)
    assert not final.is_final(10, 100, None)
    assert not final.is_final(10, 100, 9)
    assert final.is_final(10, 11, 10)


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValidationError):
        ConfirmationPolicy(confirmations=0, reorg_limit=6)
    with pytest.raises(ValidationError):
        ConfirmationPolicy(confirmations=1, reorg_limit=0)


def test_lifecycle_keeps_block_and_credit_consistent() -> None:
    seen = payment()
    assert seen.status is PaymentStatus.PENDING
    assert seen.owner == "store:st_1"
    in_block = mined(seen, BLOCK, AT)
    assert in_block.status is PaymentStatus.CONFIRMING
    assert in_block.block == BLOCK
    key = credit_key("bitcoin", in_block.key, BLOCK.hash)
    done = credited(in_block, key, AT)
    assert done.credit_key == key
    assert mined(done, BLOCK, AT) is done  # the same block again changes nothing
    back = unmined(done, AT)
    assert back.status is PaymentStatus.PENDING
    assert back.block is None
    assert back.credit_key is None


def test_a_payment_cannot_claim_a_credit_without_a_block() -> None:
    with pytest.raises(ValidationError):
        credited(payment(), "k", AT)


def test_credit_keys_differ_per_block_and_generation() -> None:
    first = credit_key("bitcoin", "aa:0", "h1")
    assert first != credit_key("bitcoin", "aa:0", "h2")
    assert first != credit_key("bitcoin", "aa:0", "h1", 1)


def test_credit_entry_moves_units_from_the_chain_to_the_owner() -> None:
    done = credited(mined(payment(units=1234), BLOCK, AT), "key", AT)
    draft = credit_draft(done)
    ensure_balanced(draft.postings)
    by_account = {p.account.code: p.units for p in draft.postings}
    assert by_account == {"operator:chain:BTC:world": -1234, "store:st_1:BTC:available": 1234}
    assert draft.idempotency_key == "key"


def test_owner_must_name_a_ledger_owner() -> None:
    assert owner_account("user:u1", "ETH").code == "user:u1:ETH:available"
    with pytest.raises(ValidationError):
        owner_account("nobody", "BTC")


def test_conflicts_ignore_the_payments_own_transaction() -> None:
    p = payment("aa", ("c0:0", "c1:0"))
    assert conflicts([p], {"c0:0": "aa"}) == {}
    assert conflicts([p], {"c1:0": "bb"}) == {"aa:0": "bb"}


def test_descendants_follow_chains_of_spends() -> None:
    parent = payment("p1")
    child = payment("c1", ("p1:1",))
    grandchild = payment("g1", ("c1:1",))
    unrelated = payment("u1", ("zz:0",))
    found = descendants([child, grandchild, unrelated], {parent.txid})
    assert found == {"c1:0": "p1", "g1:0": "c1"}


def test_descendants_already_unaccounted_are_found_again_while_the_ancestor_is_lost() -> None:
    # The watcher re-evaluates every poll: a child left out would be restored, then lost again.
    child = unaccounted(payment("c1", ("p1:1",)), "p1", AT)
    grandchild = unaccounted(payment("g1", ("c1:1",)), "c1", AT)
    assert descendants([child, grandchild], {"p1"}) == {"c1:0": "p1", "g1:0": "c1"}
    assert descendants([child, grandchild], set()) == {}


def test_unaccounted_and_restored_round_trip() -> None:
    lost = unaccounted(payment(), "bb", AT, conflict_height=12)
    assert lost.status is PaymentStatus.UNACCOUNTED
    assert (lost.conflict_txid, lost.conflict_height) == ("bb", 12)
    back = restored(lost, AT)
    assert back.status is PaymentStatus.PENDING
    assert back.conflict_txid is None


def test_transfers_and_payments_refuse_non_positive_amounts() -> None:
    with pytest.raises(ValidationError):
        Transfer("k", "t", "a", "BTC", 0)
    with pytest.raises(ValidationError):
        payment(units=-1)


def test_a_transaction_gone_from_a_complete_mempool_is_beaten_by_its_parent() -> None:
    child = payment("c1", ("p1:1",))
    assert beaten([child], {}, frozenset({"c1"})) == {}
    assert beaten([child], {}, None) == {}  # no complete mempool: absence means nothing
    assert beaten([child], {}, frozenset()) == {"c1:0": "p1"}
    assert beaten([child], {"p1:1": "other"}, frozenset()) == {"c1:0": "other"}
