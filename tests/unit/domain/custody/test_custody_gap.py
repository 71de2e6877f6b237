"""Address-pool gap arithmetic (R11) and the custody vocabulary's fixed paths."""

from __future__ import annotations

import pytest

from dpgnode.domain.custody.networks import Network
from dpgnode.domain.custody.wallet import (
    Scheme,
    account_path,
    crosses_gap_limit,
    gap_report,
    parse_scheme,
)
from dpgnode.errors import ValidationError


def test_gap_is_every_issued_index_when_none_is_used() -> None:
    report = gap_report(10, [])
    assert (report.gap, report.trailing_unused, report.last_used_index) == (10, 10, -1)
    assert report.gap_limit_needed == 10  # a payment at index 9 follows 9 unused ones


def test_gap_is_zero_when_nothing_was_issued() -> None:
    assert gap_report(0, []).gap_limit_needed == 0


def test_interior_run_sets_the_gap_when_it_is_the_longest() -> None:
    # used: 0, 15; unused 1..14 (14 in a row), trailing 16..19 (4)
    report = gap_report(20, [0, 15])
    assert (report.gap, report.trailing_unused, report.last_used_index) == (14, 4, 15)
    assert report.gap_limit_needed == 15


def test_trailing_run_sets_the_gap_when_it_is_the_longest() -> None:
    report = gap_report(10_000, [0])
    assert (report.gap, report.gap_limit_needed) == (9_999, 9_999)


def test_used_indexes_outside_the_issued_range_are_ignored_when_reported() -> None:
    assert gap_report(3, [0, 1, 2, 7, -1]).gap == 0


def test_alert_fires_once_when_the_run_crosses_the_limit() -> None:
    fired = [crosses_gap_limit(t - 1, t, 20) for t in range(1, 40)]
    assert fired.count(True) == 1
    assert fired.index(True) == 20  # the 21st unused address


@pytest.mark.parametrize(
    ("scheme", "network", "expected"),
    [
        (Scheme.BIP84, Network.MAINNET, "m/84'/0'/0'"),
        (Scheme.BIP84, Network.REGTEST, "m/84'/1'/0'"),
        (Scheme.BIP86, Network.TESTNET, "m/86'/1'/0'"),
        (Scheme.BIP49, Network.MAINNET, "m/49'/0'/0'"),
        (Scheme.BIP44, Network.SIGNET, "m/44'/1'/0'"),
        (Scheme.EVM, Network.MAINNET, "m/44'/60'/0'"),
        (Scheme.EVM, Network.REGTEST, "m/44'/60'/0'"),
    ],
)
def test_account_path_follows_the_bip_when_built(
    scheme: Scheme, network: Network, expected: str
) -> None:
    assert account_path(scheme, network, 0) == expected


def test_account_path_refuses_a_hardened_index_when_out_of_range() -> None:
    with pytest.raises(ValidationError):
        account_path(Scheme.BIP84, Network.MAINNET, 2**31)


def test_scheme_parses_case_insensitively_and_refuses_unknown_names() -> None:
    assert parse_scheme(" BIP86 ") is Scheme.BIP86
    with pytest.raises(ValidationError):
        parse_scheme("bip32")
