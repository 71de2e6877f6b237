"""The pairs file: the built-in 55 pairs load, and every broken pair is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpgnode.adapters.assets import load_registry
from dpgnode.adapters.exchange_pairs import load_pairs, parse_pairs
from dpgnode.errors import ConfigError

ASSETS = load_registry()
GOOD = {"base": "BTC", "quote": "USD", "tick": "1", "lot": "0.01"}


def _parse(*pairs: dict[str, str]) -> dict[str, object]:
    return dict(parse_pairs({"pair": list(pairs)}, ASSETS))


def test_builtin_file_defines_over_50_exact_pairs_of_every_kind() -> None:
    pairs = load_pairs(ASSETS)

    kinds = {(p.base.kind.value, p.quote.kind.value) for p in pairs.values()}
    assert len(pairs) >= 50
    assert {"BTC-USD", "ETH-USD", "BTC-EUR", "USDT-USD", "ETH-BTC"} <= set(pairs)
    wanted = {("crypto", "fiat"), ("crypto", "token"), ("token", "fiat"), ("crypto", "crypto")}
    assert wanted <= kinds
    assert all(p.exact_notional for p in pairs.values())
    assert {p.mode.value for p in pairs.values()} == {"fifo", "pro-rata"}


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({**GOOD, "tick": "0.01"}, "pair BTC-USD: tick: tick 0.01 x lot 0.01 is not a whole"),
        ({**GOOD, "lot": "0.000000001"}, "pair BTC-USD: lot: lot 0.000000001 is finer"),
        ({**GOOD, "base": "DOGE"}, "pair DOGE-USD: base: unknown asset 'DOGE'"),
        ({**GOOD, "tick": "-1"}, "pair BTC-USD: tick:"),
        ({**GOOD, "tick": "0"}, "pair BTC-USD: tick: tick must be greater than zero"),
        ({**GOOD, "maker_fee": "1"}, "pair BTC-USD: maker_fee: maker_fee must be below 1"),
        ({**GOOD, "mode": "lifo"}, "pair BTC-USD: mode:"),
        ({**GOOD, "colour": "red"}, "pair BTC-USD: colour: unknown key 'colour'"),
        ({"base": "BTC", "quote": "USD", "tick": "1"}, "pair BTC-USD: lot: is required"),
        ({**GOOD, "tick": 1}, "pair BTC-USD: tick: must be a string"),
        ({**GOOD, "min_size": "0.001"}, "pair BTC-USD: min_size:"),
    ],
)
def test_broken_pair_is_refused_naming_the_pair_and_the_field(
    entry: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_pairs({"pair": [entry]}, ASSETS)
    assert named in info.value.message


def test_every_problem_is_listed_at_once_and_duplicates_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_pairs({"pair": [GOOD, GOOD, {**GOOD, "quote": "EUR", "tick": "0.01"}]}, ASSETS)
    assert "pair BTC-USD: defined twice" in info.value.message
    assert "pair BTC-EUR: tick:" in info.value.message
    assert info.value.details["problems"] == 2


def test_operator_file_replaces_the_builtin_one(tmp_path: Path) -> None:
    path = tmp_path / "pairs.toml"
    path.write_text('[[pair]]\nbase = "ETH"\nquote = "EUR"\ntick = "0.5"\nlot = "0.02"\n')

    pairs = load_pairs(ASSETS, path)

    assert list(pairs) == ["ETH-EUR"]
    with pytest.raises(ConfigError, match="does not exist"):
        load_pairs(ASSETS, tmp_path / "missing.toml")
    path.write_text("[[pair]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_pairs(ASSETS, path)
