"""``verify_ledger`` notices every kind of tampering done behind the node's back (raw SQL)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from dpgnode.adapters.memory.clock import FixedClock
from dpgnode.adapters.storage import tables
from dpgnode.domain.ledger import AccountKind
from dpgnode.node import Node
from dpgnode.services.verification import VerifyReport
from tests import factories as f

pytestmark = pytest.mark.integration

ALICE = f.account("alice")
BOB = f.account("bob")


@pytest.fixture
def ledger(any_node: Node, clock: FixedClock) -> Node:
    """Three entries a second apart: deposit to alice, alice pays bob, bob pays fees."""
    any_node.ledger.post(f.deposit(ALICE, 1_000, "dep"))
    clock.advance(timedelta(seconds=1))
    any_node.ledger.post(f.transfer(ALICE, BOB, 400, "pay", memo="invoice 7"))
    clock.advance(timedelta(seconds=1))
    any_node.ledger.post(f.transfer(BOB, f.operator(AccountKind.FEES), 10, "fee"))
    assert any_node.verify_ledger().ok
    return any_node


def _seq(node: Node, key: str) -> int:
    with node.engine.connect() as conn:
        seq: int = conn.execute(
            select(tables.journal.c.seq).where(tables.journal.c.idempotency_key == key)
        ).scalar_one()
    return seq


def _entry_id(node: Node, key: str) -> str:
    entry = node.queries.entry_by_key(key)
    assert entry is not None
    return entry.id


def _account_id(node: Node, code: str) -> int:
    with node.engine.connect() as conn:
        account_id: int = conn.execute(
            select(tables.accounts.c.id).where(tables.accounts.c.code == code)
        ).scalar_one()
    return account_id


class TestVerifyLiveNode:
    def test_snapshot_reads_ignore_a_commit_when_it_lands_after_their_first_read(
        self, ledger: Node
    ) -> None:
        with ledger.queries.snapshot() as snapshot:
            entries_before = [e.id for e in snapshot.entries()]
            ledger.ledger.post(f.transfer(ALICE, BOB, 1, "during"))
            assert [e.id for e in snapshot.entries()] == entries_before
            bob = snapshot.account(BOB)
            assert bob is not None
            assert bob.balance == 390
            assert snapshot.head()[0] == len(entries_before)
        assert ledger.queries.entry_by_key("during") is not None

    def test_report_is_ok_when_entries_commit_while_it_runs(self, ledger: Node) -> None:
        # Regression: verification read the journal and the balances a commit apart and
        # reported mismatches on a healthy, live ledger (18 of 50 runs on SQLite).
        stop = threading.Event()
        posted = [0]

        def write() -> None:
            while not stop.is_set():
                ledger.ledger.post(f.transfer(ALICE, BOB, 1, f"live-{posted[0]}"))
                posted[0] += 1

        writer = threading.Thread(target=write)
        writer.start()
        reports: list[VerifyReport] = []
        try:
            while posted[0] < 30 and len(reports) < 1000:
                reports.append(ledger.verify_ledger())
        finally:
            stop.set()
            writer.join()
        assert [r.problems for r in reports if not r.ok] == []
        assert len({r.entries for r in reports}) > 1, "no commit happened between two runs"


class TestVerifyLedger:
    def test_report_is_ok_with_zero_totals_when_nothing_was_touched(self, ledger: Node) -> None:
        report = ledger.verify_ledger()
        assert report.ok, report.problems
        assert report.entries == 3
        assert report.totals == {"BTC": 0}

    def test_report_names_the_entry_when_a_posting_amount_was_edited(self, ledger: Node) -> None:
        seq = _seq(ledger, "pay")
        p = tables.postings
        with ledger.writer_engine.begin() as conn:
            conn.execute(
                update(p)
                .where(p.c.entry_seq == seq, p.c.account_id == _account_id(ledger, BOB.code))
                .values(units=401)
            )
        report = ledger.verify_ledger()
        assert not report.ok
        assert any("sum to zero" in problem for problem in report.problems)
        assert any(BOB.code in problem for problem in report.problems)

    def test_report_fails_when_both_legs_and_both_balances_were_edited_consistently(
        self, ledger: Node
    ) -> None:
        # Every sum still matches: only the entry's content hash can tell.
        seq = _seq(ledger, "pay")
        p, a = tables.postings, tables.accounts
        alice_id, bob_id = _account_id(ledger, ALICE.code), _account_id(ledger, BOB.code)
        with ledger.writer_engine.begin() as conn:
            conn.execute(
                update(p).where(p.c.entry_seq == seq, p.c.account_id == alice_id).values(units=-300)
            )
            conn.execute(
                update(p).where(p.c.entry_seq == seq, p.c.account_id == bob_id).values(units=300)
            )
            conn.execute(update(a).where(a.c.id == alice_id).values(balance=700))
            conn.execute(update(a).where(a.c.id == bob_id).values(balance=290))
        report = ledger.verify_ledger()
        assert report.problems == [
            f"entry {_entry_id(ledger, 'pay')} (seq {seq}): content does not match its hash"
        ]

    def test_report_fails_when_a_memo_was_edited(self, ledger: Node) -> None:
        j = tables.journal
        with ledger.writer_engine.begin() as conn:
            conn.execute(update(j).where(j.c.idempotency_key == "pay").values(memo="invoice 8"))
        report = ledger.verify_ledger()
        assert not report.ok
        assert any("content" in problem for problem in report.problems), report.problems

    def test_report_fails_when_a_journal_row_was_deleted(self, ledger: Node) -> None:
        seq = _seq(ledger, "pay")
        with ledger.writer_engine.begin() as conn:
            conn.execute(delete(tables.postings).where(tables.postings.c.entry_seq == seq))
            conn.execute(delete(tables.journal).where(tables.journal.c.seq == seq))
        report = ledger.verify_ledger()
        assert not report.ok
        assert any("sequence" in problem for problem in report.problems)
        assert any("hash chain broken" in problem for problem in report.problems)
        assert any("postings sum" in problem for problem in report.problems)

    def test_report_fails_when_the_last_journal_row_was_deleted(self, ledger: Node) -> None:
        seq = _seq(ledger, "fee")
        with ledger.writer_engine.begin() as conn:
            conn.execute(delete(tables.postings).where(tables.postings.c.entry_seq == seq))
            conn.execute(delete(tables.journal).where(tables.journal.c.seq == seq))
        report = ledger.verify_ledger()
        assert any("stored head" in problem for problem in report.problems)

    def test_report_fails_when_created_at_of_two_entries_was_swapped(self, ledger: Node) -> None:
        j = tables.journal
        with ledger.engine.connect() as conn:
            rows = {
                r.idempotency_key: r.created_at
                for r in conn.execute(select(j.c.idempotency_key, j.c.created_at))
            }
        assert rows["dep"] != rows["pay"]
        with ledger.writer_engine.begin() as conn:
            for key, other in (("dep", "pay"), ("pay", "dep")):
                conn.execute(
                    update(j).where(j.c.idempotency_key == key).values(created_at=rows[other])
                )
        report = ledger.verify_ledger()
        assert not report.ok
        assert sum("hash chain broken" in problem for problem in report.problems) >= 2

    def test_report_names_the_account_when_its_balance_does_not_match_its_postings(
        self, ledger: Node
    ) -> None:
        a = tables.accounts
        with ledger.writer_engine.begin() as conn:
            conn.execute(update(a).where(a.c.code == BOB.code).values(balance=10**30))
        report = ledger.verify_ledger()
        assert report.problems == [f"account {BOB.code}: balance {10**30}, postings sum 390"]

    def test_report_fails_when_a_no_overdraft_account_was_made_negative(self, ledger: Node) -> None:
        a, p = tables.accounts, tables.postings
        seq = _seq(ledger, "fee")
        fees = f.operator(AccountKind.FEES)
        with ledger.writer_engine.begin() as conn:
            conn.execute(
                update(p)
                .where(p.c.entry_seq == seq, p.c.account_id == _account_id(ledger, BOB.code))
                .values(units=10)
            )
            conn.execute(
                update(p)
                .where(p.c.entry_seq == seq, p.c.account_id == _account_id(ledger, fees.code))
                .values(units=-10)
            )
            conn.execute(update(a).where(a.c.code == fees.code).values(balance=-10))
            conn.execute(update(a).where(a.c.code == BOB.code).values(balance=410))
        report = ledger.verify_ledger()
        assert any("overdrawn" in problem for problem in report.problems)
