"""``dpg convert``: rates, quote, execute, limits, set-limit against a real data directory."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import Result

from tests.unit.cli.conftest import Invoke

RATES = json.dumps([{"base": "BTC", "quote": "USD", "rate": "60000"}])
ENV = {"DPG_CONVERSION__FIXED_RATES": RATES}


@pytest.fixture
def funded(initialised: Invoke) -> Invoke:
    """Alice holds 1 BTC; the operator's inventory holds 100,000 USD; BTC/USD is 60,000."""

    for key, world, account, amount in (
        ("f1", "operator:op:BTC:world", "user:alice:BTC:available", "1"),
        ("f2", "operator:op:USD:world", "operator:op:USD:inventory", "100000"),
    ):
        result = initialised(
            "ledger",
            "post",
            "--key",
            key,
            "--memo",
            "fund",
            "--posting",
            f"{world}=-{amount}",
            "--posting",
            f"{account}={amount}",
        )
        assert result.exit_code == 0, result.output

    def invoke(*args: str, **_: Any) -> Result:
        return initialised(*args, env=ENV)

    return invoke


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rates_show_the_configured_rate_when_listed(funded: Invoke) -> None:
    body = _json(funded("convert", "rates", "--from", "BTC", "--json"))
    assert body["rates"][0]["rate"] == "60000"
    text = funded("convert", "rates", "--from", "BTC")
    assert "BTC/USD" in text.stdout


def test_quote_then_execute_converts_once_when_run_twice(funded: Invoke) -> None:
    quote = _json(
        funded(
            "convert",
            "quote",
            "--user",
            "alice",
            "--from",
            "BTC",
            "--to",
            "USD",
            "--from-amount",
            "0.5",
            "--json",
        )
    )
    assert (quote["toAmount"], quote["fee"]) == ("29820.15", "0.00050000")
    first = _json(funded("convert", "execute", quote["id"], "--json"))
    again = _json(funded("convert", "execute", quote["id"], "--json"))
    assert (first["created"], again["created"]) == (True, False)
    assert first["id"] == again["id"]
    balances = _json(funded("ledger", "balances", "--owner-id", "alice", "--json"))
    assert {b["asset"]: b["balance"] for b in balances} == {"BTC": "0.50000000", "USD": "29820.15"}


def test_quote_prints_amounts_and_expiry_when_asked_for_a_person(funded: Invoke) -> None:
    result = funded(
        "convert", "quote", "--user", "alice", "--from", "BTC", "--to", "USD", "--to-amount", "1000"
    )
    assert result.exit_code == 0, result.output
    assert "0.01676719 BTC" in result.stdout
    assert "valid until 2" in result.stdout


def test_quote_is_a_usage_error_when_both_or_no_amounts_are_given(funded: Invoke) -> None:
    for extra in ((), ("--from-amount", "1", "--to-amount", "1")):
        result = funded(
            "convert", "quote", "--user", "alice", "--from", "BTC", "--to", "USD", *extra
        )
        assert result.exit_code == 2


def test_quote_is_refused_with_exit_1_when_over_the_limit(funded: Invoke) -> None:
    set_ = _json(
        funded(
            "convert",
            "set-limit",
            "--user",
            "alice",
            "--asset",
            "BTC",
            "--period",
            "day",
            "--limit",
            "0.4",
            "--json",
        )
    )
    assert set_ == {
        "userId": "alice",
        "kind": "asset",
        "asset": "BTC",
        "period": "day",
        "limit": "0.40000000",
    }
    result = funded(
        "convert",
        "quote",
        "--user",
        "alice",
        "--from",
        "BTC",
        "--to",
        "USD",
        "--from-amount",
        "0.5",
    )
    assert result.exit_code == 1
    assert "exceeds the daily asset limit" in result.stderr


def test_limits_show_usage_for_a_user_and_every_limit_when_listed(funded: Invoke) -> None:
    funded(
        "convert", "set-limit", "--default", "--asset", "BTC", "--period", "month", "--limit", "2"
    )
    quote = _json(
        funded(
            "convert",
            "quote",
            "--user",
            "alice",
            "--from",
            "BTC",
            "--to",
            "USD",
            "--from-amount",
            "0.5",
            "--json",
        )
    )
    funded("convert", "execute", quote["id"])
    mine = _json(funded("convert", "limits", "--user", "alice", "--json"))
    assert [(s["limit"], s["used"], s["remaining"], s["isDefault"]) for s in mine["limits"]] == [
        ("2.00000000", "0.50000000", "1.50000000", True)
    ]
    every = _json(funded("convert", "limits", "--json"))
    assert every == [
        {"userId": "*", "kind": "asset", "asset": "BTC", "period": "month", "limit": "2.00000000"}
    ]
    removed = funded(
        "convert", "set-limit", "--default", "--asset", "BTC", "--period", "month", "--remove"
    )
    assert "removed the monthly asset limit" in removed.stdout
    assert _json(funded("convert", "limits", "--json")) == []


def test_set_limit_is_a_usage_error_when_user_and_default_are_mixed(funded: Invoke) -> None:
    result = funded(
        "convert",
        "set-limit",
        "--user",
        "alice",
        "--default",
        "--asset",
        "BTC",
        "--period",
        "day",
        "--limit",
        "1",
    )
    assert result.exit_code == 2


def test_execute_is_refused_when_the_quote_belongs_to_another_user(funded: Invoke) -> None:
    quote = _json(
        funded(
            "convert",
            "quote",
            "--user",
            "alice",
            "--from",
            "BTC",
            "--to",
            "USD",
            "--from-amount",
            "0.1",
            "--json",
        )
    )
    result = funded("convert", "execute", quote["id"], "--user", "bob")
    assert result.exit_code == 1
    assert "no quote" in result.stderr
