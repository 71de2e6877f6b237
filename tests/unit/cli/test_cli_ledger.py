"""``dpg ledger verify|balances|statement|post|reverse`` over a real SQLite ledger."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

Invoke = Callable[..., Result]

WORLD = "operator:op:BTC:world"


@pytest.fixture
def shop(store_id: str) -> str:
    return f"store:{store_id}:BTC:available"


def _post(dpg: Invoke, key: str, *postings: str, memo: str = "test") -> Result:
    args = ["ledger", "post", "--key", key, "--memo", memo, "--json"]
    for posting in postings:
        args += ["--posting", posting]
    return dpg(*args)


def _fund(dpg: Invoke, account: str, amount: str, key: str) -> dict[str, Any]:
    result = _post(dpg, key, f"{WORLD}=-{amount}", f"{account}={amount}")
    assert result.exit_code == 0, result.output
    entry: dict[str, Any] = json.loads(result.stdout)
    return entry


def _balances(dpg: Invoke, *filters: str) -> dict[str, str]:
    result = dpg("ledger", "balances", "--json", *filters)
    assert result.exit_code == 0, result.output
    return {row["account"]: row["balance"] for row in json.loads(result.stdout)}


def _tamper(data_dir: Path, *statements: str) -> None:
    conn = sqlite3.connect(data_dir / "dpg.sqlite3")
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


class TestPost:
    def test_post_credits_account_with_exact_decimals_when_balanced(
        self, initialised: Invoke, shop: str
    ) -> None:
        entry = _fund(initialised, shop, "1.5", "fund-1")

        assert entry["created"] is True
        assert {p["account"]: p["amount"] for p in entry["postings"]} == {
            WORLD: "-1.50000000",
            shop: "1.50000000",
        }
        assert _balances(initialised)[shop] == "1.50000000"

    def test_post_changes_nothing_when_key_is_replayed_with_same_postings(
        self, initialised: Invoke, shop: str
    ) -> None:
        first = _fund(initialised, shop, "1.5", "fund-1")
        replay = _fund(initialised, shop, "1.5", "fund-1")

        assert replay["created"] is False
        assert replay["id"] == first["id"]
        assert _balances(initialised)[shop] == "1.50000000"

    def test_post_prints_entry_table_when_not_json(self, initialised: Invoke, shop: str) -> None:
        result = initialised(
            "ledger", "post", "--key", "k", "--memo", "m",
            "--posting", f"{WORLD}=-0.1", "--posting", f"{shop}=0.1",
        )

        assert result.exit_code == 0, result.output
        assert "posted entry" in result.stdout
        assert "0.10000000" in result.stdout

    def test_post_exits_1_when_key_is_reused_with_other_postings(
        self, initialised: Invoke, shop: str
    ) -> None:
        _fund(initialised, shop, "1.5", "fund-1")

        result = _post(initialised, "fund-1", f"{WORLD}=-2", f"{shop}=2")

        assert result.exit_code == 1
        assert "idempotency key" in result.stderr

    def test_post_exits_1_when_postings_do_not_balance(
        self, initialised: Invoke, shop: str
    ) -> None:
        result = _post(initialised, "k", f"{WORLD}=-1.5", f"{shop}=1.4")

        assert result.exit_code == 1
        assert result.stderr.strip() == "error: postings do not sum to zero for BTC"
        assert result.stdout == ""

    def test_post_exits_1_when_account_would_be_overdrawn(
        self, initialised: Invoke, shop: str
    ) -> None:
        result = _post(initialised, "k", f"{shop}=-1", f"{WORLD}=1")

        assert result.exit_code == 1
        assert "insufficient funds" in result.stderr

    @pytest.mark.parametrize(
        ("posting", "message"),
        [
            (f"{WORLD}=-0.000000001", "more than 8 fractional digits"),
            ("operator:op:NOPE:world=-1", "unknown asset"),
            ("operator:op:BTC:wallet=-1", "invalid account"),
            ("operator:op:BTC:world", "is not ACCOUNT=AMOUNT"),
            (f"{WORLD}=1e3", "is not a decimal number"),
        ],
    )
    def test_post_exits_2_when_posting_argument_is_malformed(
        self, initialised: Invoke, shop: str, posting: str, message: str
    ) -> None:
        result = _post(initialised, "k", posting, f"{shop}=1")

        assert result.exit_code == 2
        assert message in result.stderr
        assert _balances(initialised) == {}


class TestReverse:
    def test_reverse_restores_balances_when_entry_exists(
        self, initialised: Invoke, shop: str
    ) -> None:
        entry = _fund(initialised, shop, "2", "fund-1")

        result = initialised("ledger", "reverse", entry["id"], "--key", "undo-1", "--json")

        assert result.exit_code == 0, result.output
        reversal = json.loads(result.stdout)
        assert (reversal["kind"], reversal["reverses"]) == ("reversal", entry["id"])
        assert _balances(initialised)[shop] == "0.00000000"

    def test_reverse_exits_1_when_entry_was_already_reversed(
        self, initialised: Invoke, shop: str
    ) -> None:
        entry = _fund(initialised, shop, "2", "fund-1")
        assert initialised("ledger", "reverse", entry["id"], "--key", "undo-1").exit_code == 0

        again = initialised("ledger", "reverse", entry["id"], "--key", "undo-2")
        replay = initialised("ledger", "reverse", entry["id"], "--key", "undo-1")

        assert again.exit_code == 1
        assert "already reversed" in again.stderr
        assert replay.exit_code == 0
        assert "nothing changed" in replay.stdout

    def test_reverse_exits_1_when_entry_does_not_exist(self, initialised: Invoke) -> None:
        result = initialised("ledger", "reverse", "je_missing", "--key", "undo-1")

        assert result.exit_code == 1
        assert "no entry je_missing" in result.stderr


class TestBalances:
    def test_balances_filter_by_owner_and_asset_when_options_given(
        self, initialised: Invoke, shop: str, store_id: str
    ) -> None:
        _fund(initialised, shop, "1", "btc")
        eth = f"store:{store_id}:ETH:available"
        wei = "0.000000000000000001"
        result = _post(initialised, "eth", f"operator:op:ETH:world=-{wei}", f"{eth}={wei}")
        assert result.exit_code == 0, result.output

        by_store = _balances(initialised, "--owner-type", "store", "--owner-id", store_id)
        by_asset = _balances(initialised, "--asset", "ETH")

        assert by_store == {shop: "1.00000000", eth: "0.000000000000000001"}
        assert by_asset == {
            "operator:op:ETH:world": "-0.000000000000000001",
            eth: "0.000000000000000001",
        }

    def test_balances_prints_table_when_not_json(self, initialised: Invoke, shop: str) -> None:
        _fund(initialised, shop, "1", "btc")

        result = initialised("ledger", "balances")

        assert result.exit_code == 0, result.output
        assert shop in result.stdout
        assert "1.00000000" in result.stdout

    def test_balances_exits_2_when_asset_is_unknown(self, initialised: Invoke) -> None:
        result = initialised("ledger", "balances", "--asset", "NOPE")

        assert result.exit_code == 2

    def test_balances_exits_2_when_owner_type_is_unknown(self, initialised: Invoke) -> None:
        result = initialised("ledger", "balances", "--owner-type", "alien")

        assert result.exit_code == 2


class TestStatement:
    @pytest.fixture
    def history(self, initialised: Invoke, shop: str) -> str:
        _fund(initialised, shop, "1.5", "in-1")
        spent = _post(initialised, "out-1", f"{shop}=-0.25", f"{WORLD}=0.25", memo="spend, \"big\"")
        assert spent.exit_code == 0, spent.output
        _fund(initialised, shop, "0.1", "in-2")
        return shop

    def test_statement_csv_carries_running_balance_when_format_is_csv(
        self, initialised: Invoke, history: str
    ) -> None:
        result = initialised("ledger", "statement", history, "--format", "csv")

        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert list(rows[0]) == [
            "created_at", "seq", "entry_id", "kind", "memo", "amount", "balance"
        ]
        assert [(r["seq"], r["memo"], r["amount"], r["balance"]) for r in rows] == [
            ("1", "test", "1.50000000", "1.50000000"),
            ("2", 'spend, "big"', "-0.25000000", "1.25000000"),
            ("3", "test", "0.10000000", "1.35000000"),
        ]

    def test_statement_json_opens_at_balance_before_range_when_from_is_later(
        self, initialised: Invoke, history: str
    ) -> None:
        result = initialised(
            "ledger", "statement", history, "--from", "2999-01-01", "--format", "json"
        )

        assert result.exit_code == 0, result.output
        statement = json.loads(result.stdout)
        assert statement["lines"] == []
        assert statement["openingBalance"] == statement["closingBalance"] == "1.35000000"
        assert statement["from"] == "2999-01-01T00:00:00+00:00"

    def test_statement_is_empty_when_range_ends_before_history(
        self, initialised: Invoke, history: str
    ) -> None:
        result = initialised(
            "ledger", "statement", history, "--to", "2000-01-01T00:00:00Z", "--format", "json"
        )

        assert result.exit_code == 0, result.output
        statement = json.loads(result.stdout)
        assert (statement["lines"], statement["closingBalance"]) == ([], "0.00000000")

    def test_statement_includes_whole_history_when_range_covers_it(
        self, initialised: Invoke, history: str
    ) -> None:
        result = initialised(
            "ledger", "statement", history, "--from", "2000-01-01", "--to", "2999-12-31"
        )

        assert result.exit_code == 0, result.output
        assert "1.35000000" in result.stdout
        assert 'spend, "big"' in result.stdout

    @pytest.mark.parametrize(
        "args",
        [
            ["--from", "yesterday"],
            ["--to", "2025-13-01"],
            ["--from", "2025-02-01", "--to", "2025-01-01"],
            ["--format", "xml"],
        ],
    )
    def test_statement_exits_2_when_options_are_invalid(
        self, initialised: Invoke, shop: str, args: list[str]
    ) -> None:
        result = initialised("ledger", "statement", shop, *args)

        assert result.exit_code == 2

    def test_statement_exits_2_when_account_is_malformed(self, initialised: Invoke) -> None:
        result = initialised("ledger", "statement", "store-available")

        assert result.exit_code == 2

    def test_statement_exits_1_when_account_was_never_opened(self, initialised: Invoke) -> None:
        result = initialised("ledger", "statement", "store:st_none:BTC:available")

        assert result.exit_code == 1
        assert "no account" in result.stderr


class TestVerify:
    @pytest.fixture
    def funded(self, initialised: Invoke, shop: str) -> Invoke:
        _fund(initialised, shop, "1.5", "in-1")
        _fund(initialised, shop, "2", "in-2")
        return initialised

    def test_verify_passes_when_ledger_is_untouched(self, funded: Invoke) -> None:
        human = funded("ledger", "verify")
        as_json = funded("ledger", "verify", "--json")

        assert human.exit_code == 0, human.output
        assert "every check holds" in human.stdout
        report = json.loads(as_json.stdout)
        assert (report["ok"], report["entries"], report["totals"]) == (
            True, 2, {"BTC": "0.00000000"}
        )

    def test_verify_exits_1_when_a_posting_amount_was_edited(
        self, funded: Invoke, data_dir: Path
    ) -> None:
        _tamper(
            data_dir,
            "UPDATE postings SET units = '999' WHERE id = (SELECT max(id) FROM postings)",
        )

        human = funded("ledger", "verify")
        as_json = funded("ledger", "verify", "--json")

        assert human.exit_code == 1
        assert "ledger verification failed" in human.stderr
        report = json.loads(as_json.stdout)
        assert as_json.exit_code == 1
        assert report["ok"] is False
        assert any("do not sum to zero" in problem for problem in report["problems"])

    def test_verify_exits_1_when_a_journal_entry_was_deleted(
        self, funded: Invoke, data_dir: Path
    ) -> None:
        _tamper(
            data_dir,
            "DELETE FROM postings WHERE entry_seq = 1",
            "DELETE FROM journal WHERE seq = 1",
        )

        result = funded("ledger", "verify", "--json")

        assert result.exit_code == 1
        problems = json.loads(result.stdout)["problems"]
        assert any("hash chain broken" in problem for problem in problems)
