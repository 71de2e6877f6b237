"""Loads the trading pairs: the built-in ``config/pairs.toml`` or the operator's own file.

The file defines which pairs *can* run and on which grid; whether one runs (open, halted)
is decided by operators and stored in the database. Loading refuses, listing every problem
at once and naming the pair and the field, a file with an unknown asset or key, a
malformed or non-positive tick or lot, a lot finer than one base unit of the base asset, a
duplicate pair, or a grid on which a trade's value (price x quantity) would not be a whole
number of the quote asset's base units.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from dpgnode.domain.exchange.pair import Pair
from dpgnode.domain.money import AssetRegistry
from dpgnode.errors import ConfigError, ValidationError

_KEYS = frozenset(
    {"base", "quote", "tick", "lot", "min_size", "max_size", "maker_fee", "taker_fee", "mode"}
)
_REQUIRED = ("base", "quote", "tick", "lot")


def builtin_pairs_text() -> str:
    """The default pairs file shipped with the package."""
    return (files("dpgnode") / "config" / "pairs.toml").read_text()


def load_pairs(assets: AssetRegistry, path: Path | None = None) -> dict[str, Pair]:
    """The pairs of ``path`` (default: the built-in file), by symbol, in file order.

    Raises:
        ConfigError: the file is missing or malformed, or any pair is invalid; the message
            lists every problem.
    """
    source = str(path) if path is not None else "config/pairs.toml"
    if path is not None and not path.is_file():
        raise ConfigError(f"pairs file {path} does not exist", details={"field": "pairs_file"})
    text = path.read_text() if path is not None else builtin_pairs_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
    return parse_pairs(data, assets, source=source)


def parse_pairs(
    data: Mapping[str, Any], assets: AssetRegistry, *, source: str = "pairs"
) -> dict[str, Pair]:
    """Pairs from parsed TOML (``[[pair]]`` tables); see :func:`load_pairs`."""
    entries = data.get("pair")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no [[pair]] tables")
    pairs: dict[str, Pair] = {}
    problems: list[str] = []
    for index, entry in enumerate(entries):
        where = f"pair[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("base"), str):
            where = f"pair {entry.get('base')}-{entry.get('quote')}"
        try:
            pair = _pair(entry, assets)
        except ValidationError as exc:
            problems.append(f"{where}: {exc.field or 'pair'}: {exc.message}")
            continue
        if pair.symbol in pairs:
            problems.append(f"{where}: defined twice")
            continue
        pairs[pair.symbol] = pair
    if problems:
        raise ConfigError(
            f"{source}: invalid trading pairs:\n" + "\n".join(problems),
            details={"problems": len(problems)},
        )
    return pairs


def _pair(entry: object, assets: AssetRegistry) -> Pair:
    if not isinstance(entry, dict):
        raise ValidationError("must be a table", field="pair")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ValidationError(f"unknown key {unknown[0]!r}", field=unknown[0])
    for key in _REQUIRED:
        if key not in entry:
            raise ValidationError("is required", field=key)
    for key, value in entry.items():
        if not isinstance(value, str):
            raise ValidationError("must be a string", field=key)
    base = assets.get(entry["base"])
    quote = assets.get(entry["quote"])
    if base is None:
        raise ValidationError(f"unknown asset {entry['base'][:20]!r}", field="base")
    if quote is None:
        raise ValidationError(f"unknown asset {entry['quote'][:20]!r}", field="quote")
    pair = Pair.build(
        base, quote, tick=entry["tick"], lot=entry["lot"], min_size=entry.get("min_size"),
        max_size=entry.get("max_size"), maker_fee=entry.get("maker_fee", "0"),
        taker_fee=entry.get("taker_fee", "0"), mode=entry.get("mode", "fifo"),
    )
    if not pair.exact_notional:
        raise ValidationError(
            f"tick {pair.tick} x lot {pair.lot} is not a whole number of {quote.code} base "
            f"units (1 unit = {_one_unit(quote.decimals)} {quote.code}): a trade's value "
            "could not be settled exactly; use a coarser tick or lot",
            field="tick",
        )
    return pair


def _one_unit(decimals: int) -> str:
    return "1" if decimals == 0 else f"0.{'0' * (decimals - 1)}1"
